"""The ingest candidates (bench/candidates_*.py) run end to end on a tiny load and print a
figure per variant; the decoding one also checks that every variant read the same values,
the Redis one that every call queued its job. No timing is asserted: the figures belong in
bench/RESULTS.md."""

from __future__ import annotations

import re
import shutil

import pytest

from bench import candidates_redis
from tests.conftest import TEST_REDIS_URL
from tests.processes import run_module


def test_the_decoding_candidates_read_the_same_fields_and_print_a_figure_each(capsys):
    pytest.importorskip("msgspec", reason="needs msgspec: pip install -e '.[bench]'")
    from bench import candidates_decode

    assert candidates_decode.main(["--loops", "1", "--repeat", "1"]) == 0
    out = capsys.readouterr().out
    for name in candidates_decode.VARIANTS:
        assert re.search(rf"^{re.escape(name)} +\d+\.\d\d us", out, re.MULTILINE), out


def test_the_redis_candidates_queue_every_call_and_print_a_figure_each(redis_conn, capsys):
    argv = ["--calls", "64", "--rounds", "2", "--redis-url", TEST_REDIS_URL]
    assert candidates_redis.main(argv) == 0
    out = capsys.readouterr().out.split("medians over", 1)[1]
    for name in candidates_redis.VARIANTS:
        figure = rf"^{re.escape(name)} +\d+\.\d us CPU/call +\d+ calls/s"
        assert re.search(figure, out, re.MULTILINE), out


@pytest.mark.skipif(shutil.which("wrk") is None, reason="needs wrk: apt-get install -y wrk")
def test_the_asgi_server_candidates_both_serve_the_app(redis_conn):
    pytest.importorskip("granian", reason="needs granian: pip install -e '.[bench]'")
    argv = ["--requests", "100", "--warmup", "20", "--rounds", "1"]
    argv += ["--redis-url", TEST_REDIS_URL]
    done = run_module("bench.candidates_http", *argv)
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    for name in ("uvicorn", "granian"):
        assert re.search(rf"^{name}: +\d+ requests/s", done.stdout, re.MULTILINE), done.stdout
    assert re.search(r"^ratio granian/uvicorn: \d+\.\d\d", done.stdout, re.MULTILINE)
