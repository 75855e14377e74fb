"""Feedback in the operator API and the console: `GET /api/feedback` filtered by repository
and time, only for repositories the caller can read; the console's feedback page; and the
👍/👎 counts per session on the sessions list."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import pytest

from app.domain.session import Session
from app.feedback import FeedbackStore
from app.state import SessionStore
from tests.operator_api import AUTH, sign_in, sign_in_with_github


@pytest.fixture
def feedback(api_settings, redis_conn):
    """Feedback on two repositories, at known times (stream ids are milliseconds)."""
    store = FeedbackStore(redis_conn, api_settings)
    sessions = SessionStore(redis_conn, api_settings)
    for sid in ("acme/web#1", "acme/payments#7"):
        repo, _, number = sid.partition("#")
        sessions.save(Session(id=sid, repo=repo, number=int(number), status="done"))

    def add(at: str, sid: str, user: str, text=None, rating=None) -> None:
        # An entry as FeedbackStore.add writes it, at a chosen time (its stream id).
        ms = int(datetime.fromisoformat(at).replace(tzinfo=UTC).timestamp() * 1000)
        entry = {"session_id": sid, "user": user, "user_feedback": text, "rating": rating}
        entry |= {"source": "command", "outcome": {"status": "done", "step_count": 3}}
        redis_conn.xadd(store.key, {"data": json.dumps(entry)}, id=f"{ms}-0")

    add("2026-11-01T10:00:00", "acme/web#1", "mona", text="Great **PR**", rating=1)
    add("2026-11-02T10:00:00", "acme/web#1", "bob", rating=1)
    add("2026-11-03T10:00:00", "acme/web#1", "eve", rating=-1)
    add("2026-11-04T10:00:00", "acme/payments#7", "cfo", text="payroll numbers wrong", rating=-1)
    return store


def test_feedback_lists_every_entry_newest_first_for_an_operator(client, feedback):
    feedback.add("acme/web#1", "zoe", text="and now", rating=0)

    body = client.get("/api/feedback", headers=AUTH).json()

    assert body["count"] == 5
    assert [e["user"] for e in body["feedback"]] == ["zoe", "cfo", "eve", "bob", "mona"]
    mona = body["feedback"][-1]
    assert mona["timestamp"] == "2026-11-01T10:00:00.000+00:00"
    assert mona["repo"] == "acme/web" and mona["session_id"] == "acme/web#1"
    assert mona["rating"] == 1 and mona["text"] == "Great **PR**" and mona["source"] == "command"


def test_feedback_filters_by_repository_and_time(client, feedback):
    def users(**params) -> list[str]:
        response = client.get("/api/feedback", headers=AUTH, params=params)
        assert response.status_code == 200, response.text
        return [e["user"] for e in response.json()["feedback"]]

    assert users(repo="acme/web") == ["eve", "bob", "mona"]
    assert users(since="2026-11-02", until="2026-11-03T10:00:00Z") == ["eve", "bob"]
    assert users(since="2026-11-03T12:00:00+02:00") == [
        "cfo",
        "eve",
    ]  # 12:00+02:00 is 10:00 UTC: eve is at the bound
    epoch = datetime(2026, 11, 2, 12, tzinfo=UTC).timestamp()
    assert users(repo="ACME/web", since=str(epoch)) == ["eve"]
    assert users(limit="1") == ["cfo"]


def test_a_bad_filter_is_a_sentence_not_a_traceback(client, feedback):
    response = client.get("/api/feedback", headers=AUTH, params={"since": "last tuesday"})

    assert response.status_code == 422
    assert "ISO 8601" in response.json()["error"]
    assert client.get("/api/feedback", headers=AUTH, params={"repo": "../x"}).status_code == 422


def test_a_github_user_sees_feedback_only_on_repositories_they_can_read(
    client, feedback, no_unmocked_http
):
    sign_in_with_github(client, no_unmocked_http, "mona", {"acme/web": "read"})

    body = client.get("/api/feedback").json()
    refused = client.get("/api/feedback", params={"repo": "acme/payments"})

    assert {e["repo"] for e in body["feedback"]} == {"acme/web"}
    assert "payroll" not in str(body)
    assert refused.status_code == 403 and "payroll" not in refused.text


def test_the_feedback_page_shows_entries_with_their_ratings(client, feedback):
    assert sign_in(client).status_code == 303

    page = client.get("/console/feedback", params={"repo": "acme/web"})

    assert page.status_code == 200
    assert "3 entries · 👍 2 · 👎 1" in page.text
    assert "Great <strong>PR</strong>" in page.text
    assert 'href="/console/sessions/acme/web/1"' in page.text
    assert "payroll" not in page.text
    bad = client.get("/console/feedback", params={"since": "soon"})
    assert bad.status_code == 422 and "ISO 8601" in bad.text


def test_the_sessions_list_counts_thumbs_up_and_down_per_session(client, feedback):
    assert sign_in(client).status_code == 303

    page = client.get("/console/sessions").text
    listed = client.get("/api/sessions", headers=AUTH).json()["sessions"]

    row = re.search(r'<tr data-session="acme/web#1">.*?</tr>', page, re.S).group(0)
    assert 'data-up="2" data-down="1"' in row
    assert {s["id"]: s["feedback"] for s in listed} == {
        "acme/web#1": {"up": 2, "down": 1},
        "acme/payments#7": {"up": 0, "down": 1},
    }
