"""The receiver over HTTP: what GitHub (or anyone else) gets back, and what lands in the queue."""

from __future__ import annotations

import io
import json
import logging

import pytest
import redis.asyncio as aioredis
from prometheus_client import REGISTRY
from rq import Queue
from rq.job import Job, JobStatus
from rq.utils import now
from starlette.testclient import TestClient

from app.config import ConfigError, Settings
from app.logs import configure_logging
from app.tracing import configure_tracing, shutdown_tracing
from app.web import WEBHOOK_PATH, create_app, enqueue_connection
from app.webhooks import route
from jobs.pipelined_redis import PipelinedRedis
from jobs.queue import job_id_for, queue_for, retry_policy
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


def test_a_signed_body_replayed_under_a_new_delivery_id_does_not_run_again(
    client, settings, redis_conn
):
    """Someone who captured a delivery (a log, a proxy) sends its signed body again with a
    fresh X-GitHub-Delivery: the body's digest was seen, so nothing is queued."""
    body = payloads.encode(payloads.issue_comment("/idp create-service billing"))
    headers = payloads.headers("issue_comment", body, WEBHOOK_SECRET, "original")
    first = client.post(WEBHOOK_PATH, content=body, headers=headers)
    replay = client.post(
        WEBHOOK_PATH, content=body, headers={**headers, "X-GitHub-Delivery": "fresh-id"}
    )

    assert first.json()["status"] == "queued"
    assert replay.status_code == 200
    assert replay.json() == {
        "status": "duplicate",
        "reason": "this signed body was already received under another delivery id",
    }
    assert queued(settings, redis_conn) == 1
    assert not redis_conn.exists(Job.key_for(job_id_for("fresh-id")))
    # The body's key lives as long as a delivery id's.
    (key,) = redis_conn.keys(settings.key("body", "*"))
    assert 0 < redis_conn.ttl(key) <= settings.dedupe_ttl


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


class CountingRedis(PipelinedRedis):
    """The receiver's client, recording every command it puts on the wire (connection
    set-up included): one command is one round trip."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.commands: list[str] = []

    def _new_pipe(self):
        pipe = super()._new_pipe()
        send = pipe.send

        def counted(*args):
            self.commands.append(str(args[0]))
            return send(*args)

        pipe.send = counted
        return pipe


def test_an_accepted_delivery_costs_one_redis_round_trip(settings, redis_conn):
    redis_conn.script_flush()  # as after a Redis restart: the server knows no script
    counting = CountingRedis(TEST_REDIS_URL)
    app = create_app(settings, connection=redis_conn, webhook_connection=counting)
    payload = payloads.issue_comment("/idp plan")
    other = payloads.issue_comment("/idp plan")  # another comment: another body
    # Start-up connects and loads the enqueue script, so even the first delivery is one call.
    with TestClient(app) as client:
        assert counting.commands == ["SELECT", "SCRIPT"]
        counting.commands.clear()
        first = deliver(client, "issue_comment", payload, delivery_id="first")
        second = deliver(client, "issue_comment", other, delivery_id="second")
        again = deliver(client, "issue_comment", payload, delivery_id="first")
        replayed = deliver(client, "issue_comment", payload, delivery_id="replayed")
    statuses = [r.json()["status"] for r in (first, second, again, replayed)]
    assert statuses == ["queued", "queued", "duplicate", "duplicate"]
    # Both dedupes (delivery id and signed body) ride in the one script call.
    assert counting.commands == ["EVALSHA", "EVALSHA", "EVALSHA", "EVALSHA"]
    assert queued(settings, redis_conn) == 2


def test_deliveries_after_redis_lost_its_scripts_are_still_queued(settings, redis_conn):
    counting = CountingRedis(TEST_REDIS_URL)
    app = create_app(settings, connection=redis_conn, webhook_connection=counting)
    payload = payloads.issue_comment("/idp plan")
    other = payloads.issue_comment("/idp plan")
    with TestClient(app) as client:
        redis_conn.script_flush()  # Redis restarted while the App kept running
        counting.commands.clear()
        first = deliver(client, "issue_comment", payload, delivery_id="first")
        second = deliver(client, "issue_comment", other, delivery_id="second")
    assert [first.json()["status"], second.json()["status"]] == ["queued", "queued"]
    # EVAL runs the script and caches it again: only the first delivery pays a second call.
    assert counting.commands == ["EVALSHA", "EVAL", "EVALSHA"]
    assert queued(settings, redis_conn) == 2


def test_the_queued_job_is_the_hash_rq_itself_would_store(client, settings, redis_conn):
    payload = payloads.issue_comment("/idp plan")
    assert deliver(client, "issue_comment", payload, delivery_id="d-rq").status_code == 202
    job_id = job_id_for("d-rq")
    stored = redis_conn.hgetall(Job.key_for(job_id))
    fetched = Job.fetch(job_id, connection=redis_conn)
    received_at = fetched.kwargs["trigger"]["received_at"]

    queue = queue_for(redis_conn, settings)
    trigger = route("issue_comment", "d-rq", payload)
    trigger = trigger.model_copy(update={"received_at": received_at})
    rq_job = queue.create_job(
        "jobs.tasks.run_trigger",
        kwargs={"trigger": trigger.model_dump(mode="json")},
        job_id=job_id,
        timeout=settings.job_timeout,
        result_ttl=24 * 3600,
        failure_ttl=7 * 24 * 3600,
        description=f"issue_comment {payloads.REPO}#{trigger.number}",
        retry=retry_policy(),
        meta={"otel": fetched.meta["otel"]},  # the trace carrier: tests/test_trace_tree.py
    )
    rq_job.origin, rq_job._status, rq_job.enqueued_at = queue.name, JobStatus.QUEUED, now()
    encode = redis_conn.get_encoder().encode
    expected = {key.encode(): encode(value) for key, value in rq_job.to_dict().items()}

    assert stored.keys() == expected.keys()
    for key in stored.keys() - {b"created_at", b"enqueued_at"}:
        assert stored[key] == expected[key], key
    assert stored[b"created_at"] <= stored[b"enqueued_at"] <= expected[b"enqueued_at"]
    assert queue.job_ids == [job_id]


def test_a_redis_py_client_queues_deliveries_too(settings, redis_conn):
    # What the receiver uses for URLs the pipelined client does not take (TLS, options).
    tls = settings_with(settings, redis_url="rediss://redis.example:6380/0")
    assert isinstance(enqueue_connection(tls), aioredis.Redis)
    assert isinstance(enqueue_connection(settings), PipelinedRedis)
    client = aioredis.Redis.from_url(TEST_REDIS_URL)
    app = create_app(settings, connection=redis_conn, webhook_connection=client)
    with TestClient(app) as http:
        response = deliver(http, "issue_comment", payloads.issue_comment("/idp plan"))
    assert response.json()["status"] == "queued"
    assert queued(settings, redis_conn) == 1


def test_each_queued_delivery_logs_a_line_with_the_trace_its_job_continues(settings, redis_conn):
    # Tracing as `serve` sets it up with no exporter: spans carry only their context.
    out, root = io.StringIO(), logging.getLogger()
    handlers, level = root.handlers[:], root.level
    configure_tracing(settings, "idp-copilot-web")
    try:
        configure_logging(settings, "INFO", stream=out)
        client = TestClient(create_app(settings, connection=redis_conn))
        deliver(client, "issue_comment", payloads.issue_comment("/idp plan"), delivery_id="d-log")
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        logging.captureWarnings(False)
        shutdown_tracing()
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    (queued_line,) = [line for line in lines if "queued as" in line["message"]]
    carrier = Job.fetch(job_id_for("d-log"), connection=redis_conn).meta["otel"]
    assert queued_line["level"] == "INFO"
    assert queued_line["delivery_id"] == "d-log"
    assert job_id_for("d-log") in queued_line["message"]
    assert carrier["traceparent"].split("-")[1] == queued_line["trace_id"]


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
