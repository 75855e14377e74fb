"""The ingest benchmark (`python -m bench.ingest`) runs end to end on a tiny load: every
server answers, every figure prints, every delivery the App accepted is a job in its RQ
queue, and (where Node.js is installed) every one Probot accepted is in its Redis list.
No timing is asserted; the figures themselves belong in bench/RESULTS.md."""

from __future__ import annotations

import re
import shutil

import pytest
from rq import Queue
from rq.job import Job

from bench import probot_peer
from bench.ingest import QUEUE
from tests.conftest import TEST_REDIS_URL
from tests.processes import run_module

FIGURES = r"(\d+) requests/s, p50 [\d.]+ ms, p95 [\d.]+ ms, p99 [\d.]+ ms"

pytestmark = pytest.mark.skipif(
    shutil.which("wrk") is None, reason="the ingest benchmark needs wrk: apt-get install -y wrk"
)


def test_ingest_benchmark_prints_both_figures_and_queues_every_accepted_delivery(redis_conn):
    argv = ["--requests", "200", "--warmup", "50", "--rounds", "1"]
    argv += ["--redis-url", TEST_REDIS_URL, "--keep-queue"]
    with_probot = probot_peer.missing() is None
    argv += [] if with_probot else ["--no-probot"]
    done = run_module("bench.ingest", *argv)
    out = done.stdout
    assert done.returncode == 0, out + done.stderr

    assert f"command: python -m bench.ingest {' '.join(argv)}" in out
    serve = re.search(rf"^serve: +{FIGURES}", out, re.MULTILINE)
    bare = re.search(rf"^bare: +{FIGURES}", out, re.MULTILINE)
    assert serve and bare, out
    assert int(serve.group(1)) > 0 and int(bare.group(1)) > 0
    assert re.search(r"^ratio serve/bare: \d+\.\d\d \(paired", out, re.MULTILINE)
    if with_probot:
        probot = re.search(rf"^probot: +{FIGURES}", out, re.MULTILINE)
        assert probot and int(probot.group(1)) > 0, out
        assert re.search(r"^ratio serve/probot: \d+\.\d\d \(paired", out, re.MULTILINE)
        pushed = int(re.search(r"in its Redis list: (\d+)", out).group(1))
        assert pushed == 250
        assert redis_conn.llen(probot_peer.QUEUE_KEY) == pushed

    # Every request carried a new delivery id: all 250 were accepted and each is one job.
    accepted = int(re.search(r"serve accepted \(202\): (\d+)", out).group(1))
    assert accepted == 250
    queue = Queue(QUEUE, connection=redis_conn)
    assert queue.count == accepted
    job = Job.fetch(queue.get_job_ids(0, 1)[0], connection=redis_conn)
    assert [c["verb"] for c in job.kwargs["trigger"]["commands"]] == ["plan"]
