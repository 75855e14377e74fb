"""Every request body is read with a cap: the webhook receiver (sized to the largest event
the App routes), the operator API's JSON bodies and the console's forms. A chunked body
with no Content-Length is cut off at the cap too, so nobody makes a process hold more."""

from __future__ import annotations

import asyncio
import json
import re

import pytest
from starlette.testclient import TestClient

from app.api.errors import MAX_BODY_BYTES
from app.config import Settings
from app.console.render import MAX_FORM_BYTES
from app.server import build_app
from app.web import WEBHOOK_PATH, create_app
from tests import payloads
from tests.conftest import WEBHOOK_SECRET
from tests.operator_api import AUTH, operator_settings

# GitHub refuses an issue, pull request or comment body longer than 65,536 characters.
GITHUB_BODY_CHARS = 65_536
# Payloads are capped at 25 MB
# (https://docs.github.com/en/webhooks/webhook-events-and-payloads#payload-cap).
GITHUB_PAYLOAD_CAP = 25 * 1024 * 1024


def _chunks(body: bytes, size: int = 4096):
    for start in range(0, len(body), size):
        yield body[start : start + size]


def _largest_issue_comment() -> bytes:
    """An `issue_comment` whose issue and comment bodies both hold GitHub's most characters,
    each one a control character that JSON spells as six bytes (`\\u0001`): the largest
    body the router reads."""
    text = "\x01" * GITHUB_BODY_CHARS
    payload = payloads.issue_comment(text)
    payload["issue"]["body"] = text
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def test_the_default_webhook_limit_takes_the_largest_routed_event_and_stays_far_below_githubs_cap():
    largest = _largest_issue_comment()
    limit = Settings().max_body_bytes

    assert len(largest) > 700_000  # the measurement is of a worst case, not a small body
    assert len(largest) * 2 < limit < GITHUB_PAYLOAD_CAP / 10


def test_the_largest_routed_event_is_queued_under_the_default_limit(settings, redis_conn):
    body = _largest_issue_comment()
    client = TestClient(create_app(settings, connection=redis_conn))
    headers = payloads.headers("issue_comment", body, WEBHOOK_SECRET)

    response = client.post(WEBHOOK_PATH, content=_chunks(body), headers=headers)

    assert response.status_code == 202, response.text


@pytest.fixture
def app_client(settings, redis_conn):
    app = build_app(operator_settings(settings), redis_conn)
    with TestClient(app, base_url="https://testserver") as client:
        yield client


def test_a_chunked_api_body_past_the_cap_is_refused_without_reading_it_all(app_client):
    body = b'{"repo": "acme/web", "text": "' + b"x" * (MAX_BODY_BYTES + 10) + b'"}'
    headers = {**AUTH, "Content-Type": "application/json"}

    response = app_client.post("/api/sessions", content=_chunks(body), headers=headers)

    assert response.status_code == 413
    assert response.json() == {"error": f"body exceeds {MAX_BODY_BYTES} bytes", "status": 413}


def test_an_api_body_that_says_it_is_too_large_is_refused(app_client):
    headers = {**AUTH, "Content-Type": "application/json", "Content-Length": "999999999"}

    response = app_client.post("/api/sessions", content=b"{}", headers=headers)

    assert response.status_code == 413


def test_a_chunked_console_sign_in_form_past_the_cap_is_refused(app_client):
    page = app_client.get("/console/login").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    form = f"csrf={csrf}&token=".encode() + b"t" * (MAX_FORM_BYTES + 10)
    headers = {"Content-Type": "application/x-www-form-urlencoded"}

    response = app_client.post("/console/login", content=_chunks(form), headers=headers)

    assert response.status_code == 413
    assert f"the form exceeds {MAX_FORM_BYTES} bytes" in response.text


class EndlessBody:
    """An ASGI `receive` that sends 64 KB chunks with no end in sight (up to a hard stop far
    past any cap), counting what the app pulled."""

    CHUNK = 64 * 1024

    def __init__(self, stop_after: int = 64 * 1024 * 1024) -> None:
        self.pulled = 0
        self.stop_after = stop_after

    async def __call__(self) -> dict:
        if self.pulled >= self.stop_after:
            return {"type": "http.request", "body": b"", "more_body": False}
        self.pulled += self.CHUNK
        return {"type": "http.request", "body": b"x" * self.CHUNK, "more_body": True}


async def _post_endless(app, path: str, headers: dict[str, str], body: EndlessBody) -> int:
    sent: list[dict] = []

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "https",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 5000),
        "server": ("testserver", 443),
        "state": {},
    }
    await app(scope, body, send)
    return next(m["status"] for m in sent if m["type"] == "http.response.start")


@pytest.mark.parametrize(
    ("path", "headers", "cap"),
    [
        (WEBHOOK_PATH, {"X-GitHub-Event": "issues", "X-GitHub-Delivery": "d-1"}, None),
        ("/api/sessions", {**AUTH, "Content-Type": "application/json"}, MAX_BODY_BYTES),
        ("/console/login", {"Content-Type": "application/x-www-form-urlencoded"}, MAX_FORM_BYTES),
    ],
)
def test_an_endless_body_is_cut_off_at_the_cap(settings, redis_conn, path, headers, cap):
    app = build_app(operator_settings(settings), redis_conn)
    cap = cap or settings.max_body_bytes
    body = EndlessBody()

    status = asyncio.run(_post_endless(app, path, headers, body))

    assert status == 413
    assert body.pulled <= cap + EndlessBody.CHUNK
