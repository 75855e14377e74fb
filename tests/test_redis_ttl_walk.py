"""Nothing in Redis lives for ever: the whole chain runs (`idp-copilot serve` receives signed
deliveries and operator API calls, `idp-copilot worker` runs the agent against a GitHub
stand-in: a pull request, feedback, a second command waiting in line, a dry run), then
every key of the test's Redis DB is walked. A key with no TTL fails the test unless it is
one of the few bounded ones named below, each with the reason it cannot grow for ever."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

from app.session_line import drain_stranded
from tests import payloads
from tests.conftest import TEST_REDIS_URL, WEBHOOK_SECRET
from tests.github_api import private_key_pem
from tests.github_standin import GitHubStandIn
from tests.processes import free_port, settings_of

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
def standin():
    owner, name = payloads.REPO.split("/")
    with GitHubStandIn(owner, name) as s:
        s.github.permissions.update({"alice": ("write", "write"), "mia": ("write", "maintain")})
        yield s


@pytest.fixture
def env(standin, tmp_path) -> dict[str, str]:
    prefix = f"idpttl{uuid.uuid4().hex[:6]}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "IDP_"))}
    env.update(
        REDIS_URL=TEST_REDIS_URL,
        IDP_REDIS_PREFIX=prefix,
        IDP_QUEUE=prefix,
        IDP_FORGE="github",
        GITHUB_APP_ID="12345",
        GITHUB_APP_PRIVATE_KEY=private_key_pem(),
        GITHUB_WEBHOOK_SECRET=WEBHOOK_SECRET,
        GITHUB_API_URL=standin.url,
        IDP_GITHUB_RETRY_BASE_DELAY="0",
        IDP_GITHUB_WRITE_INTERVAL="0",
        IDP_LLM_PROVIDER="rules",
        IDP_METRICS_PORT=str(free_port()),
        IDP_API_TOKENS=TOKEN,
        IDP_SESSION_SECRET="ttl-walk-cookie-secret",
        HOME=str(tmp_path),
    )
    return env


@pytest.fixture
def server(env, tmp_path):
    port = free_port()
    log = (tmp_path / "serve.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.1)
    else:
        proc.kill()
        pytest.fail("serve did not start: " + (tmp_path / "serve.log").read_text())
    yield url
    proc.terminate()
    proc.wait(timeout=10)


def _comment(url: str, body: str, sender: str = "alice") -> httpx.Response:
    raw = payloads.encode(payloads.issue_comment(body, sender=sender))
    headers = payloads.headers("issue_comment", raw, WEBHOOK_SECRET)
    return httpx.post(f"{url}/api/github/webhooks", content=raw, headers=headers, timeout=10)


def _work(env: dict[str, str], tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", "worker", "--burst"],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    (tmp_path / "worker.log").write_text(done.stdout + done.stderr)
    assert done.returncode == 0, done.stderr[-3000:]


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
    server, env, standin, redis_conn, tmp_path
):
    assert _comment(server, REQUEST).json()["status"] == "queued"
    _work(env, tmp_path)
    assert len(standin.github.pulls) == 1

    # Feedback, a read-level command, an error, a duplicate, and a dry run from the API.
    for body in ("/idp feedback nice work", "/idp status", "/idp frobnicate"):
        assert _comment(server, body).status_code == 202
    dry_run = {"repo": payloads.REPO, "text": "/idp create-service cart-api", "dry_run": True}
    started = httpx.post(f"{server}/api/sessions", headers=AUTH, json=dry_run, timeout=10)
    assert started.status_code == 202, started.text
    _work(env, tmp_path)

    # A command that finds the session held joins its line, then runs when it is let go.
    lock = f"{env['IDP_REDIS_PREFIX']}:lock:{payloads.REPO}#7"
    redis_conn.set(lock, "a-long-run", px=600_000)
    assert _comment(server, "/idp plan", sender="mia").json()["status"] == "queued"
    _work(env, tmp_path)
    line = f"{env['IDP_REDIS_PREFIX']}:lock-line:{payloads.REPO}#7"
    assert redis_conn.llen(line) == 1
    redis_conn.delete(lock)  # the long run died: worker maintenance hands the session on
    assert drain_stranded(redis_conn, settings_of(env)) == 1
    _work(env, tmp_path)
    assert redis_conn.llen(line) == 0

    keys = [k.decode() for k in redis_conn.scan_iter(count=1000)]
    assert any(k.startswith(f"{env['IDP_REDIS_PREFIX']}:session:") for k in keys), keys
    assert _unbounded(redis_conn, env) == []
