"""The hostile-input corpus: hand-written attacks and Hypothesis-generated text sent to every
entry point (the webhook receiver, the comment grammar, the issue form, the config file,
review text, the hidden-content cleaner, the operator API and the console). Every run is
checked for time (a generous budget per call, not a benchmark), for server errors, and, where
a job runs, for GitHub writes beyond the budgets.

The attacks of issue 16: one long line that made the issue-form heading pattern backtrack
(7.8 s for 2,000 characters), 64 KB of `<script ` (17 s) and 80 KB of `<a style="` (50 s)
in the old hidden-content cleaner, and a comment of 1,400 `/idp ask` lines.
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from urllib.parse import quote

import hypothesis
import pytest
from hypothesis import HealthCheck, given
from hypothesis import strategies as st
from starlette.testclient import TestClient

from app.domain.service import ServiceRequest
from app.events import valid_stream_id
from app.github.errors import ForgeError
from app.github.forge import Review, ReviewComment, is_login, validate_repo_name
from app.grammar.commands import (
    CommandError,
    escape_user_text,
    parse_issue_form,
    read_comment,
    validate_set_value,
)
from app.handling.review_threads import threads_of_review
from app.redaction import redact
from app.repo_config import parse_repo_config
from app.server import build_app
from app.untrusted import clean_untrusted, inline_markdown, quote_untrusted
from app.web import WEBHOOK_PATH, create_app
from app.webhooks import Ignored, route
from tests import payloads
from tests.conftest import WEBHOOK_SECRET
from tests.job_world import World
from tests.operator_api import AUTH, operator_settings
from tools.builtin.repository import CreateRepositoryInput
from tools.render_common import check_request, service_dir

# Seconds one call may take on any of these inputs: generous for a shared CI machine; the
# old code took seconds to minutes on the same inputs.
BUDGET = 0.5
# A config file is read by PyYAML, pure Python at some 100 KB/s on a busy machine, in the
# worker (never on the receiver's loop); the file is bounded at 64 KiB.
CONFIG_BUDGET = 2.0
FUZZ = hypothesis.settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
KB = 1024


def _heading_line(size: int) -> str:
    return "### a" + " " * (size - 7) + "\tx"


# Each: (name, text). Sizes are GitHub's largest body (65,536 characters) or near it.
HOSTILE_TEXTS = [
    ("backtracking heading line, 64 KB", _heading_line(64 * KB)),
    ("heading line in a form", "### Service name\n\npay\n\n" + _heading_line(60 * KB)),
    ("unclosed <script", "<script " * (8 * KB)),
    ("unclosed style attributes", '<a style="' * (6 * KB)),
    ("tiny tags", "<a>" * (21 * KB)),
    ("hidden tags nested", "<b hidden>" * (6 * KB)),
    ("unclosed comments", "<!--" * (16 * KB)),
    ("1,400 ask lines", "/idp ask how do I scale?\n" * 1400),
    ("one huge command", "/idp ask " + "why " * (16 * KB)),
    ("huge verb", "/idp " + "x" * (64 * KB - 5)),
    ("huge set", "/idp set " + "cpu_request=1 " * (4 * KB)),
    ("huge name", "/idp create-service " + "-a" * (32 * KB - 10)),
    ("unclosed quote", "/idp create-service '" + "a b " * (16 * KB)),
    ("blank lines", "\n" * (64 * KB)),
    ("fences", "```\n" * (16 * KB)),
    ("backticks", "`" * (64 * KB)),
    ("zero-width", "\u200b" * (64 * KB)),
    ("JWT-looking run", "eyJaaaaaaaa" * (6 * KB)),
    ("credential run", "sk-" * (21 * KB)),
    ("PEM openers", "-----BEGIN RSA PRIVATE KEY-----" * (2 * KB)),
    ("reference comments", "[//]: # (x)\n" * (5 * KB)),
    ("data images", "![x](data:" * (6 * KB)),
    ("lone surrogate", "/idp ask \ud800 <b hidden>x</b>\n/idp set cpu_request=\udfff"),
    ("NULs and controls", "/idp ask \x00\x1b[31m\x7f" * (4 * KB)),
]
IDS = [name for name, _ in HOSTILE_TEXTS]


def timed(call, *args, budget: float = BUDGET, **kwargs):
    """`call`'s result, failing the test when it takes more than `budget` seconds."""
    started = time.perf_counter()
    result = call(*args, **kwargs)
    took = time.perf_counter() - started
    assert took < budget, f"{getattr(call, '__name__', call)} took {took:.2f} s"
    return result


# -- the text functions ------------------------------------------------------------------------


@pytest.mark.parametrize("text", [t for _, t in HOSTILE_TEXTS], ids=IDS)
def test_hostile_text_is_read_cleaned_and_echoed_in_bounded_time(text):
    commands, errors, count = timed(read_comment, text)
    assert len(commands) + len(errors) <= 100 and count >= len(commands) + len(errors)
    for error in errors:
        assert len(error.message) < 1000  # an error echoes at most a short, escaped part
    cleaned = timed(clean_untrusted, text)
    assert "hidden" not in cleaned or "<b hidden>" not in cleaned
    timed(quote_untrusted, text, "issue #7")
    timed(redact, text, ["a-secret-value"])
    timed(inline_markdown, text)
    timed(escape_user_text, text)


@pytest.mark.parametrize("text", [t for _, t in HOSTILE_TEXTS], ids=IDS)
def test_hostile_issue_forms_are_refused_or_parsed_in_bounded_time(text):
    try:
        timed(parse_issue_form, "### Service name\n\npayments\n\n### Description\n\n" + text)
        timed(parse_issue_form, text)
    except CommandError as exc:
        assert exc.message


@pytest.mark.parametrize(
    "text",
    [
        "labels: " + "[" * 5000 + "]" * 5000,
        "defaults:\n" + "".join(" " * i + f"k{i}:\n" for i in range(2, 400)),
        "a: &a [x, x, x, x, x, x, x, x, x]\n"
        + "".join(f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
                  for p, c in zip("abcdefgh", "bcdefghi", strict=True))
        + "tools: *i\n",
        "manifests_path: " + _heading_line(60 * KB),
        "permissions:\n" + "".join(f"  {'x' * 60}{i}: admin\n" for i in range(800)),
        "labels:\n" + "  - x\n" * 9000,
        "\ud800: 1",
        "agent_system: 'a\n'",
        "staging:\n  namespace_prefix: \"team-\\n\"",
    ],
    ids=["deep", "indented", "alias bomb", "long value", "many keys", "many items", "surrogate",
         "newline name", "newline prefix"],
)  # fmt: skip
def test_hostile_config_files_are_a_config_or_one_comment_in_bounded_time(text):
    config, error = timed(parse_repo_config, text, budget=CONFIG_BUDGET)
    assert (config is None) == (error is not None)
    if error is not None:
        assert "Traceback" not in error and len(error) < 10_000


@pytest.mark.parametrize("text", [t for _, t in HOSTILE_TEXTS], ids=IDS)
def test_hostile_review_text_is_read_in_bounded_time(text):
    comment = ReviewComment(
        id=2, author="mallory", body=text, path="a.yaml", line=1, diff_hunk="@@ -1 +1 @@"
    )
    review = Review(id=1, author="mallory", body=text, state="commented", comments=[comment])
    threads = timed(threads_of_review, review)
    assert [t.kind for t in threads][-1:] == ["line"] and len(threads) <= 2


@FUZZ
@given(
    st.text(max_size=4000)
    | st.lists(
        st.sampled_from(
            [
                "/idp ",
                "ask",
                "set ",
                "=",
                "### ",
                "\n",
                " ",
                "\t",
                "#",
                "<!--",
                "-->",
                "<",
                ">",
                "```",
                "'",
                '"',
                "hidden",
                "style=",
                "<script",
                "\u200b",
                "@",
                "\ud800",
            ]
        ),
        max_size=400,
    ).map("".join)
)
def test_generated_text_never_breaks_the_grammar_the_form_or_the_cleaner(text):
    commands, errors, _ = timed(read_comment, text)
    for error in errors:
        assert isinstance(error.message, str)
    with contextlib.suppress(CommandError):
        timed(parse_issue_form, text)
    timed(clean_untrusted, text)
    timed(redact, text, ["secret-value"])
    timed(parse_repo_config, text, budget=CONFIG_BUDGET)


# -- the webhook receiver ----------------------------------------------------------------------


@pytest.fixture
def client(settings, redis_conn):
    return TestClient(create_app(settings, connection=redis_conn), raise_server_exceptions=True)


def deliver(client: TestClient, event: str, payload: dict):
    body = payloads.encode(payload)
    headers = payloads.headers(event, body, WEBHOOK_SECRET, str(uuid.uuid4()))
    return timed(client.post, WEBHOOK_PATH, content=body, headers=headers)


@pytest.mark.parametrize("text", [t for _, t in HOSTILE_TEXTS], ids=IDS)
def test_the_receiver_answers_every_hostile_delivery_in_bounded_time(client, text):
    for event, payload in (
        ("issues", payloads.issues_opened(body=text, title=text[:300])),
        ("issues", payloads.issues_opened(body=text, labels=["idp:new-service"])),
        ("issue_comment", payloads.issue_comment(text)),
        ("issue_comment", payloads.issue_comment(text, on_pull_request=True)),
    ):
        response = deliver(client, event, payload)
        assert response.status_code in (200, 202), response.text


def test_a_10_kb_heading_line_is_routed_in_milliseconds():
    payload = payloads.issues_opened(body=_heading_line(10 * KB))
    routed = timed(route, "issues", "d-10kb", payload)
    assert isinstance(routed, Ignored)  # neither the form nor labelled


def test_routing_bounds_each_field_before_parsing():
    long = "/idp plan\n" + "x" * (200 * KB) + "\n/idp apply"
    routed = timed(route, "issue_comment", "d-long", payloads.issue_comment(long))
    assert [c.verb for c in routed.commands] == ["plan"]  # the rest is past 65,536 chars
    titled = route("issues", "d-title", payloads.issues_opened(title="t" * 5000))
    assert len(titled.title) == 256


# -- a job: no write beyond the budgets ---------------------------------------------------------


@pytest.fixture
def world(settings, redis_conn, no_unmocked_http, monkeypatch) -> World:
    return World(settings, redis_conn, no_unmocked_http, monkeypatch)


@pytest.mark.parametrize(
    "text",
    [t for n, t in HOSTILE_TEXTS if "/idp" in t[:40]],
    ids=[n for n, t in HOSTILE_TEXTS if "/idp" in t[:40]],
)
def test_a_hostile_comment_from_a_read_only_user_costs_a_few_writes(world, text):
    routed = route("issue_comment", str(uuid.uuid4()), payloads.issue_comment(text, sender="bob"))
    if isinstance(routed, Ignored):
        return
    world.run(routed)
    # At most: 👀, one answer per command within the budget of 10, one error reply, 🚀/😕.
    assert len(world.writes()) <= 13
    assert all(len(body) <= 65_536 for body in world.replies())


# -- the operator API and the console -----------------------------------------------------------


@pytest.fixture
def api(settings, redis_conn):
    with TestClient(build_app(operator_settings(settings), redis_conn)) as test_client:
        yield test_client


@pytest.mark.parametrize("text", [t[:20_000] for _, t in HOSTILE_TEXTS], ids=IDS)
def test_the_operator_api_answers_hostile_text_in_bounded_time_without_a_500(api, text):
    start = {"repo": "acme/demo", "text": text or "x", "dry_run": True}
    # json.dumps escapes lone surrogates, as any JSON client may send them.
    headers = {**AUTH, "Content-Type": "application/json"}
    response = timed(api.post, "/api/sessions", headers=headers, content=json.dumps(start))
    assert response.status_code in (202, 400, 422), response.text
    for path in (
        f"/api/sessions?repo={quote(text[:300], errors='replace')}",
        f"/api/sessions/acme/demo/{quote(text[:200], errors='replace')}",
    ):
        assert timed(api.get, path, headers=AUTH).status_code < 500


@pytest.mark.parametrize("text", [t[:20_000] for _, t in HOSTILE_TEXTS[:8]], ids=IDS[:8])
def test_the_console_answers_hostile_fields_in_bounded_time_without_a_500(api, text):
    page = api.get("/console/login")
    assert (
        timed(
            api.post,
            "/console/login",
            data={"csrf": text[:100], "token": text, "next": text[:500]},
            follow_redirects=False,
        ).status_code
        < 500
    )
    assert page.status_code == 200
    query = quote(text[:300], errors="replace")
    assert timed(api.get, f"/console/sessions?repo={query}").status_code < 500


# -- validators take whole values: a trailing newline is refused --------------------------------


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("cpu_request", "250m\n"),
        ("memory_limit", "256Mi\n"),
        ("ingress_host", "pay.example.com\n"),
        ("liveness_path", "/healthz\n"),
        ("cpu_limit", "\u0663"),  # an Arabic-Indic digit: RE2's [0-9] is ASCII
    ],
)
def test_set_values_with_a_trailing_newline_are_refused(key, value):
    with pytest.raises(CommandError) as refused:
        validate_set_value(key, value)
    assert f"`{key}`" in refused.value.message


@pytest.mark.parametrize(
    "fields",
    [
        {"cpu_request": "250m\n"},
        {"memory_request": "128Mi\n"},
        {"liveness_path": "/healthz\n"},
        {"ingress_host": "pay.example.com\n"},
    ],
)
def test_the_renderer_refuses_values_with_a_trailing_newline(fields):
    with pytest.raises(ValueError, match=next(iter(fields))):
        check_request(ServiceRequest(name="payments", **fields))
    with pytest.raises(ValueError, match="base path"):
        service_dir(ServiceRequest(name="payments"), "services/{name}\n")


def test_account_and_repository_names_are_whole_values():
    for owner, name in (("acme\n", "web"), ("acme", "web\n"), ("-acme", "web"), ("a--b", "w")):
        with pytest.raises(ForgeError):
            validate_repo_name(owner, name)
    assert validate_repo_name("a-b", "web.site").full_name == "a-b/web.site"
    assert is_login("a" * 39) and not is_login("a" * 40)
    with pytest.raises(ValueError):
        CreateRepositoryInput(name="payments\n")
    assert not valid_stream_id("1-0\n") and valid_stream_id("1-0")


@pytest.mark.parametrize(
    "text",
    [
        'defaults:\n  team: "payments\\n"\n',
        'staging:\n  namespace_prefix: "team-\\n"\n',
        'agent_system: "fast\\n"\n',
    ],
)
def test_config_values_with_a_trailing_newline_are_refused(text):
    config, error = parse_repo_config(text)
    assert config is None and error is not None and "line " in error
