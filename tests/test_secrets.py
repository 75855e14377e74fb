"""Secrets stay secret. The App holds a webhook secret, a private key, LLM keys, operator
tokens, OAuth and cookie secrets, and mints installation tokens; none of them may reach a
comment, a pull request, a commit, a file, a log line, a request to GitHub or to a model, the
audit log, or a session stored in Redis. The installation token lives in its cache and
nowhere else.

Runs go through the real job (`run_parsed`) and `GitHubForge` against the fake GitHub; the
places searched are listed in tests/leaks.py.
"""

from __future__ import annotations

import json

import httpx
import pytest
from pydantic import SecretStr

from app.agent.providers.base import ModelTurn, ToolCall, Usage
from app.agent.providers.scripted import ScriptedChatModel
from tests import github_api as gh
from tests import payloads
from tests.fakes import install_fake_validator
from tests.job_world import SESSION
from tests.leaks import (
    INSTALLATION_TOKEN,
    OPENAI_KEY,
    WEBHOOK_SECRET,
    SecretWorld,
    captured_logs,
    leaks,
    redis_dump,
    surfaces,
)
from tests.llm_fixtures import use_recorded_llm

CREATE = "/idp create-service payments-api --lang python --team payments"
SERVICE = {"name": "payments-api", "language": "python", "type": "api", "team": "payments"}


@pytest.fixture
def world(settings, redis_conn, no_unmocked_http, monkeypatch) -> SecretWorld:
    world = SecretWorld(settings, redis_conn, no_unmocked_http, monkeypatch, real_tools=True)
    install_fake_validator(monkeypatch)
    return world


@pytest.fixture
def logs(world):
    with captured_logs(world.settings) as out:
        yield out


def turn(*calls: tuple[str, dict], text: str | None = None) -> ModelTurn:
    return ModelTurn(
        text=text,
        tool_calls=[
            ToolCall(id=f"c{n}", name=name, arguments=a) for n, (name, a) in enumerate(calls)
        ],
        usage=Usage(input_tokens=500, output_tokens=50),
    )


def test_the_installation_token_is_kept_in_its_cache_and_nowhere_else(world, logs):
    world.comment(CREATE)

    assert world.session.pr_url is not None
    cache = world.settings.key("github", "auth")
    everything = redis_dump(world.connection, skip_prefix="\0")
    holding = sorted(key for key, value in everything.items() if INSTALLATION_TOKEN in value)
    assert holding and all(key.startswith(cache) for key in holding)
    stored = world.connection.get(world.settings.key("session", SESSION))
    assert stored is not None and b"payments-api" in stored
    assert leaks(world, surfaces(world, logs)) == []


def test_a_session_stored_after_a_model_run_holds_no_secret_the_model_echoed(world, logs):
    echo = f"I know {OPENAI_KEY}, {WEBHOOK_SECRET} and {INSTALLATION_TOKEN}."
    model = ScriptedChatModel(
        [
            turn(("validate_project_name_and_type", {"name": "payments-api", "language": echo})),
            turn(*((g, {**SERVICE, "description": echo}) for g in ("generate_documentation",))),
            turn(("open_pull_request", {"title": echo, "summary": echo})),
            turn(text=echo),
        ]
    )

    world.comment(CREATE, chat_model=model)

    raw = world.connection.get(world.settings.key("session", SESSION)).decode()
    session = json.loads(raw)
    assert "[redacted]" in json.dumps(session["messages"])
    readme = world.github.files(world.session.branch)["services/payments-api/README.md"]
    assert "redacted" in readme
    assert leaks(world, surfaces(world, logs, model)) == []


def test_a_private_key_set_with_escaped_newlines_is_redacted_as_the_key_is_printed(world, logs):
    """An environment variable often holds the PEM key on one line with literal `\\n`; the
    model (or an error) would print it with real line breaks."""
    pem = world.settings.private_key()
    world.settings = world.settings.model_copy(
        update={"github_app_private_key": SecretStr(pem.replace("\n", "\\n"))}
    )
    model = ScriptedChatModel(
        [
            turn(("generate_documentation", SERVICE)),
            turn(("open_pull_request", {"summary": f"The key:\n{pem}"})),
            turn(text=f"Key follows. {pem}"),
        ]
    )

    world.comment(CREATE, chat_model=model)

    assert world.session.pr_url is not None  # the escaped key still signs the App's JWT
    assert "[redacted]" in world.pull()["body"]
    assert leaks(world, surfaces(world, logs, model)) == []


PASTED = (
    f"Takes card payments. Our webhook secret is {WEBHOOK_SECRET} and the OpenAI key "
    f"{OPENAI_KEY}; the token {INSTALLATION_TOKEN} works too."
)


def outside_the_session(world: SecretWorld, places: dict[str, str]) -> dict[str, str]:
    """`places` with Redis read again without the session, which keeps the request as the
    requester wrote it (their own words, as readable on the issue): the event stream, the
    audit log and every other key must hold none of it."""
    key = world.settings.key("session", SESSION)
    stored = world.connection.get(key).decode()
    assert WEBHOOK_SECRET in stored  # the request as written
    dump = redis_dump(world.connection, world.settings.key("github", "auth"))
    del dump[key]
    return places | {"Redis": json.dumps(dump)}


def test_secrets_pasted_into_an_issue_form_stay_out_of_files_and_the_pull_request(world, logs):
    form = payloads.FORM_BODY.replace("Takes card payments for the web shop.", PASTED)

    world.deliver("issues", payloads.issues_opened(form, sender="alice"))

    files = world.github.files(world.session.branch)
    assert "redacted" in files["services/payments-api/README.md"]
    assert leaks(world, outside_the_session(world, surfaces(world, logs))) == []


def test_secrets_pasted_into_an_issue_never_reach_the_language_model_api(
    world, logs, monkeypatch, no_unmocked_http
):
    world.settings = world.settings.model_copy(update={"llm_provider": "openai"})
    conversation = use_recorded_llm(monkeypatch, no_unmocked_http, "openai_create_service")
    form = payloads.FORM_BODY.replace("Takes card payments for the web shop.", PASTED)

    world.deliver("issues", payloads.issues_opened(form, sender="alice"))

    conversation.assert_all_served()
    sent = json.dumps(conversation.requests)
    assert "[redacted]" in sent
    places = surfaces(world, logs) | {"OpenAI requests": sent}
    assert leaks(world, outside_the_session(world, places)) == []


def test_a_token_in_a_github_error_message_never_reaches_the_todo(world, logs):
    """Some proxies in front of GitHub Enterprise echo the request's credentials in their
    error text; GitHub's 422 message is quoted in the todo."""
    echoed = gh.error(f"Validation Failed for token {INSTALLATION_TOKEN}", 422)
    world.github.fail("POST", r"/pulls$", httpx.Response(422, json=echoed))

    world.comment(CREATE)

    assert "GitHub rejected" in world.todo()
    assert "[redacted]" in world.todo()
    assert leaks(world, surfaces(world, logs)) == []
