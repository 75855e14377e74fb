"""The event bus and its Server-Sent Events streams: what a worker publishes, any web process
serves, and a reconnect with Last-Event-ID continues exactly where the stream broke off."""

from __future__ import annotations

import threading

import httpx
import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from app.events import SESSION_MAXLEN, EventBus
from app.server import build_app
from tests.operator_api import AUTH, operator_settings, read_events, serve, sign_in_with_github

SID = "acme/payments#7"
URL = "/api/sessions/acme/payments/7/events"


@pytest.fixture
def api_settings(settings):
    # The test server speaks plain http, where a client sends no `Secure` cookie.
    return operator_settings(settings, console_insecure_cookie=True)


@pytest.fixture
def bus(api_settings, redis_conn):
    return EventBus(redis_conn, api_settings)


@pytest.fixture
def server(api_settings, redis_conn, bus):
    from app.domain.session import Session
    from app.state import SessionStore

    SessionStore(redis_conn, api_settings).save(Session(id=SID, repo="acme/payments", number=7))
    app = build_app(api_settings, redis_conn, heartbeat=0.3)
    with serve(app) as base, httpx.Client(base_url=base, headers=AUTH, timeout=10) as client:
        yield client


def test_published_events_are_read_back_in_order_after_a_given_id(bus):
    ids = [bus.publish(SID, "task", {"id": f"t{i}", "status": "done"}) for i in range(4)]

    events = bus.read(SID, ids[1])

    assert [e.id for e in events] == ids[2:]
    assert [e.data["id"] for e in events] == ["t2", "t3"]
    assert all(e.session_id == SID and e.kind == "task" for e in events)


def test_each_session_has_its_own_stream_and_the_global_one_sees_both(bus, redis_conn):
    bus.publish(SID, "status", {"status": "running"})
    bus.publish("acme/web#1", "status", {"status": "done"})

    assert [e.data for e in bus.read(SID)] == [{"status": "running"}]
    moved = redis_conn.xrange(bus.global_key)
    assert [f[b"session"].decode() for _, f in moved] == [SID, "acme/web#1"]


def test_the_global_stream_carries_no_tool_arguments(bus, redis_conn):
    bus.publish(SID, "tool_call", {"tool": "render", "args": {"name": "payments-api"}})

    _, fields = redis_conn.xrange(bus.global_key)[0]
    assert b"payments-api" not in fields[b"data"]
    assert bus.read(SID)[0].data["args"] == {"name": "payments-api"}


def test_secret_values_never_reach_the_stream(bus, api_settings):
    secret = api_settings.github_client_secret.get_secret_value()
    bus.publish(SID, "tool_result", {"error": f"call failed with key {secret}"})

    (event,) = bus.read(SID)
    assert secret not in event.data["error"]
    assert "[redacted]" in event.data["error"]


def test_a_session_stream_keeps_about_its_last_thousand_events(bus, redis_conn):
    for i in range(SESSION_MAXLEN + 300):
        bus.publish(SID, "step", {"steps": i})

    assert redis_conn.xlen(bus.stream_key(SID)) < SESSION_MAXLEN + 300
    kept = bus.history(SID, count=2 * SESSION_MAXLEN)
    assert kept[-1].data == {"steps": SESSION_MAXLEN + 299}
    assert [e.data["steps"] for e in kept] == list(
        range(kept[0].data["steps"], SESSION_MAXLEN + 300)
    )


def test_a_sink_that_cannot_reach_redis_drops_the_event_and_the_run_goes_on(api_settings):
    unreachable = redis.Redis(host="127.0.0.1", port=1, retry=Retry(NoBackoff(), 0))
    on_event = EventBus(unreachable, api_settings).sink(SID)

    on_event("task", {"id": "t1", "status": "done"})  # does not raise


def test_the_stream_sends_every_stored_event_with_its_stream_id(server, bus):
    ids = [bus.publish(SID, "task", {"id": f"t{i}", "status": "running"}) for i in range(3)]

    events = read_events(server, URL)

    assert [e["id"] for e in events] == ids
    assert [e["data"]["id"] for e in events] == ["t0", "t1", "t2"]
    assert events[0]["kind"] == "task" and events[0]["session"] == SID


def test_a_reconnect_with_last_event_id_gets_exactly_the_events_it_missed(server, bus):
    sent = [bus.publish(SID, "task", {"id": f"t{i}", "status": "done"}) for i in range(5)]
    first = read_events(server, URL, limit=2)
    assert [e["id"] for e in first] == sent[:2]
    # while the browser is away, the worker carries on
    sent += [bus.publish(SID, "step", {"steps": n}) for n in (5, 6)]

    rest = read_events(server, URL, headers={"Last-Event-ID": first[-1]["id"]})

    assert [e["id"] for e in rest] == sent[2:]
    assert [e["kind"] for e in rest] == ["task", "task", "task", "step", "step"]


def test_the_reconnect_header_wins_over_the_first_connects_query(server, bus):
    sent = [bus.publish(SID, "task", {"id": f"t{i}", "status": "done"}) for i in range(4)]

    events = read_events(
        server, f"{URL}?last_event_id={sent[0]}", headers={"Last-Event-ID": sent[2]}
    )

    assert [e["id"] for e in events] == sent[3:]


def test_an_event_published_while_connected_arrives_live(server, bus):
    before = bus.publish(SID, "status", {"status": "running"})
    timer = threading.Timer(0.1, bus.publish, (SID, "status", {"status": "done"}))
    timer.start()
    try:
        events = read_events(server, URL, headers={"Last-Event-ID": before}, limit=1)
    finally:
        timer.cancel()

    assert [e["data"] for e in events] == [{"status": "done"}]


def test_a_malformed_last_event_id_is_a_400(server):
    response = server.get(URL, headers={"Last-Event-ID": "yesterday"})

    assert response.status_code == 400
    assert "stream id" in response.json()["error"]


def test_the_global_stream_lists_which_sessions_moved(server, bus):
    bus.publish(SID, "status", {"status": "running"})
    bus.publish("acme/web#2", "task", {"id": "t1", "status": "done", "detail": "long text"})

    events = read_events(server, "/api/events")

    assert [(e["session"], e["kind"]) for e in events] == [
        (SID, "status"),
        ("acme/web#2", "task"),
    ]
    assert events[1]["data"] == {"status": "done", "id": "t1"}


def test_a_user_streams_only_events_of_repositories_they_can_read(
    api_settings, redis_conn, bus, no_unmocked_http
):
    app = build_app(api_settings, redis_conn, heartbeat=0.3)
    with serve(app) as base, httpx.Client(base_url=base, timeout=10) as client:
        sign_in_with_github(client, no_unmocked_http, "mona", {"acme/web": "read"})
        bus.publish(SID, "tool_call", {"tool": "open_pull_request", "args": {"title": "payroll"}})
        bus.publish("acme/web#1", "status", {"status": "done"})

        events = read_events(client, "/api/events")
        refused = client.get(URL)

    assert [(e["session"], e["data"]) for e in events] == [("acme/web#1", {"status": "done"})]
    assert refused.status_code == 403
    assert "payroll" not in refused.text and SID not in refused.text
