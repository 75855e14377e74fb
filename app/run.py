"""`idp-copilot run "REQUEST" [--repo OWNER/REPO]`: the prototype's CLI, one session in the
foreground. It goes through the same handlers as a webhook job (permissions, config, the
agent, the publisher) and prints each task as it changes. Without `--repo` it answers on the
LocalForge; with one, on GitHub through the App.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid

from app.config import ConfigError, Settings
from app.domain.session import session_id_for
from app.grammar.commands import Command, Trigger, parse_comment
from app.state import SessionStore, connect

log = logging.getLogger(__name__)
LOCAL_REPO = "local/sandbox"
_MARK = {"done": "x", "skipped": "x"}


def build_trigger(request: str, repo: str | None, number: int, sender: str) -> Trigger:
    """A Trigger as the receiver would build it for a comment holding `request`."""
    text = request.strip()
    if text.lower().startswith("/idp"):
        commands, errors = parse_comment(text)
        if errors:
            raise ConfigError("; ".join(e.message for e in errors))
    else:
        commands = [Command(verb="request", text=text, line=text)]
    return Trigger(
        delivery_id=f"run-{uuid.uuid4()}",
        event="cli",
        repo=repo or LOCAL_REPO,
        number=number,
        sender=sender,
        title=text[:80],
        commands=commands,
        dry_run=repo is None,
    )


def _follow(settings: Settings, session_id: str, stop: threading.Event) -> None:
    """Print task changes from the session's event stream until `stop` is set."""
    from app.events import EventBus

    bus = EventBus(connect(settings), settings)
    last = bus.last_id(session_id)
    while not stop.is_set():
        for event in bus.read(session_id, last, block_ms=200):
            last = event.id
            data = event.data
            if event.kind == "task":
                mark = _MARK.get(data.get("status", ""), " ")
                detail = f" — {data['detail']}" if data.get("detail") else ""
                print(f"  [{mark}] {data.get('id')}: {data.get('status')}{detail}", flush=True)
            elif event.kind == "note":
                print(f"  note: {data.get('note')}", flush=True)


def _serve_metrics(port: int) -> None:
    from prometheus_client import start_http_server

    try:
        start_http_server(port, addr="127.0.0.1")
        print(f"metrics on http://127.0.0.1:{port}/metrics")
    except OSError as exc:  # another worker or run holds the port: metrics are a nicety here
        print(f"metrics not served on port {port}: {exc.strerror}")


def run_request(
    settings: Settings, request: str, repo: str | None, number: int, sender: str
) -> int:
    """Run one request to completion here; exit code 0 when the session is done or waiting."""
    from jobs.tasks import run_parsed

    if repo is None:
        settings = settings.model_copy(update={"forge": "local"})
    trigger = build_trigger(request, repo, number, sender)
    connection = connect(settings)
    session_id = session_id_for(trigger.repo, trigger.number)
    _serve_metrics(settings.metrics_port)
    stop = threading.Event()
    follower = threading.Thread(target=_follow, args=(settings, session_id, stop), daemon=True)
    follower.start()
    try:
        outcome = asyncio.run(run_parsed(trigger, settings, connection))
    finally:
        stop.set()
        follower.join(timeout=2)
    session = SessionStore(connection, settings).get(session_id)
    print(f"\noutcome: {outcome}")
    if session is None:
        return 1
    if session.rendered_todo:
        print(session.rendered_todo)
    if session.pr_url:
        print(f"pull request: {session.pr_url} (branch {session.branch})")
    if repo is None:
        print(f"local forge: {settings.local_forge_root.resolve()}")
    return 0 if session.status in ("done", "waiting") else 1
