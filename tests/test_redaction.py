"""One redaction for every sink (app/redaction.py): every secret shape, fed to every place text
leaves the process, comes out redacted. Sinks: log lines, the todo comment, what a model is
sent and what it writes (the agent's and the review agent's turns), a provider's error
sentence, the audit stream, the event stream and the operator API's JSON."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Callable

import pytest

from app.agent.model_turn import model_turn
from app.agent.providers.base import Message, ModelTurn, ToolCall
from app.agent.providers.openai_chat import redact as provider_redact
from app.agent.providers.scripted import ScriptedChatModel
from app.agent.publisher import Publisher
from app.agent.review import Thread, review_tools, run_review_agent
from app.api.routes import OperatorApi
from app.audit import AuditLog
from app.config import Settings
from app.domain.todo import Todo
from app.events import EventBus
from app.logs import configure_logging
from app.redaction import Redactor, redactor_for
from app.state import Session
from tests.leaks import secret_settings
from tools.spec import ToolContext

PEM_LINE = "MIIEpAIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun"
# (what is fed in, the part that must not survive)
SHAPES = {
    "ghp_ personal token": ("ghp_" + "a1B2c3D4e5" * 4, "ghp_" + "a1B2c3D4e5" * 4),
    "gho_ OAuth token": ("gho_" + "Zz09" * 9, "gho_" + "Zz09" * 9),
    "ghu_ user token": ("ghu_" + "Yy18" * 9, "ghu_" + "Yy18" * 9),
    "ghs_ token of 25 characters": ("ghs_" + "k" * 21, "ghs_" + "k" * 21),
    "ghr_ refresh token": ("ghr_" + "Rr27" * 10, "ghr_" + "Rr27" * 10),
    "fine-grained PAT": ("github_pat_11AB" + "c" * 70, "github_pat_11AB" + "c" * 70),
    "OpenAI key": ("sk-" + "T3st" * 12, "sk-" + "T3st" * 12),
    "OpenAI project key": ("sk-proj-" + "P4q" * 15, "sk-proj-" + "P4q" * 15),
    "Anthropic key": ("sk-ant-api03-" + "A" * 40, "sk-ant-api03-" + "A" * 40),
    "PEM private key": (
        f"-----BEGIN RSA PRIVATE KEY-----\n{PEM_LINE}\n-----END RSA PRIVATE KEY-----",
        PEM_LINE,
    ),
    "AWS access key id": ("AKIAIOSFODNN7EXAMPLE", "AKIAIOSFODNN7EXAMPLE"),
    "AWS secret key": (
        "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    ),
    "bearer header": ("Authorization: Bearer opaque-T0ken.9f8e7d6c", "opaque-T0ken.9f8e7d6c"),
    "token header": ("authorization: token plain0ld-t0ken-55", "plain0ld-t0ken-55"),
    "bare bearer": ("curl -H 'Bearer Zm9vYmFyYmF6cXV4'", "Zm9vYmFyYmF6cXV4"),
    "URL credentials": ("https://deploy:hunter2-pass@git.example.com/a.git", "hunter2-pass"),
}


@pytest.fixture
def loaded(settings) -> Settings:
    """Settings with a value for every secret setting (webhook, keys, tokens, cookies)."""
    return secret_settings(settings)


def cases(loaded: Settings) -> list[tuple[str, str, str]]:
    configured = [(f"setting {n}", v, v) for n, v in enumerate(loaded.secret_values())]
    return [(name, text, secret) for name, (text, secret) in SHAPES.items()] + configured


def text_of(loaded: Settings) -> str:
    return "\n".join(f"{name}: {text} ." for name, text, _ in cases(loaded))


def assert_clean(out: str, loaded: Settings, sink: str) -> None:
    left = [name for name, _, secret in cases(loaded) if secret in out]
    assert not left, f"{sink} let through: {left}"
    assert "[redacted]" in out


def log_sink(loaded: Settings, text: str, redis_conn) -> str:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    out = io.StringIO()
    try:
        configure_logging(loaded, "INFO", stream=out)
        logging.getLogger("idp.redaction-test").warning("sent %s", text, extra={"body": text})
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        logging.captureWarnings(False)
    return out.getvalue()


def comment_sink(loaded: Settings, text: str, redis_conn) -> str:
    session = Session(id="acme/web#4", repo="acme/web", number=4)
    session.todo = Todo(title="t", notes=[text])
    return Publisher(None, loaded).render(session)  # type: ignore[arg-type]


def model_sink(loaded: Settings, text: str, redis_conn) -> str:
    echo = ModelTurn(
        text=text, tool_calls=[ToolCall(id="c1", name="write", arguments={"content": text})]
    )
    model = ScriptedChatModel([echo])
    messages = [Message(role="user", content=text)]
    turn = asyncio.run(model_turn(model, "system", messages, [], Redactor.from_settings(loaded)))
    sent = [m.content for m in model.requests[0].messages]
    return json.dumps([sent, turn.model_dump()])


def provider_sink(loaded: Settings, text: str, redis_conn) -> str:
    return provider_redact(f"The API said: {text}", *loaded.secret_values())


def audit_sink(loaded: Settings, text: str, redis_conn) -> str:
    audit = AuditLog(redis_conn, loaded)
    audit.record(
        "comment", session_id="s", actor=text, command="x", target=text, result="ok",
        detail={"body": text, text: [text]},
    )  # fmt: skip
    return "\n".join(audit.export())


def events_sink(loaded: Settings, text: str, redis_conn) -> str:
    bus = EventBus(redis_conn, loaded)
    bus.publish("acme/web#4", "note", {"note": text})
    return json.dumps(
        [{k.decode(): v.decode() for k, v in f.items()} for _, f in redis_conn.xrange(
            bus.stream_key("acme/web#4"))]
    )  # fmt: skip


def api_sink(loaded: Settings, text: str, redis_conn) -> str:
    return OperatorApi(loaded, redis_conn, None).json({"note": text}).body.decode()  # type: ignore[arg-type]


SINKS: dict[str, Callable[..., str]] = {
    "log line": log_sink,
    "todo comment": comment_sink,
    "model traffic": model_sink,
    "provider error": provider_sink,
    "audit stream": audit_sink,
    "event stream": events_sink,
    "operator API": api_sink,
}


@pytest.mark.parametrize("sink", sorted(SINKS))
def test_no_secret_shape_survives_any_sink(sink, loaded, redis_conn):
    assert_clean(SINKS[sink](loaded, text_of(loaded), redis_conn), loaded, sink)


def test_the_shapes_leave_ordinary_text_alone():
    text = "task-runner risk-assessment: see https://example.com/a:b and ghost_town sk-8"
    assert redactor_for([]).redact(text) == text


def test_the_review_agent_scrubs_what_the_model_writes(loaded):
    """The review agent's model turns pass the same scrubber as the main agent's: a secret
    the model writes into a file never reaches the workspace the job commits."""
    token = SHAPES["ghs_ token of 25 characters"][0]
    write = ToolCall(
        id="c1",
        name="write_pr_file",
        arguments={"path": "k8s/app.yaml", "content": f"token: {token}\n"},
    )
    model = ScriptedChatModel([ModelTurn(tool_calls=[write]), ModelTurn(text=f"done {token}")])
    ctx = ToolContext(settings=loaded, files={"k8s/app.yaml": "replicas: 1\n"})
    threads = [Thread(id="T1", kind="review", author="mona", text=f"use {token}")]

    async def nothing(_: dict) -> list[str]:
        return []

    notes: dict[str, str] = {}
    tools = review_tools(threads, notes, nothing, nothing)
    answer = asyncio.run(run_review_agent(model, threads, ctx, tools, notes, pr_number=3))

    assert token not in ctx.files["k8s/app.yaml"] and "[redacted]" in ctx.files["k8s/app.yaml"]
    assert token not in answer.summary
    assert all(token not in (m.content or "") for r in model.requests for m in r.messages)
