"""Feedback: `/idp feedback` and 👍/👎 stored per session, exported with the session's outcome."""

from __future__ import annotations

import json
import time

import pytest

from app.cli import main
from app.domain.session import Session, StepRecord, session_id_for
from app.feedback import FeedbackStore, from_reaction, outcome_of
from app.state import SessionStore
from tests.conftest import TEST_REDIS_URL, WEBHOOK_SECRET

SESSION = session_id_for("acme/payments", 12)


def step(tool: str, ok: bool, seconds: float) -> StepRecord:
    start = time.time() - 60
    return StepRecord(
        tool=tool,
        idempotency_key=f"{SESSION}:{tool}",
        ok=ok,
        error=None if ok else "GitHub answered 502 three times",
        started_at=start,
        finished_at=start + seconds,
    )


def save_session(settings, redis_conn, **fields) -> Session:
    session = Session(
        id=SESSION,
        repo="acme/payments",
        number=12,
        requester="alice",
        command="create-service",
        created_at=time.time() - 90,
        **fields,
    )
    SessionStore(redis_conn, settings).save(session)
    return session


def exported(store: FeedbackStore) -> list[dict]:
    return [json.loads(line) for line in store.export("jsonl")]


def test_feedback_round_trips_with_the_sessions_outcome(redis_conn, settings):
    save_session(
        settings,
        redis_conn,
        status="done",
        pr_url="https://github.com/acme/payments/pull/13",
        steps=[step("generate_k8s_manifests", True, 1.5), step("open_pull_request", True, 2.0)],
        token_usage={"input_tokens": 1200, "output_tokens": 300},
    )
    store = FeedbackStore(redis_conn, settings)

    store.add(SESSION, "alice", text="The manifests were exactly what we needed.")
    store.add_reaction(SESSION, "bob", "-1")

    command, reaction = exported(store)
    assert command["session_id"] == SESSION
    assert (command["user"], command["source"], command["rating"]) == ("alice", "command", None)
    assert command["user_feedback"] == "The manifests were exactly what we needed."
    assert (reaction["user"], reaction["source"], reaction["rating"]) == ("bob", "reaction", -1)
    assert reaction["user_feedback"] is None
    assert command["timestamp"] <= reaction["timestamp"]
    for entry in (command, reaction):
        assert entry["session_found"] is True
        assert entry["execution_results"] == {
            "status": "done",
            "command": "create-service",
            "pr_url": "https://github.com/acme/payments/pull/13",
            "failed_steps": 0,
        }
        metrics = entry["performance_metrics"]
        assert metrics["step_count"] == 2
        assert metrics["tool_seconds"] == 3.5
        assert metrics["token_usage"] == {"input_tokens": 1200, "output_tokens": 300}
        assert metrics["duration_seconds"] >= 90


def test_export_reads_the_outcome_the_session_has_now(redis_conn, settings):
    session = save_session(settings, redis_conn, status="running")
    store = FeedbackStore(redis_conn, settings)
    store.add(SESSION, "alice", text="slow", outcome=outcome_of(session))

    session.status = "failed"
    session.steps = [step("deploy_to_staging", False, 4.0)]
    SessionStore(redis_conn, settings).save(session)

    [entry] = exported(store)
    assert entry["execution_results"]["status"] == "failed"
    assert entry["execution_results"]["failed_steps"] == 1
    assert entry["performance_metrics"]["step_count"] == 1


def test_feedback_on_a_deleted_session_keeps_the_outcome_stored_with_it(redis_conn, settings):
    session = save_session(settings, redis_conn, status="done", pr_url="https://x.test/pr/1")
    store = FeedbackStore(redis_conn, settings)
    store.add(SESSION, "alice", rating=1, outcome=outcome_of(session))
    SessionStore(redis_conn, settings).delete(SESSION)

    [entry] = exported(store)
    assert entry["session_found"] is False
    assert entry["execution_results"]["status"] == "done"
    assert entry["execution_results"]["pr_url"] == "https://x.test/pr/1"
    assert entry["rating"] == 1


def test_feedback_text_never_holds_a_secret(redis_conn, settings):
    store = FeedbackStore(redis_conn, settings)
    token = "ghp_" + "Zy9Xw8Vu7T" * 4

    store.add(SESSION, "mallory", text=f"it printed {WEBHOOK_SECRET} and {token} in the log")

    raw = repr(redis_conn.xrange(settings.key("feedback")))
    [entry] = exported(store)
    assert WEBHOOK_SECRET not in raw and token not in raw
    assert entry["user_feedback"] == "it printed [redacted] and [redacted] in the log"


@pytest.mark.parametrize(("content", "rating"), [("+1", 1), ("-1", -1), ("heart", None)])
def test_thumbs_reactions_rate_the_session(content, rating):
    assert from_reaction(content) == rating


def test_a_reaction_counts_once_per_user_and_other_reactions_not_at_all(redis_conn, settings):
    store = FeedbackStore(redis_conn, settings)

    first = store.add_reaction(SESSION, "alice", "+1")
    again = store.add_reaction(SESSION, "alice", "+1")
    other_user = store.add_reaction(SESSION, "bob", "+1")
    heart = store.add_reaction(SESSION, "carol", "heart")

    assert first is not None and other_user is not None
    assert again is None and heart is None
    assert [(e["user"], e["rating"]) for e in exported(store)] == [("alice", 1), ("bob", 1)]


def test_a_redelivered_feedback_command_is_stored_once(redis_conn, settings):
    store = FeedbackStore(redis_conn, settings)

    store.add(SESSION, "alice", text="great", dedupe_key="comment:9001")
    store.add(SESSION, "alice", text="great", dedupe_key="comment:9001")

    assert [e["user_feedback"] for e in exported(store)] == ["great"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"text": "  "}, "needs a text or a rating"),
        ({"rating": 5}, "rating must be -1, 0 or 1"),
        ({"text": "ok", "source": "email"}, "use 'command' or 'reaction'"),
    ],
)
def test_bad_feedback_is_refused(redis_conn, settings, kwargs, message):
    store = FeedbackStore(redis_conn, settings)

    with pytest.raises(ValueError, match=message):
        store.add(SESSION, "alice", **kwargs)
    assert exported(store) == []


def test_only_jsonl_is_exported(redis_conn, settings):
    with pytest.raises(ValueError, match="use jsonl"):
        list(FeedbackStore(redis_conn, settings).export("csv"))


def test_cli_writes_feedback_as_json_lines(redis_conn, settings, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("REDIS_URL", TEST_REDIS_URL)
    monkeypatch.setenv("IDP_REDIS_PREFIX", settings.redis_prefix)
    save_session(settings, redis_conn, status="done")
    store = FeedbackStore(redis_conn, settings)
    store.add(SESSION, "alice", text="first")
    store.add_reaction(SESSION, "bob", "+1")
    out = tmp_path / "feedback.jsonl"

    assert main(["feedback", "export", "--format", "jsonl", "--output", str(out)]) == 0

    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(e["user"], e["execution_results"]["status"]) for e in lines] == [
        ("alice", "done"),
        ("bob", "done"),
    ]
    assert f"2 feedback entries written to {out}" in capsys.readouterr().err
