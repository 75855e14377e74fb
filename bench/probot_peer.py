"""The Probot peer of the ingest benchmark: Probot 14 from npm (bench/probot/, versions pinned
in its package-lock.json) serving an app that verifies each delivery and LPUSHes it to Redis.

`ensure_installed` runs `npm ci` there when node_modules is missing or older than the lock
file; `command` is the server's command line. The peer answers 200 for a delivery it pushed
and 400 for a bad signature (@octokit/webhooks), so the benchmark checks both its statuses and
the length of its Redis list.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from bench.wrk import BenchError

FOLDER = Path(__file__).with_name("probot")
APP = FOLDER / "app.js"
QUEUE_KEY = "idpbench:probot"  # the Redis list the peer pushes every delivery to
NODE_MAJOR = 20  # Probot 14 runs on Node.js 20.18+ and 22+


def missing() -> str | None:
    """Why the peer cannot run here (no node or npm, too old a node), or None."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        return f"the Probot peer needs Node.js {NODE_MAJOR}+ and npm (node: {node}, npm: {npm})"
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=False)
    major = version.stdout.strip().lstrip("v").split(".")[0]
    if not major.isdigit() or int(major) < NODE_MAJOR:
        return f"the Probot peer needs Node.js {NODE_MAJOR}+, this is {version.stdout.strip()}"
    return None


def ensure_installed() -> None:
    """Install the pinned packages (npm ci: exactly the lock file) unless they are in place."""
    reason = missing()
    if reason:
        raise BenchError(f"{reason}; or leave Probot out with --no-probot")
    stamp = FOLDER / "node_modules" / ".package-lock.json"  # npm writes it on every install
    lock = FOLDER / "package-lock.json"
    if stamp.exists() and stamp.stat().st_mtime >= lock.stat().st_mtime:
        return
    print("installing the Probot peer: npm ci in bench/probot", flush=True)
    done = subprocess.run(
        ["npm", "ci", "--no-audit", "--no-fund"],
        cwd=FOLDER,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        raise BenchError(f"npm ci in {FOLDER} failed:\n{done.stdout}{done.stderr}"[-3000:])


def command(host: str, port: int) -> list[str]:
    return ["node", str(APP), "--host", host, "--port", str(port)]


def environment(secret: str, redis_url: str) -> dict[str, str]:
    """What the peer reads: the webhook secret, Redis, the list; Probot's info-level logs."""
    return {
        "WEBHOOK_SECRET": secret,
        "REDIS_URL": redis_url,
        "PROBOT_QUEUE_KEY": QUEUE_KEY,
        "LOG_LEVEL": "info",
        "NODE_ENV": "production",
    }
