"""The real processes: `idp-copilot serve` and `idp-copilot worker` as subprocesses, a GitHub
stand-in at GITHUB_API_URL, a signed webhook — one todo comment and one pull request."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from app.domain.todo import marker
from tests import github_api as gh
from tests import payloads
from tests.conftest import TEST_REDIS_URL, WEBHOOK_SECRET
from tests.processes import app_environment, free_port

REQUEST = "/idp create-service payments-api --lang python --team payments"


@pytest.fixture
def app_env(standin, redis_conn, tmp_path) -> dict[str, str]:
    # serve writes multiprocess metrics too, before any worker would create the folder.
    (tmp_path / "metrics").mkdir()
    return app_environment(TEST_REDIS_URL, standin.url, tmp_path)


@pytest.fixture
def server(app_env, tmp_path):
    port = free_port()
    log = (tmp_path / "serve.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=app_env,
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
        pytest.fail("serve did not start: " + Path(tmp_path / "serve.log").read_text())
    yield url
    proc.terminate()
    proc.wait(timeout=10)


def _post(url: str, payload: dict, delivery: str) -> httpx.Response:
    body = payloads.encode(payload)
    headers = payloads.headers("issue_comment", body, WEBHOOK_SECRET, delivery_id=delivery)
    return httpx.post(f"{url}/api/github/webhooks", content=body, headers=headers, timeout=10)


def _work(app_env: dict[str, str], tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "app.cli", "worker", "--burst"],
        env=app_env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    (tmp_path / "worker.log").write_text(result.stdout + result.stderr)
    assert result.returncode == 0, result.stderr[-3000:]


def _comment_posts(github) -> int:
    """Comments created on the issue (edits are PATCHes and do not count)."""
    return sum(1 for m, p in github.writes() if m == "POST" and p.endswith("/issues/7/comments"))


def _announce(github, payload: dict) -> None:
    """GitHub holds the comment a webhook announces (the App reacts on it)."""
    comment = payload["comment"]
    author = gh.user(comment["user"]["login"], id=77, at=github.at)
    github.add_comment(7, comment["body"], author, comment_id=comment["id"])


def _todo(github) -> list[dict]:
    return [c for c in github.comments.values() if marker(f"{payloads.REPO}#7") in c["body"]]


def test_serve_and_worker_processes_answer_with_one_comment_and_one_pull_request(
    server, app_env, standin, tmp_path
):
    github = standin.github
    payload = payloads.issue_comment(REQUEST, sender="alice")
    _announce(github, payload)

    first = _post(server, payload, "e2e-1")
    assert first.status_code == 202, first.text
    assert first.json()["status"] == "queued"
    assert _post(server, payload, "e2e-1").json()["status"] == "duplicate"
    _work(app_env, tmp_path)

    todo = _todo(github)
    assert len(todo) == 1, json.dumps(github.comments, indent=1)[:2000]
    assert "- [x]" in todo[0]["body"]
    assert len(github.pulls) == 1
    pull = next(iter(github.pulls.values()))
    files = github.files(pull["branch"])
    assert any(p.endswith("k8s/base/deployment.yaml") for p in files), sorted(files)
    assert any(p.startswith(".github/workflows/") for p in files), sorted(files)
    commits_before = len(github.commits)
    assert _comment_posts(github) == 1

    # The same command again, as a new comment: no second comment, commit or pull request.
    again = payloads.issue_comment(REQUEST, sender="alice")
    assert _post(server, again, "e2e-2").json()["status"] == "queued"
    _work(app_env, tmp_path)
    assert _comment_posts(github) == 1
    assert len(github.pulls) == 1
    assert len(github.commits) == commits_before
    assert standin.unmatched == []
    assert github.reactions == [
        (payload["comment"]["id"], "eyes"),
        (payload["comment"]["id"], "rocket"),
    ]


def test_an_installation_without_workflows_gets_one_line_in_the_todo_and_no_branch(
    server, app_env, standin, tmp_path
):
    """The token the stand-in mints lacks `workflows` (the owner has not accepted it): the
    worker says so in the todo before it writes anything else."""
    github = standin.github
    github.granted.pop("workflows")
    payload = payloads.issue_comment(REQUEST, sender="alice")
    _announce(github, payload)

    assert _post(server, payload, "e2e-no-workflows").status_code == 202
    _work(app_env, tmp_path)

    (todo,) = _todo(github)
    assert "lacks the **Workflows: Read and write** permission" in todo["body"]
    assert set(github.refs) == {"main"} and github.pulls == {} and github.check_runs == []
    assert not [p for m, p in github.writes() if "/git/" in p]
    assert standin.unmatched == []
