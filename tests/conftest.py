"""Shared fixtures: a real Redis on a DB of the suite's own, settings, and a guard that
fails any HTTP request no test mocked (loopback stays reachable for our own servers)."""

from __future__ import annotations

import os

import pytest
import redis as redis_lib
import respx

from app.config import Settings

TEST_REDIS_URL = os.environ.get("IDP_TEST_REDIS_URL", "redis://127.0.0.1:6379/13")
WEBHOOK_SECRET = "test-webhook-secret"


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "slow: real worker processes (and their start-up); 10 to 60 s each"
    )


@pytest.fixture
def redis_conn():
    """A real Redis on the DB of IDP_TEST_REDIS_URL, flushed before and after each test."""
    conn = redis_lib.Redis.from_url(TEST_REDIS_URL)
    try:
        conn.ping()
    except redis_lib.ConnectionError:
        pytest.fail(f"Redis is not reachable at {TEST_REDIS_URL}: run scripts/ensure-redis.sh")
    conn.flushdb()
    yield conn
    conn.flushdb()
    conn.close()


@pytest.fixture
def settings(tmp_path, redis_conn) -> Settings:
    """Settings for one test: its own Redis DB, a LocalForge in tmp_path, the rules planner."""
    return Settings(
        redis_url=TEST_REDIS_URL,
        redis_prefix="idptest",
        queue_name="idptest",
        github_webhook_secret=WEBHOOK_SECRET,
        forge="local",
        local_forge_root=tmp_path / "forge",
        llm_provider="rules",
        # Writes back to back: the per-minute budget still applies, and tests/test_throttle.py
        # checks the one-second spacing with a clock of its own instead of real sleeps.
        github_write_interval=0.0,
    )


@pytest.fixture(autouse=True)
def no_unmocked_http(monkeypatch):
    """Any HTTP request to a host no test mocked fails loudly; loopback passes through.
    The LLM SDKs send through httpx2, which respx does not patch: route it through respx."""
    from tests.llm_fixtures import send_sdk_traffic_to_respx

    send_sdk_traffic_to_respx(monkeypatch)
    with respx.mock(assert_all_mocked=True, assert_all_called=False) as mock:
        mock.route(host="127.0.0.1").pass_through()
        mock.route(host="localhost").pass_through()
        yield mock


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture
def app_settings(settings):
    """The suite's settings as the test GitHub App (tests/github_api.py), on the GitHub forge."""
    from tests import github_api as gh

    return gh.as_app(settings)


@pytest.fixture
def github(no_unmocked_http):
    """GitHub's REST API, faked with respx (tests/github_api.py), for in-process forges."""
    from tests import github_api as gh

    return gh.FakeGitHub(no_unmocked_http)


@pytest.fixture
def retry_waits(monkeypatch) -> list[float]:
    """The waits githubkit's retry loop asks for, in order, recorded instead of slept."""
    import githubkit.core

    waited: list[float] = []

    async def record(seconds: float) -> None:
        waited.append(seconds)

    monkeypatch.setattr(githubkit.core.anyio, "sleep", record)
    return waited


@pytest.fixture
def standin():
    """The GitHub stand-in server (tests/github_standin.py) for tests/payloads.py's repository,
    where alice may write and mia maintains."""
    from tests import payloads
    from tests.github_standin import GitHubStandIn

    owner, name = payloads.REPO.split("/")
    with GitHubStandIn(owner, name) as s:
        s.github.permissions.update({"alice": ("write", "write"), "mia": ("write", "maintain")})
        yield s


# -- the operator API and console ---------------------------------------------------------


@pytest.fixture
def api_settings(settings):
    from tests.operator_api import operator_settings

    return operator_settings(settings)


@pytest.fixture
def client(api_settings, redis_conn):
    """The whole app (receiver, API, console) over https, as the console is served: its
    session cookie is `Secure`, which a client sends over https only."""
    from starlette.testclient import TestClient

    from app.server import build_app

    with TestClient(build_app(api_settings, redis_conn), base_url="https://testserver") as c:
        yield c


@pytest.fixture
def store(api_settings, redis_conn):
    from app.state import SessionStore

    return SessionStore(redis_conn, api_settings)


@pytest.fixture
def operator(client):
    """`client`, signed in to the console with the operator token."""
    from tests.operator_api import sign_in

    assert sign_in(client).status_code == 303
    return client
