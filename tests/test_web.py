"""The receiver over HTTP: what GitHub (or anyone else) gets back, and what lands in the queue."""

from __future__ import annotations

import logging

import pytest
import redis.asyncio as aioredis
from prometheus_client import REGISTRY
from rq import Queue
from rq.job import Job
from starlette.testclient import TestClient

from app.config import ConfigError, Settings
from app.web import WEBHOOK_PATH, create_app
from jobs.queue import job_id_for
from tests import payloads
from tests.conftest import TEST_REDIS_URL, WEBHOOK_SECRET

CLOSED_PORT_REDIS = "redis://127.0.0.1:1/0"


def settings_with(settings: Settings, **overrides) -> Settings:
    return Settings(**{**settings.model_dump(), **overrides})


@pytest.fixture
def client(settings, redis_conn):
    return TestClient(create_app(settings, connection=redis_conn))


def deliver(client, event, payload, *, secret=WEBHOOK_SECRET, delivery_id=None, **extra):
    body = payloads.encode(payload)
    headers = payloads.headers(event, body, secret, delivery_id)
    headers.update(extra.pop("headers", {}))
    return client.post(WEBHOOK_PATH, content=extra.pop("content", body), headers=headers)


def queued(settings, redis_conn) -> int:
    return Queue(settings.queue_name, connection=redis_conn).count


def deliveries(event: str, outcome: str) -> float:
    labels = {"event": event, "outcome": outcome}
    return REGISTRY.get_sample_value("idp_webhook_deliveries_total", labels) or 0.0


# -- accepted ------------------------------------------------------------------------------


def test_signed_command_is_queued_as_one_job_carrying_the_trigger(client, settings, redis_conn):
    response = deliver(
        client, "issue_comment", payloads.issue_comment("/idp plan"), delivery_id="d-1"
    )
    assert response.status_code == 202
    assert response.json() == {
        "status": "queued",
        "reason": "issue_comment.created",
        "job_id": job_id_for("d-1"),
    }
    assert queued(settings, redis_conn) == 1
    job = Job.fetch(job_id_for("d-1"), connection=redis_conn)
    trigger = job.kwargs["trigger"]
    assert trigger["delivery_id"] == "d-1"
    assert trigger["repo"] == payloads.REPO
    assert [c["verb"] for c in trigger["commands"]] == ["plan"]
    assert job.timeout == settings.job_timeout


def test_the_same_delivery_twice_gives_one_job(client, settings, redis_conn):
    payload = payloads.issue_comment("/idp create-service billing")
    first = deliver(client, "issue_comment", payload, delivery_id="same")
    second = deliver(client, "issue_comment", payload, delivery_id="same")
    assert first.status_code == 202
    assert second.status_code == 200
    assert second.json()["status"] == "duplicate"
    assert queued(settings, redis_conn) == 1


def test_new_issue_form_is_queued(client, settings, redis_conn):
    response = deliver(client, "issues", payloads.issues_opened())
    assert response.json()["status"] == "queued"
    assert queued(settings, redis_conn) == 1


def test_a_second_secret_verifies_during_rotation(settings, redis_conn):
    rotated = settings_with(settings, github_webhook_secret=f"fresh-secret, {WEBHOOK_SECRET}")
    client = TestClient(create_app(rotated, connection=redis_conn))
    payload = payloads.issue_comment("/idp status")
    assert deliver(client, "issue_comment", payload, secret="fresh-secret").status_code == 202
    assert deliver(client, "issue_comment", payload, secret=WEBHOOK_SECRET).status_code == 202
    assert deliver(client, "issue_comment", payload, secret="retired").status_code == 401
    assert queued(rotated, redis_conn) == 2


class CountingRedis(aioredis.Redis):
    """An asyncio client (the receiver's kind) that records every round trip: one per
    command, one per pipeline execute."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.round_trips: list[str] = []

    async def execute_command(self, *args, **options):
        self.round_trips.append(str(args[0]))
        return await super().execute_command(*args, **options)

    def pipeline(self, transaction=True, shard_hint=None):
        pipe = super().pipeline(transaction, shard_hint)
        execute = pipe.execute

        async def counted(*args, **kwargs):
            self.round_trips.append("pipeline")
            return await execute(*args, **kwargs)

        pipe.execute = counted
        return pipe


def test_an_accepted_delivery_costs_one_redis_round_trip(settings, redis_conn):
    redis_conn.script_flush()  # as after a Redis restart: the server knows no script
    counting = CountingRedis.from_url(TEST_REDIS_URL)
    payload = payloads.issue_comment("/idp plan")
    app = create_app(settings, connection=redis_conn, webhook_connection=counting)
    # Start-up loads the enqueue script, so even the first delivery is a single call.
    with TestClient(app) as client:
        counting.round_trips.clear()
        first = deliver(client, "issue_comment", payload, delivery_id="first")
        second = deliver(client, "issue_comment", payload, delivery_id="second")
    assert [first.json()["status"], second.json()["status"]] == ["queued", "queued"]
    assert counting.round_trips == ["EVALSHA", "EVALSHA"]
    assert queued(settings, redis_conn) == 2


# -- ignored -------------------------------------------------------------------------------


def test_bot_comment_is_ignored_and_nothing_queued(client, settings, redis_conn):
    payload = payloads.issue_comment("/idp plan", sender="idp-copilot[bot]", sender_type="Bot")
    response = deliver(client, "issue_comment", payload)
    assert response.status_code == 202
    assert response.json() == {"status": "ignored", "reason": "sender is a bot"}
    assert queued(settings, redis_conn) == 0


def test_comment_on_closed_issue_is_ignored(client, settings, redis_conn):
    payload = payloads.issue_comment("/idp plan", state="closed")
    assert deliver(client, "issue_comment", payload).json()["reason"] == "issue is closed"
    assert queued(settings, redis_conn) == 0


def test_ping_answers_pong(client, settings, redis_conn):
    response = deliver(client, "ping", payloads.ping())
    assert response.status_code == 202
    assert response.json() == {"status": "ignored", "reason": "pong"}


# -- rejected ------------------------------------------------------------------------------


def test_wrong_signature_is_refused_and_counted(client, settings, redis_conn):
    before = REGISTRY.get_sample_value("idp_webhook_signature_failures_total") or 0.0
    response = deliver(client, "issue_comment", payloads.issue_comment("/idp plan"), secret="x")
    assert response.status_code == 401
    assert response.json() == {"status": "rejected", "reason": "signature does not match"}
    assert REGISTRY.get_sample_value("idp_webhook_signature_failures_total") == before + 1
    assert queued(settings, redis_conn) == 0


def test_missing_signature_is_refused(client, settings, redis_conn):
    response = deliver(client, "issue_comment", payloads.issue_comment("/idp plan"), secret=None)
    assert response.status_code == 401
    assert response.json()["reason"] == "signature missing"


def test_body_changed_after_signing_is_refused(client):
    payload = payloads.issue_comment("/idp plan")
    tampered = payloads.encode(payloads.issue_comment("/idp apply"))
    assert deliver(client, "issue_comment", payload, content=tampered).status_code == 401


@pytest.mark.parametrize("header", ["X-GitHub-Event", "X-GitHub-Delivery"])
def test_missing_github_headers_are_refused(client, header):
    body = payloads.encode(payloads.ping())
    headers = payloads.headers("ping", body, WEBHOOK_SECRET)
    del headers[header]
    response = client.post(WEBHOOK_PATH, content=body, headers=headers)
    assert response.status_code == 400
    assert response.json()["reason"] == f"missing {header} header"


@pytest.mark.parametrize(("body", "reason"), [(b"{not json", "valid JSON"), (b"[1]", "object")])
def test_malformed_json_is_refused(client, body, reason):
    headers = payloads.headers("issue_comment", body, WEBHOOK_SECRET)
    response = client.post(WEBHOOK_PATH, content=body, headers=headers)
    assert response.status_code == 400
    assert reason in response.json()["reason"]


@pytest.fixture
def small_client(settings, redis_conn):
    return TestClient(create_app(settings_with(settings, max_body_bytes=1000), redis_conn))


def test_oversized_body_is_refused_by_its_content_length(small_client, settings, redis_conn):
    body = b'{"pad": "' + b"x" * 2000 + b'"}'
    headers = payloads.headers("issues", body, WEBHOOK_SECRET)
    response = small_client.post(WEBHOOK_PATH, content=body, headers=headers)
    assert response.status_code == 413
    assert response.json() == {"status": "rejected", "reason": "body exceeds 1000 bytes"}


def test_oversized_chunked_body_without_content_length_is_refused(small_client):
    body = b'{"pad": "' + b"x" * 2000 + b'"}'
    headers = payloads.headers("issues", body, WEBHOOK_SECRET)

    def chunks():
        for start in range(0, len(body), 256):
            yield body[start : start + 256]

    response = small_client.post(WEBHOOK_PATH, content=chunks(), headers=headers)
    assert response.status_code == 413


def test_body_longer_than_its_content_length_claims_is_refused(small_client):
    body = b'{"pad": "' + b"x" * 2000 + b'"}'
    headers = payloads.headers("issues", body, WEBHOOK_SECRET) | {"Content-Length": "100"}
    assert small_client.post(WEBHOOK_PATH, content=body, headers=headers).status_code == 413


def test_body_within_the_limit_passes(small_client):
    assert deliver(small_client, "ping", {"zen": "ok"}).status_code == 202


# -- failures ------------------------------------------------------------------------------


def test_redis_down_answers_503_so_the_delivery_shows_as_failed(settings):
    down = settings_with(settings, redis_url=CLOSED_PORT_REDIS)
    client = TestClient(create_app(down))
    response = deliver(client, "issue_comment", payloads.issue_comment("/idp plan"))
    assert response.status_code == 503
    assert response.json()["status"] == "unavailable"
    assert client.get("/readyz").status_code == 503
    assert client.get("/healthz").status_code == 200


def test_unexpected_error_gives_a_generic_500_and_logs_no_body(client, monkeypatch, caplog):
    def explode(event, delivery_id, payload):
        raise RuntimeError(f"cannot handle {payload['comment']['body']}")

    monkeypatch.setattr("app.web.route", explode)
    with caplog.at_level(logging.ERROR, logger="app.web"):
        response = deliver(client, "issue_comment", payloads.issue_comment("/idp secret-words"))
    assert response.status_code == 500
    assert response.json() == {"status": "error", "reason": "internal error; see the server log"}
    assert "RuntimeError" in caplog.text
    assert "secret-words" not in caplog.text
    assert "Traceback" not in response.text


def test_app_refuses_to_start_without_a_webhook_secret(settings, redis_conn):
    with pytest.raises(ConfigError, match="GITHUB_WEBHOOK_SECRET"):
        create_app(settings_with(settings, github_webhook_secret=None), redis_conn)


# -- probes and metrics --------------------------------------------------------------------


def test_health_and_readiness_with_redis_up(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ok"}


def test_metrics_show_deliveries_by_event_and_outcome(client):
    before = deliveries("issue_comment", "queued")
    deliver(client, "issue_comment", payloads.issue_comment("/idp status"))
    text = client.get("/metrics").text
    line = 'idp_webhook_deliveries_total{event="issue_comment",outcome="queued"}'
    assert f"{line} {before + 1}" in text
    assert "idp_enqueue_seconds_count" in text
    assert "idp_workflows_started" in text  # the prototype's names are registered


def test_unsigned_junk_events_do_not_grow_the_metric_labels(client):
    deliver(client, "made-up-event-123", {"x": 1}, secret=None)
    assert "made-up-event-123" not in client.get("/metrics").text
    assert deliveries("other", "rejected") >= 1


def test_unknown_paths_and_methods_answer_json(client):
    assert client.get("/nope").json()["status"] == "error"
    response = client.get(WEBHOOK_PATH)
    assert response.status_code == 405
    assert response.json()["status"] == "error"
