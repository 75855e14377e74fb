"""`idp-copilot demo`: the whole chain on this machine with nothing configured.

A signed `/idp create-service` webhook → the receiver (in process) → a real RQ queue on Redis
→ a worker in burst mode → the agent with the `rules` planner → a `LocalForge`. Its keys and
queue carry a prefix of their own, removed at the end, so it shares a Redis with anyone.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import secrets
import subprocess
import uuid
from pathlib import Path

import httpx
import redis

from app.config import ConfigError, Settings, load_settings
from app.domain.session import session_id_for
from app.state import SessionStore, connect

REPO = ("acme", "shop")
ISSUE = 1
REQUEST = "/idp create-service payments-api --lang python --type api --team payments"


def sample_comment_payload(body: str, sender: str = "demo-user") -> dict:
    """An `issue_comment.created` payload shaped like GitHub's (the fields we read and more)."""
    owner, name = REPO
    user = {"login": sender, "id": 1001, "type": "User"}
    return {
        "action": "created",
        "issue": {
            "id": 5001,
            "number": ISSUE,
            "title": "New service: payments-api",
            "state": "open",
            "locked": False,
            "user": user,
            "labels": [],
            "body": "We need a payments API.",
        },
        "comment": {"id": 9001, "body": body, "user": user},
        "repository": {
            "id": 7001,
            "name": name,
            "full_name": f"{owner}/{name}",
            "private": True,
            "default_branch": "main",
            "owner": {"login": owner, "id": 2001, "type": "Organization"},
        },
        "installation": {"id": 42},
        "sender": user,
    }


def _signed_post(settings: Settings, secret: str, payload: dict) -> httpx.Response:
    from app.web import create_app

    body = json.dumps(payload).encode()
    signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    headers = {
        "X-GitHub-Event": "issue_comment",
        "X-GitHub-Delivery": str(uuid.uuid4()),
        "X-Hub-Signature-256": signature,
        "Content-Type": "application/json",
    }

    async def post() -> httpx.Response:
        transport = httpx.ASGITransport(app=create_app(settings))
        async with httpx.AsyncClient(transport=transport, base_url="http://demo") as client:
            return await client.post("/api/github/webhooks", content=body, headers=headers)

    return asyncio.run(post())


def _cleanup(connection: redis.Redis, settings: Settings) -> None:
    for key in connection.scan_iter(match=f"{settings.redis_prefix}:*", count=500):
        connection.delete(key)
    for key in connection.scan_iter(match=f"rq:*{settings.queue_name}*", count=500):
        connection.delete(key)


def run_demo(root: Path) -> int:
    root = root.resolve()
    secret = secrets.token_hex(16)
    prefix = f"idp-demo-{secrets.token_hex(4)}"
    # The worker's job process reads its settings from the environment, like a real worker.
    os.environ.update(
        {
            "GITHUB_WEBHOOK_SECRET": secret,
            "IDP_FORGE": "local",
            "IDP_LOCAL_FORGE_ROOT": str(root),
            "IDP_REDIS_PREFIX": prefix,
            "IDP_QUEUE": prefix,
            "IDP_LLM_PROVIDER": "rules",
        }
    )
    for var in ("GITHUB_APP_ID", "OPENAI_API_KEY", "ANTHROPIC_API_KEY"):
        os.environ.pop(var, None)
    settings = load_settings()
    connection = connect(settings)
    try:
        connection.ping()
    except redis.RedisError:
        raise ConfigError(
            f"Redis does not answer at {settings.redis_url}; start it with "
            "scripts/ensure-redis.sh (or set REDIS_URL)"
        ) from None

    from jobs.worker import run_worker

    try:
        print(f"1. POST a signed issue_comment webhook: {REQUEST!r}")
        response = _signed_post(settings, secret, sample_comment_payload(REQUEST))
        print(f"   receiver answered {response.status_code} {response.json()}")
        if response.status_code != 202:
            return 1
        print(f"2. A worker in burst mode runs the job from RQ queue {settings.queue_name!r}")
        run_worker(settings, burst=True)
        session = SessionStore(connection, settings).get(session_id_for("/".join(REPO), ISSUE))
        if session is None:
            print("   the job left no session: see the worker log above")
            return 1
        comments = sorted((root / "comments" / REPO[0] / REPO[1] / str(ISSUE)).glob("*.md"))
        print(f"3. The todo comment ({len(comments)} comment on the issue):\n")
        for path in comments:
            print(path.read_text())
        repo_dir = root / "repos" / REPO[0] / REPO[1]
        print(f"4. Session status: {session.status}")
        if session.branch:
            listing = subprocess.run(
                ["git", "-C", str(repo_dir), "ls-tree", "-r", "--name-only", session.branch],
                capture_output=True,
                text=True,
                check=False,
            ).stdout
            print(f"   branch {session.branch!r} in {repo_dir} holds:")
            for line in listing.splitlines():
                print(f"     {line}")
            print(f"   pull request: {session.pr_url}")
        return 0 if session.status in ("done", "waiting") else 1
    finally:
        _cleanup(connection, settings)
