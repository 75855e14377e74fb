"""Helpers for the operator API and console tests: settings with an operator token, a real
uvicorn server in a thread (an event stream never ends, so the in-process test client cannot
read one), an SSE reader, and GitHub sign-in through the real OAuth routes with GitHub's
answers mocked."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import httpx
import respx
import uvicorn
from rq import Queue
from starlette.testclient import TestClient
from starlette.types import ASGIApp

from app.config import Settings
from app.grammar.commands import Trigger
from tests.github_api import API, Where, repository, user
from tests.processes import local_worker_env

TOKEN = "operator-token-for-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
WEB = "https://github.com"
CLIENT_ID = "Iv1.console-test"
CLIENT_SECRET = "console-client-secret"
USER_TOKEN = "ghu_user_token"


def operator_settings(settings: Settings, **overrides: object) -> Settings:
    """The test settings plus an operator token and the App's OAuth client."""
    values = {
        **settings.model_dump(),
        "api_tokens": TOKEN,
        "github_client_id": CLIENT_ID,
        "github_client_secret": CLIENT_SECRET,
        "session_secret": "console-cookie-secret",
        **overrides,
    }
    return Settings(**values)


def queued(settings: Settings, redis_conn) -> list[Trigger]:
    """The triggers waiting in the App's RQ queue, oldest first."""
    queue = Queue(settings.queue_name, connection=redis_conn)
    return [Trigger.model_validate(job.kwargs["trigger"]) for job in queue.get_jobs()]


@contextmanager
def serve(app: ASGIApp) -> Iterator[str]:
    """Serve `app` on 127.0.0.1 on a free port; yields the base URL, stops on exit."""
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        log_level="warning",
        lifespan="on",
        timeout_graceful_shutdown=1,  # open event streams must not hold the shutdown up
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def read_events(
    client: httpx.Client, url: str, headers: dict[str, str] | None = None, limit: int = 1000
) -> list[dict]:
    """The events a stream sends before its first heartbeat (or `limit` events), each as
    {"id": the SSE id, **the JSON body}."""
    events: list[dict] = []
    with client.stream("GET", url, headers=headers or {}) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        fields: dict[str, str] = {}
        for line in response.iter_lines():
            if line.startswith(":"):
                return events  # a heartbeat: everything stored has been sent
            if line == "":
                if "data" in fields:
                    events.append({"id": fields.get("id"), **json.loads(fields["data"])})
                    if len(events) >= limit:
                        return events
                fields = {}
                continue
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")
    return events


def repo_of_user(full_name: str, role: str) -> dict:
    """A repository as `GET /user/repos` lists it, with the user's `permissions`."""
    owner, name = full_name.split("/")
    body = repository(at=Where(owner=owner, name=name))
    flags = ("pull", "triage", "push", "maintain", "admin")
    rank = {"read": 1, "triage": 2, "write": 3, "maintain": 4, "admin": 5}[role]
    body["permissions"] = {flag: i < rank for i, flag in enumerate(flags)}
    return body


def mock_github_user(
    mock: respx.MockRouter, login: str, repos: dict[str, str], token: str = USER_TOKEN
) -> None:
    """GitHub's answers to the console's OAuth code exchange, `GET /user` and `GET
    /user/repos` (two pages, linked as GitHub links them)."""
    mock.post(f"{WEB}/login/oauth/access_token").respond(
        200,
        json={"access_token": token, "token_type": "bearer", "scope": ""},
    )
    mock.get(f"{API}/user").respond(200, json={**user(login, id=77), "name": login})
    listed = [repo_of_user(name, role) for name, role in repos.items()]
    half = len(listed) // 2
    second = f"{API}/user/repos?per_page=100&page=2"
    mock.get(second).respond(200, json=listed[half:])
    mock.get(f"{API}/user/repos", params={"per_page": "100"}).respond(
        200, json=listed[:half], headers={"Link": f'<{second}>; rel="next", <{second}>; rel="last"'}
    )


def sign_in_with_github(client: TestClient, mock: respx.MockRouter, login: str, repos: dict):
    """Run the console's GitHub sign-in on `client` (it keeps the cookie)."""
    mock_github_user(mock, login, repos)
    start = client.get("/console/login/github", follow_redirects=False)
    assert start.status_code == 302
    query = parse_qs(urlparse(start.headers["location"]).query)
    assert query["client_id"] == [CLIENT_ID]
    done = client.get(
        "/console/login/github/callback",
        params={"code": "code-from-github", "state": query["state"][0]},
        follow_redirects=False,
    )
    assert done.status_code == 303, done.text
    return done


@contextmanager
def worker_process(settings: Settings) -> Iterator[subprocess.Popen]:
    """A real `idp-copilot worker` on the test's Redis DB, queue and LocalForge; stopped
    (and waited for) on exit."""
    env = local_worker_env(settings, os.environ.get("HOME", "/tmp"))
    command = [str(Path(sys.executable).with_name("idp-copilot")), "worker"]
    process = subprocess.Popen(command, env=env, cwd=Path(__file__).parent.parent)
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# -- the console's forms --------------------------------------------------------------------


def csrf(page_html: str) -> str:
    """The CSRF token of the first form on a console page."""
    return re.search(r'name="csrf" value="([^"]+)"', page_html).group(1)


def sign_in(client, token: str = TOKEN, next_page: str = "/console/sessions"):
    form = client.get("/console/login")
    return client.post(
        "/console/login",
        data={"csrf": csrf(form.text), "token": token, "next": next_page},
        follow_redirects=False,
    )


def post_form(client, page: str, action: str, **fields):
    token = csrf(client.get(page).text)
    return client.post(action, data={"csrf": token, **fields}, follow_redirects=False)


def chat(client, **fields):
    """What the sessions page's chat box posts: repo, text, and optionally number, dry_run."""
    return post_form(client, "/console/sessions", "/console/sessions", **fields)
