"""Real `idp-copilot worker` processes against a GitHub stand-in, for the reliability tests
(tests/test_crash_recovery.py, tests/test_concurrency.py) and bench/recovery.py.

Each worker runs in a process group of its own, so `kill()` takes the worker, its work
horse and its scheduler down at once with SIGKILL, as a lost node or an OOM-killed pod would.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
from rq import Worker
from rq.job import Job, JobStatus

from app.config import Settings
from app.grammar.commands import Trigger
from app.webhooks import Ignored, route
from jobs.queue import enqueue_trigger, job_id_for, queue_for
from tests import payloads
from tests.conftest import WEBHOOK_SECRET
from tests.github_api import private_key_pem
from tests.github_standin import GitHubStandIn

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def app_environment(redis_url: str, github_url: str, folder: Path, **extra: str) -> dict[str, str]:
    """The environment of an App process: the GitHub forge at `github_url`, a key prefix and
    queue of its own on `redis_url`, no backoff sleeps, metrics files under `folder`."""
    prefix = f"idprel{uuid.uuid4().hex[:6]}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "IDP_"))}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    env.update(
        REDIS_URL=redis_url,
        IDP_REDIS_PREFIX=prefix,
        IDP_QUEUE=prefix,
        IDP_FORGE="github",
        GITHUB_APP_ID="12345",
        GITHUB_APP_PRIVATE_KEY=private_key_pem(),
        GITHUB_WEBHOOK_SECRET=WEBHOOK_SECRET,
        GITHUB_API_URL=github_url,
        IDP_GITHUB_RETRY_BASE_DELAY="0",
        IDP_GITHUB_WRITE_INTERVAL="0",
        IDP_LLM_PROVIDER="rules",
        IDP_METRICS_PORT=str(free_port()),
        PROMETHEUS_MULTIPROC_DIR=str(folder / "metrics"),
        HOME=str(folder),
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def local_worker_env(settings: Settings, home: str, **extra: str) -> dict[str, str]:
    """The environment of a worker process on the test's Redis DB, queue and LocalForge,
    with the rules planner."""
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": home,
        "REDIS_URL": settings.redis_url,
        "IDP_REDIS_PREFIX": settings.redis_prefix,
        "IDP_QUEUE": settings.queue_name,
        "IDP_FORGE": "local",
        "IDP_LOCAL_FORGE_ROOT": str(settings.local_forge_root),
        "IDP_LLM_PROVIDER": "rules",
        **extra,
    }
    if "PYTHONPATH" in os.environ:
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    return env


def settings_of(env: dict[str, str]) -> Settings:
    """The `Settings` the App's processes read from `env`."""
    return Settings(
        redis_url=env["REDIS_URL"],
        redis_prefix=env["IDP_REDIS_PREFIX"],
        queue_name=env["IDP_QUEUE"],
        github_webhook_secret=WEBHOOK_SECRET,
    )


def deliver_comment(
    connection: redis.Redis, settings: Settings, body: str, *, sender: str = "alice", **kw: Any
) -> str:
    """A comment on issue #7 as the receiver queues it (routed, deduped, enqueued in one round
    trip); returns the delivery id."""
    delivery = kw.pop("delivery_id", None) or str(uuid.uuid4())
    routed = route("issue_comment", delivery, payloads.issue_comment(body, sender=sender, **kw))
    assert not isinstance(routed, Ignored), routed.reason
    assert isinstance(routed, Trigger)
    assert enqueue_trigger(connection, settings, routed)
    return delivery


class WorkerProcess:
    """`idp-copilot worker --name NAME` in a process group of its own, logging to a file."""

    def __init__(self, env: dict[str, str], name: str, log: Path) -> None:
        self.name = name
        self.log = log
        self._out = log.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "worker", "--name", name],
            env=env,
            cwd=ROOT,
            stdout=self._out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_registered(self, connection: redis.Redis, settings: Settings, timeout: float = 30):
        """Until the worker listens on the queue (it registers itself in Redis)."""
        queue = queue_for(connection, settings)
        wait_for(
            lambda: any(w.name == self.name for w in Worker.all(queue=queue)),
            timeout,
            what=f"worker {self.name} to start; its log:\n{self.tail()}",
        )

    def kill(self) -> None:
        """SIGKILL to the worker, its work horse and its scheduler at once: nothing gets to
        clean up. (RQ puts the horse in a process group of its own, hence the walk.)"""
        for pid in [self.process.pid, *descendants(self.process.pid)]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        """Warm shutdown (SIGTERM to the worker), then whatever is left of its group."""
        if self.process.poll() is None:
            self.process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=15)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        self._out.close()

    def tail(self, chars: int = 4000) -> str:
        self._out.flush()
        return self.log.read_text(errors="replace")[-chars:]


def descendants(pid: int) -> list[int]:
    """The pids of every live process below `pid` (Linux: read from /proc)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # the process ended while we looked
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def wait_for(
    check: Callable[[], Any], timeout: float = 20.0, every: float = 0.2, what: str = ""
) -> Any:
    """Poll `check()` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"gave up after {timeout:g} s waiting for {what or check}")


REQUEST = "/idp create-service payments-api --lang python --team payments"


@dataclass
class Recovery:
    """How a run killed mid-way came back: seconds from SIGKILL to the job's end on the
    second worker, and the job as RQ left it."""

    seconds: float
    job: Job
    # The job that ended the workflow: `job`, or the continuation it left when the new run
    # found the dead run's session lock still held and joined the session's line.
    last: Job


def kill_mid_run_and_recover(
    env: dict[str, str],
    connection: redis.Redis,
    standin: GitHubStandIn,
    folder: Path,
    timeout: float = 120.0,
) -> Recovery:
    """A worker runs `REQUEST` until its pull request is being opened; the worker, its work
    horse and its scheduler are SIGKILLed while GitHub is still answering that call (GitHub
    opens the pull request anyway), then a new worker starts. Returns once the job ended."""
    settings = settings_of(env)
    hold = standin.hold("POST", r"/pulls$")
    first = WorkerProcess(env, f"first-{uuid.uuid4().hex[:6]}", folder / "first.log")
    second: WorkerProcess | None = None
    try:
        first.wait_registered(connection, settings)
        job = Job.fetch(
            job_id_for(deliver_comment(connection, settings, REQUEST)), connection=connection
        )
        if not hold.reached.wait(90):
            raise AssertionError(f"the run never opened its pull request:\n{first.tail()}")
        first.kill()
        killed = time.monotonic()
        hold.release()
        second = WorkerProcess(env, f"second-{uuid.uuid4().hex[:6]}", folder / "second.log")
        ended = (JobStatus.FINISHED, JobStatus.FAILED)
        last = job
        while True:
            wait_for(
                lambda job=last: job.get_status(refresh=True) in ended,
                timeout,
                every=0.1,
                what=f"the killed run to be recovered; the new worker's log:\n{second.tail()}",
            )
            result = last.return_value(refresh=True)
            if not (isinstance(result, dict) and "deferred" in result):
                return Recovery(time.monotonic() - killed, job, last)
            last = Job.fetch(result["deferred"], connection=connection)
    finally:
        first.stop()
        if second is not None:
            second.stop()


def run_module(module: str, *argv: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """`python -m module argv…` from the repository root, output captured, exit code kept."""
    return subprocess.run(
        [sys.executable, "-m", module, *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
