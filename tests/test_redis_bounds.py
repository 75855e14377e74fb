"""Nothing the App keeps in Redis grows without bound: sessions expire IDP_SESSION_TTL after
their last change (a running session is saved at every step), their listing index is
trimmed with them, the audit and feedback streams are capped (XADD MAXLEN ~), and the
per-session marks (dry runs, pull request links, feedback dedupe keys) expire too."""

from __future__ import annotations

import time

from app.audit import AuditLog
from app.config import Settings
from app.domain.session import Session
from app.feedback import FeedbackStore
from app.handling.cancel import mark_cancelled
from app.state import SessionStore

DAY = 24 * 3600


def _bounded(settings: Settings, **overrides) -> Settings:
    return settings.model_copy(update=overrides)


def test_a_saved_session_expires_its_ttl_after_the_last_change(settings, redis_conn):
    store = SessionStore(redis_conn, settings)
    session = Session(id="acme/web#1", repo="acme/web", number=1, status="running")

    store.save(session)
    ttl_after_save = redis_conn.ttl(settings.key("session", session.id))
    mark_cancelled(redis_conn, settings, session.id)  # a write that bypasses `save`
    ttl_after_cancel = redis_conn.ttl(settings.key("session", session.id))

    assert settings.session_ttl == 90 * DAY
    assert settings.session_ttl - 60 < ttl_after_save <= settings.session_ttl
    assert settings.session_ttl - 60 < ttl_after_cancel <= settings.session_ttl
    assert 0 < redis_conn.ttl(settings.key("sessions")) <= settings.session_ttl


def test_a_created_session_has_the_ttl_too(settings, redis_conn):
    store = SessionStore(redis_conn, settings)

    assert store.create(Session(id="acme/web#2", repo="acme/web", number=2))

    assert 0 < redis_conn.ttl(settings.key("session", "acme/web#2")) <= settings.session_ttl


def test_the_listing_index_drops_sessions_older_than_the_ttl(settings, redis_conn):
    short = _bounded(settings, session_ttl=3600)
    store = SessionStore(redis_conn, short)
    index = short.key("sessions")
    redis_conn.zadd(index, {"acme/old#1": time.time() - 2 * 3600})  # expired an hour ago

    store.save(Session(id="acme/new#1", repo="acme/new", number=1))

    assert store.list_ids() == ["acme/new#1"]


def test_the_feedback_stream_is_capped_and_its_dedupe_keys_expire(settings, redis_conn):
    capped = _bounded(settings, feedback_max_entries=1000)
    store = FeedbackStore(redis_conn, capped)

    for i in range(3000):
        store.add("acme/web#1", "alice", text=f"note {i}")
    assert store.add("acme/web#1", "bob", rating=1, dedupe_key="comment:7") is not None
    assert store.add("acme/web#1", "bob", rating=1, dedupe_key="comment:7") is None

    # MAXLEN ~ trims whole nodes of the stream (100 entries each by default).
    assert 1000 <= redis_conn.xlen(store.key) < 1200
    (seen,) = redis_conn.keys(capped.key("feedback", "seen", "*"))
    assert 0 < redis_conn.ttl(seen) <= capped.session_ttl


def test_the_audit_stream_is_capped_by_its_setting(settings, redis_conn):
    capped = _bounded(settings, audit_max_entries=1000)
    log = AuditLog(redis_conn, capped)

    for i in range(3000):
        log.record("comment", session_id=None, actor="a", command="c", target=f"t{i}", result="ok")

    assert 1000 <= redis_conn.xlen(log.key) < 1200
