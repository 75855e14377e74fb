"""The receiver over TLS: a `rediss://` URL is left to redis-py (the pipelined connection
takes plain connections only), so a real Redis with TLS on, and a certificate made for the
test, proves that path queues a delivery as the plain one does."""

from __future__ import annotations

import shutil
import subprocess
import time

import pytest
import redis
import redis.asyncio as aioredis
from starlette.testclient import TestClient

from app.web import create_app, enqueue_connection
from jobs.queue import job_id_for
from tests import payloads
from tests.processes import free_port
from tests.test_web import deliver, queued, settings_with


@pytest.fixture(scope="module")
def tls_redis_url(tmp_path_factory):
    """A redis-server listening with TLS only, for this module; skipped where the machine
    has no openssl or a redis-server built without TLS."""
    if shutil.which("redis-server") is None or shutil.which("openssl") is None:
        pytest.skip("needs redis-server and openssl")
    folder = tmp_path_factory.mktemp("tls-redis")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    port = free_port()
    server = subprocess.Popen(
        ["redis-server", "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1",
         "--tls-cert-file", str(cert), "--tls-key-file", str(key),
         "--tls-ca-cert-file", str(cert), "--tls-auth-clients", "no",
         "--save", "", "--appendonly", "no", "--dir", str(folder)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"rediss://127.0.0.1:{port}/0?ssl_ca_certs={cert}"
    try:
        deadline = time.monotonic() + 15
        while True:
            if server.poll() is not None:
                out = server.stdout.read().decode(errors="replace") if server.stdout else ""
                pytest.skip(f"redis-server did not start with TLS: {out[-300:]}")
            try:
                if redis.Redis.from_url(url, socket_timeout=1).ping():
                    break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield url
    finally:
        server.terminate()
        server.wait(10)


def test_a_delivery_is_queued_over_tls_through_redis_py(settings, tls_redis_url):
    tls = settings_with(settings, redis_url=tls_redis_url)
    assert isinstance(enqueue_connection(tls), aioredis.Redis)  # not the pipelined client
    store = redis.Redis.from_url(tls_redis_url)

    comment = payloads.issue_comment("/idp plan")

    with TestClient(create_app(tls)) as http:
        first = deliver(http, "issue_comment", comment, delivery_id="t1")
        again = deliver(http, "issue_comment", comment, delivery_id="t1")

    assert first.status_code == 202 and first.json()["status"] == "queued"
    assert again.json()["status"] != "queued"  # deduplicated over TLS too
    assert queued(tls, store) == 1
    assert store.exists(f"rq:job:{job_id_for('t1')}")
    store.flushdb()
