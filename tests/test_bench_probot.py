"""The Probot peer of the ingest benchmark (bench/probot/app.js) does what the benchmark
counts on: it takes in a delivery signed with its secret (200, the delivery in its Redis
list) and refuses one whose signature does not match (400, nothing pushed), as Probot's
@octokit/webhooks does for any Probot app. Needs Node.js 20+ and npm; the pinned packages
are installed with `npm ci` on first use.

The signature GitHub sends and how a receiver checks it:
https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries
What @octokit/webhooks' `createNodeMiddleware` (which Probot's Server mounts) answers:
https://app.unpkg.com/@octokit/webhooks@14.1.1/files/README.md#createnodemiddleware
(Probot 14.3.2 pins @octokit/webhooks 14.2.0)
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from bench import probot_peer
from bench.ingest import ROOT, free_port
from bench.wrk import BenchError
from tests import payloads
from tests.conftest import TEST_REDIS_URL

pytestmark = pytest.mark.skipif(
    probot_peer.missing() is not None, reason=probot_peer.missing() or ""
)

SECRET = "probot-peer-secret"


@pytest.fixture
def peer(redis_conn, tmp_path: Path):
    """The peer on a free loopback port, pushing to the test DB; its base URL."""
    try:
        probot_peer.ensure_installed()
    except BenchError as exc:  # no registry in reach, for one
        pytest.skip(f"the Probot peer could not be installed: {exc}")
    port = free_port()
    env = {**os.environ, **probot_peer.environment(SECRET, TEST_REDIS_URL)}
    log = (tmp_path / "probot.log").open("wb")
    process = subprocess.Popen(
        probot_peer.command("127.0.0.1", port), cwd=ROOT, env=env, stdout=log, stderr=log
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, (tmp_path / "probot.log").read_text()
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "the Probot peer did not listen in 60 s"
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


def deliver(base: str, body: bytes, signature: str, delivery: str) -> httpx.Response:
    headers = {
        "Content-Type": "application/json",
        "X-GitHub-Event": "issue_comment",
        "X-GitHub-Delivery": delivery,
        "X-Hub-Signature-256": signature,
    }
    return httpx.post(f"{base}/api/github/webhooks", content=body, headers=headers, timeout=10)


def test_the_probot_peer_pushes_a_signed_delivery_and_refuses_a_bad_signature(peer, redis_conn):
    body = payloads.encode(payloads.issue_comment("/idp plan", number=7))

    forged = deliver(peer, body, payloads.sign(body, "not-the-secret"), "delivery-forged")
    assert forged.status_code == 400
    assert "signature does not match" in forged.json()["error"]
    assert redis_conn.llen(probot_peer.QUEUE_KEY) == 0

    taken = deliver(peer, body, payloads.sign(body, SECRET), "delivery-signed")
    assert taken.status_code == 200
    pushed = [json.loads(item) for item in redis_conn.lrange(probot_peer.QUEUE_KEY, 0, -1)]
    assert [(p["id"], p["name"]) for p in pushed] == [("delivery-signed", "issue_comment")]
    assert pushed[0]["payload"]["comment"]["body"] == "/idp plan"
    assert pushed[0]["payload"]["issue"]["number"] == 7
