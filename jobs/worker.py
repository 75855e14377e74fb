"""`idp-copilot worker`: an RQ worker on the App's queue, connection passed explicitly, and
the worker side of the metrics.

RQ runs each job in a work horse, a process forked for that job alone, so counters moved by
the job would die with it. Workers therefore count in Prometheus multiprocess mode: every
process writes its samples to files in one folder per host (PROMETHEUS_MULTIPROC_DIR, or a
folder per user and IDP_METRICS_PORT in the temp folder), and one worker per host serves
the sum of them on IDP_METRICS_PORT. The worker that binds the port serves; the others log
it and try again now and then, so one takes over when the serving worker stops. When a
horse ends, its worker folds the horse's files into an archive of its own, which keeps the
file count flat however many jobs run. The folder is emptied at start-up only when no other
process uses it (a shared `flock` every worker and horse holds), so a starting worker never
wipes the counts of a running one.

Nothing here imports prometheus_client before `enable_multiprocess_metrics` has set the
folder: prometheus_client picks its storage when it is first imported.
"""

from __future__ import annotations

import fcntl
import logging
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import IO, Any

from rq import Worker
from rq.utils import now

from app.config import Settings
from app.session_line import drain_stranded
from app.state import connect
from jobs.preload import preload
from jobs.queue import queue_for
from jobs.recovery import requeue_abandoned
from jobs.upkeep import schedule_next

log = logging.getLogger(__name__)

# RQ's own maintenance (registry clean-up, the scheduler check) every 30 s.
MAINTENANCE_INTERVAL = 30
# The recovery pass (jobs/recovery.py: jobs of dead workers back on the queue, stranded
# session lines drained) runs more often: every few seconds, at each wake-up of an idle
# worker's blocking dequeue, which returns at least this often.
RECOVERY_INTERVAL = 2
# How often a worker renews the heartbeat of the job it runs; a job whose heartbeat is four
# renewals old has lost its worker and goes back on the queue. A slow job is not affected:
# its worker process, not the job, beats (it only waits for the work horse).
JOB_MONITORING_INTERVAL = 2
ABANDONED_AFTER = 4 * JOB_MONITORING_INTERVAL
# How often a worker that did not get IDP_METRICS_PORT tries again to serve it.
EXPORTER_RETRY_SECONDS = 30.0
LOCK_FILE = ".workers.lock"
# Open for the life of the process (and inherited by its horses): the shared lock that says
# "this folder is in use".
_held: list[IO[str]] = []


def metrics_dir(settings: Settings) -> Path:
    """Where this host's worker processes keep their metrics."""
    if settings.prometheus_multiproc_dir is not None:
        return settings.prometheus_multiproc_dir
    name = f"idp-copilot-metrics-{os.getuid()}-{settings.metrics_port}"
    return Path(tempfile.gettempdir()) / name


def claim_metrics_dir(directory: Path) -> tuple[bool, IO[str]]:
    """Mark `directory` as used by this process (and the processes it forks) while the
    returned file stays open; first, when no other live process uses it, delete the files
    that earlier processes left. The flag is True when it was emptied."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    handle = open(directory / LOCK_FILE, "a")  # noqa: SIM115 - held until the process ends
    emptied = False
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        pass  # another worker (or its horse) is running: its counts stay
    else:
        for stale in directory.glob("*.db"):
            stale.unlink(missing_ok=True)
        emptied = True
    # Exclusive → shared, or wait while another process empties the folder.
    fcntl.flock(handle, fcntl.LOCK_SH)
    return emptied, handle


def enable_multiprocess_metrics(settings: Settings) -> Path:
    """Put this process's metrics in the host's multiprocess folder. Call before anything
    imports prometheus_client (app.telemetry does): it chooses its storage on import."""
    directory = metrics_dir(settings)
    if "prometheus_client" in sys.modules and "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        log.error(
            "prometheus_client was loaded before the worker chose its metrics folder: job "
            "metrics stay in each job's process and are lost when it ends"
        )
    emptied, handle = claim_metrics_dir(directory)
    _held.append(handle)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
    log.info("worker metrics in %s%s", directory, " (emptied)" if emptied else "")
    return directory


def fold_process_metrics(directory: Path, pid: int, into: str) -> None:
    """Add the samples of the ended process `pid` to the archive files named `into` and
    delete its files. Counters and histograms add up; a `mostrecent` gauge keeps the newer
    reading; gauges of live processes (`live*`, `all`) end with the process."""
    from prometheus_client.mmap_dict import MmapedDict

    for path in directory.glob(f"*_{pid}.db"):
        kind = path.name.removesuffix(f"_{pid}.db")  # counter, histogram, gauge_<mode>
        mode = kind.partition("_")[2]
        if kind.startswith("gauge") and (mode.startswith("live") or mode == "all"):
            path.unlink(missing_ok=True)
            continue
        target = MmapedDict(str(directory / f"{kind}_{into}.db"))
        try:
            have = {key: (value, ts) for key, value, ts in target.read_all_values()}
            for key, value, ts in _samples(path):
                if key in have:
                    value, ts = _combine(mode, have[key], (value, ts))
                target.write_value(key, value, ts)
        finally:
            target.close()
        path.unlink(missing_ok=True)


def _samples(path: Path) -> list[tuple[str, float, float]]:
    from prometheus_client.mmap_dict import MmapedDict

    return [(k, v, ts) for k, v, ts, _ in MmapedDict.read_all_values_from_file(str(path))]


def _combine(mode: str, old: tuple[float, float], new: tuple[float, float]) -> tuple[float, float]:
    if mode == "min":
        return min(old, new)
    if mode == "max":
        return max(old, new)
    if mode == "mostrecent":
        return new if new[1] >= old[1] else old
    return old[0] + new[0], 0.0  # counters, histograms, summaries and `sum` gauges


def serve_worker_metrics(settings: Settings, directory: Path) -> bool:
    """Serve the metrics of every process using `directory` on IDP_METRICS_PORT, if this
    worker can bind it; True when it does. Otherwise another worker of this host serves
    them: say so, and keep trying in the background to take over when that worker stops."""
    from prometheus_client import CollectorRegistry
    from prometheus_client.multiprocess import MultiProcessCollector

    # The metrics exist in this process too, so an idle host shows 0 active workflows
    # rather than no series at all.
    from app import telemetry  # noqa: F401

    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(directory))
    port = settings.metrics_port
    if _bind(port, registry):
        log.info("serving this host's worker metrics on port %d", port)
        return True
    log.info(
        "port %d is taken: another worker of this host serves the worker metrics "
        "(IDP_METRICS_PORT); this one takes over if that one stops",
        port,
    )
    threading.Thread(
        target=_retry_bind, args=(port, registry), name="idp-metrics-exporter", daemon=True
    ).start()
    return False


def _bind(port: int, registry: Any) -> bool:
    from prometheus_client import start_http_server

    try:
        server, _ = start_http_server(port, registry=registry)
    except OSError:
        return False
    # Work horses are forks: close the listening socket in them, or a horse outliving its
    # worker would hold the port without answering.
    os.register_at_fork(after_in_child=server.socket.close)
    return True


def _retry_bind(port: int, registry: Any) -> None:
    stop = threading.Event()
    while not stop.wait(EXPORTER_RETRY_SECONDS):
        if _bind(port, registry):
            log.info("took over serving this host's worker metrics on port %d", port)
            return


class ObservedWorker(Worker):
    """An RQ `Worker` that folds each finished work horse's metric files into its own
    archive (see `fold_process_metrics`), when multiprocess metrics are on, and whose
    maintenance puts the jobs of dead workers back on the queue (jobs/recovery.py)."""

    metrics_dir: Path | None = None
    app_settings: Settings | None = None

    # When RQ's own maintenance last ran; RQ's `maintenance_interval` is the recovery pass's.
    rq_maintained_at: float | None = None

    @property
    def dequeue_timeout(self) -> int:
        # An idle worker's blocking dequeue returns this often, and each return may run the
        # recovery pass; RQ's default (worker_ttl - 15 s) would make that every 405 s.
        return RECOVERY_INTERVAL

    def run_maintenance_tasks(self) -> None:
        """The recovery pass every `maintenance_interval` (RECOVERY_INTERVAL); RQ's own
        maintenance only every MAINTENANCE_INTERVAL."""
        for queue in self.queues:
            requeue_abandoned(queue, stale_after=ABANDONED_AFTER)
        if self.app_settings is not None:
            # Sessions whose holder died: the next job in their line runs (jobs/session_line.py).
            drain_stranded(self.connection, self.app_settings)
        clock = time.monotonic()
        if self.rq_maintained_at is None or clock - self.rq_maintained_at >= MAINTENANCE_INTERVAL:
            self.rq_maintained_at = clock
            super().run_maintenance_tasks()  # sets last_cleaned_at
        else:
            self.last_cleaned_at = now()  # RQ's timer: the next pass comes in RECOVERY_INTERVAL

    def monitor_work_horse(self, job: Any, queue: Any, execution: Any) -> None:
        horse = self.horse_pid
        super().monitor_work_horse(job, queue, execution)
        # Fold only once the horse is gone (RQ sets the pid to 0 after reaping it).
        if self.metrics_dir is not None and horse and not self.horse_pid:
            try:
                fold_process_metrics(self.metrics_dir, horse, f"archive-{os.getpid()}")
            except (OSError, ValueError) as exc:
                log.warning("metrics of job process %d not folded: %s", horse, exc)


def build_worker(settings: Settings, name: str | None = None) -> ObservedWorker:
    connection = connect(settings)
    queue = queue_for(connection, settings)
    worker = ObservedWorker(
        [queue],
        connection=connection,
        name=name,
        maintenance_interval=RECOVERY_INTERVAL,
        job_monitoring_interval=JOB_MONITORING_INTERVAL,
        # The worker's own key lives this long between beats (an idle worker beats at every
        # dequeue return, a busy one every JOB_MONITORING_INTERVAL).
        worker_ttl=MAINTENANCE_INTERVAL + 15,
    )
    worker.app_settings = settings
    return worker


def run_worker(
    settings: Settings,
    burst: bool = False,
    name: str | None = None,
    *,
    metrics_dir: Path | None = None,
) -> bool:
    """Work until stopped (SIGTERM: warm shutdown after the current job) or, in burst mode,
    until the queue is empty. `metrics_dir`: the folder `enable_multiprocess_metrics` set."""
    # Without configure_logging (e.g. the demo), plain text; with it, this does nothing.
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    preload(settings)
    worker = build_worker(settings, name)
    worker.metrics_dir = metrics_dir
    # The upkeep sweep's next run (one per period whichever worker schedules it).
    schedule_next(worker.connection, settings)
    try:
        # The scheduler moves retries (the job's `Retry` intervals) back onto the queue;
        # without it a retried job waits in RQ's scheduled registry for ever.
        return worker.work(burst=burst, logging_level="INFO", with_scheduler=True)
    finally:
        if metrics_dir is not None:
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(os.getpid(), str(metrics_dir))
