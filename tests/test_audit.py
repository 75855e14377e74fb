"""The audit log: side effects appended in order, exported as JSON lines, never a secret."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import pytest

from app.audit import AuditLog
from app.cli import main
from tests.conftest import TEST_REDIS_URL, WEBHOOK_SECRET
from tests.job_world import SESSION as WORKFLOW
from tests.job_world import World

SESSION = "acme/payments#12"
INSTALLATION_TOKEN = "ghs_" + "A1b2C3d4" * 5


def record(log: AuditLog, action: str, target: str, **overrides) -> str:
    fields = {
        "session_id": SESSION,
        "actor": "alice",
        "command": "create-service",
        "target": target,
        "result": "created",
    }
    fields.update(overrides)
    return log.record(action, **fields)


def exported(log: AuditLog, since: float | None = None) -> list[dict]:
    return [json.loads(line) for line in log.export(since)]


def test_entries_are_exported_in_the_order_they_were_recorded(redis_conn, settings):
    log = AuditLog(redis_conn, settings)
    record(log, "comment", "acme/payments#12")
    record(log, "branch", "idp/payments-api")
    record(log, "commit", "idp/payments-api", detail={"sha": "3f2a9c1", "files": 9})
    record(log, "pull_request", "acme/payments#13", result="failed: 422 from GitHub")

    entries = exported(log)

    assert [e["action"] for e in entries] == ["comment", "branch", "commit", "pull_request"]
    assert entries[2]["detail"] == {"sha": "3f2a9c1", "files": 9}
    assert entries[3]["result"] == "failed: 422 from GitHub"
    assert {(e["session_id"], e["actor"], e["command"]) for e in entries} == {
        (SESSION, "alice", "create-service")
    }
    times = [datetime.fromisoformat(e["time"]) for e in entries]
    assert times == sorted(times)
    assert len({e["id"] for e in entries}) == 4


def test_since_keeps_only_the_recent_entries(redis_conn, settings):
    now = 1_750_000_000.0
    clock_at = [now - 3 * 86400]
    log = AuditLog(redis_conn, settings, clock=lambda: clock_at[0])
    record(log, "namespace", "payments-staging")
    clock_at[0] = now - 2 * 3600
    record(log, "deploy", "payments-staging/payments-api")
    clock_at[0] = now - 60
    record(log, "label", "acme/payments#13")
    clock_at[0] = now

    assert [e["action"] for e in exported(log, since=3 * 3600)] == ["deploy", "label"]
    assert [e["action"] for e in exported(log, since=600)] == ["label"]
    assert len(exported(log)) == 3
    assert exported(log)[0]["time"] == datetime.fromtimestamp(now - 3 * 86400, UTC).isoformat(
        timespec="milliseconds"
    )


def test_an_entry_from_a_clock_behind_the_log_still_lands_last(redis_conn, settings):
    record(AuditLog(redis_conn, settings), "comment", "acme/payments#12")
    record(AuditLog(redis_conn, settings, clock=lambda: 1_000.0), "check_run", "3f2a9c1")

    assert [e["action"] for e in exported(AuditLog(redis_conn, settings))] == [
        "comment",
        "check_run",
    ]


def test_secrets_never_reach_the_log(redis_conn, settings):
    log = AuditLog(redis_conn, settings)
    record(
        log,
        "repository",
        f"https://x-access-token:{INSTALLATION_TOKEN}@github.com/acme/new-svc.git",
        result=f"failed: bad credentials for {WEBHOOK_SECRET}",
        detail={"headers": {"Authorization": f"token {INSTALLATION_TOKEN}"}, WEBHOOK_SECRET: 1},
    )

    raw = repr(redis_conn.xrange(settings.key("audit")))
    [entry] = exported(log)

    for text in (raw, json.dumps(entry)):
        assert WEBHOOK_SECRET not in text
        assert INSTALLATION_TOKEN not in text
    assert entry["target"] == "https://x-access-token:[redacted]@github.com/acme/new-svc.git"
    assert entry["result"] == "failed: bad credentials for [redacted]"
    assert entry["detail"] == {"headers": {"Authorization": "token [redacted]"}, "[redacted]": 1}


def test_an_unknown_action_is_refused_with_the_known_ones(redis_conn, settings):
    with pytest.raises(ValueError, match="use one of comment, branch, commit"):
        record(AuditLog(redis_conn, settings), "delete_everything", "acme/payments")

    assert exported(AuditLog(redis_conn, settings)) == []


@pytest.fixture
def cli_env(monkeypatch, settings):
    monkeypatch.setenv("REDIS_URL", TEST_REDIS_URL)
    monkeypatch.setenv("IDP_REDIS_PREFIX", settings.redis_prefix)
    monkeypatch.delenv("GITHUB_WEBHOOK_SECRET", raising=False)


def test_cli_exports_the_last_day_to_a_file(redis_conn, settings, cli_env, tmp_path, capsys):
    record(AuditLog(redis_conn, settings, clock=lambda: time.time() - 3 * 86400), "deploy", "old")
    record(AuditLog(redis_conn, settings), "comment", "acme/payments#12")
    out = tmp_path / "audit.jsonl"

    assert main(["audit", "export", "--since", "24h", "--output", str(out)]) == 0

    lines = out.read_text().splitlines()
    assert [json.loads(line)["target"] for line in lines] == ["acme/payments#12"]
    assert f"1 audit entries written to {out}" in capsys.readouterr().err


def test_cli_refuses_a_bad_duration(cli_env, capsys):
    assert main(["audit", "export", "--since", "yesterday"]) == 2

    assert "--since: 'yesterday' is not a duration" in capsys.readouterr().err


def test_a_create_service_workflow_exports_its_comment_commit_and_pull_request(
    settings, redis_conn, no_unmocked_http, monkeypatch, cli_env, tmp_path
):
    world = World(settings, redis_conn, no_unmocked_http, monkeypatch)
    world.comment("/idp create-service payments-api --lang go --team checkout")
    out = tmp_path / "audit.jsonl"

    assert main(["audit", "export", "--output", str(out)]) == 0

    entries = [json.loads(line) for line in out.read_text().splitlines()]
    by_action = {e["action"]: e for e in entries}
    assert {"comment", "branch", "commit", "pull_request"} <= set(by_action)
    for entry in entries:
        assert (entry["actor"], entry["command"], entry["session_id"]) == (
            "alice",
            "create-service",
            WORKFLOW,
        )
    assert by_action["comment"]["target"] == "acme/payments#7"
    assert by_action["commit"]["result"] == "created"
    pull = by_action["pull_request"]
    assert pull["result"] == "created" and pull["detail"]["number"] == world.pr_number()
    assert [e["id"] for e in entries] == sorted(e["id"] for e in entries)
