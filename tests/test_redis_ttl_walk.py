"""Nothing in Redis lives for ever: the whole chain runs (`idp-copilot serve` receives signed
deliveries and operator API calls, `idp-copilot worker` runs the agent against a GitHub
stand-in: a pull request, feedback, a second command waiting in line, a dry run), then
every key of the test's Redis DB is walked. A key with no TTL fails the test unless it is
one of the few bounded ones named below, each with the reason it cannot grow for ever."""

from __future__ import annotations

import re

import httpx
import pytest

from app.session_line import drain_stranded
from tests import payloads
from tests.conftest import TEST_REDIS_URL, WEBHOOK_SECRET
from tests.processes import app_environment, settings_of
from tests.test_e2e_subprocess import _work, server  # noqa: F401 (the `server` fixture)

TOKEN = "ops-ann:ttl-walk-operator-token"
AUTH = {"Authorization": "Bearer ttl-walk-operator-token"}
REQUEST = "/idp create-service payments-api --lang python --team payments"

# Keys that may live without a TTL, and why each is bounded anyway. `{p}` is the App's key
# prefix, `{q}` its queue.
BOUNDED: dict[str, str] = {
    r"{p}:audit": "capped stream: XADD MAXLEN ~ IDP_AUDIT_MAX_ENTRIES",
    r"{p}:feedback": "capped stream: XADD MAXLEN ~ IDP_FEEDBACK_MAX_ENTRIES",
    r"{p}:event-stream": "capped stream: XADD MAXLEN ~ 10,000 (app/events.py GLOBAL_MAXLEN)",
    r"rq:queues": "RQ's set of queue names: one member per queue",
    r"rq:workers(:{q})?": "RQ's live workers: a worker removes itself when it stops",
    r"rq:(finished|failed|canceled|deferred|scheduled|wip|started):{q}": (
        "RQ's job registries: sorted by expiry, trimmed by RQ's maintenance"
    ),
    r"rq:job:[\w.-]+": "RQ's job hash while queued or running; RQ sets its TTL when it ends",
    r"rq:queue:{q}": "RQ's queue: drained by the workers",
}


@pytest.fixture
def app_env(standin, tmp_path) -> dict[str, str]:
    """The serve and worker environment of tests/test_e2e_subprocess.py's `server`, with an
    operator token for the API."""
    env = app_environment(
        TEST_REDIS_URL,
        standin.url,
        tmp_path,
        IDP_API_TOKENS=TOKEN,
        IDP_SESSION_SECRET="ttl-walk-cookie-secret",
    )
    env.pop("PROMETHEUS_MULTIPROC_DIR")  # for workers only: `serve` never takes it
    return env


def _comment(url: str, body: str, sender: str = "alice") -> httpx.Response:
    raw = payloads.encode(payloads.issue_comment(body, sender=sender))
    headers = payloads.headers("issue_comment", raw, WEBHOOK_SECRET)
    return httpx.post(f"{url}/api/github/webhooks", content=raw, headers=headers, timeout=10)


def _unbounded(redis_conn, env: dict[str, str]) -> list[str]:
    patterns = [
        re.compile(p.format(p=re.escape(env["IDP_REDIS_PREFIX"]), q=re.escape(env["IDP_QUEUE"])))
        for p in BOUNDED
    ]
    found = []
    for raw in redis_conn.scan_iter(count=1000):
        key = raw.decode()
        if redis_conn.ttl(key) == -1 and not any(p.fullmatch(key) for p in patterns):
            found.append(f"{key} ({redis_conn.type(key).decode()})")
    return sorted(found)


@pytest.mark.slow  # real serve and worker processes
def test_after_the_whole_chain_every_key_expires_or_is_a_named_bounded_one(
    server,  # noqa: F811 (the fixture imported above)
    app_env,
    standin,
    redis_conn,
    tmp_path,
):
    env = app_env
    assert _comment(server, REQUEST).json()["status"] == "queued"
    _work(app_env, tmp_path)
    assert len(standin.github.pulls) == 1

    # Feedback, a read-level command, an error, a duplicate, and a dry run from the API.
    for body in ("/idp feedback nice work", "/idp status", "/idp frobnicate"):
        assert _comment(server, body).status_code == 202
    dry_run = {"repo": payloads.REPO, "text": "/idp create-service cart-api", "dry_run": True}
    started = httpx.post(f"{server}/api/sessions", headers=AUTH, json=dry_run, timeout=10)
    assert started.status_code == 202, started.text
    _work(app_env, tmp_path)

    # A command that finds the session held joins its line, then runs when it is let go.
    lock = f"{env['IDP_REDIS_PREFIX']}:lock:{payloads.REPO}#7"
    redis_conn.set(lock, "a-long-run", px=600_000)
    assert _comment(server, "/idp plan", sender="mia").json()["status"] == "queued"
    _work(app_env, tmp_path)
    line = f"{env['IDP_REDIS_PREFIX']}:lock-line:{payloads.REPO}#7"
    assert redis_conn.llen(line) == 1
    redis_conn.delete(lock)  # the long run died: worker maintenance hands the session on
    assert drain_stranded(redis_conn, settings_of(env)) == 1
    _work(app_env, tmp_path)
    assert redis_conn.llen(line) == 0

    keys = [k.decode() for k in redis_conn.scan_iter(count=1000)]
    assert any(k.startswith(f"{env['IDP_REDIS_PREFIX']}:session:") for k in keys), keys
    assert _unbounded(redis_conn, env) == []
