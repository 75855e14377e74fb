"""Small holes in the operator API's and the console's authentication, each closed: secrets
and form tokens with non-ASCII characters are compared as bytes (a 4xx, never a 500), and
the console's cookie is `Secure` unless the operator says the console runs on plain http."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from app.server import COOKIE, build_app
from app.web import WEBHOOK_PATH, create_app
from tests import payloads
from tests.operator_api import TOKEN, operator_settings


@pytest.fixture
def client(settings, redis_conn):
    with TestClient(
        build_app(operator_settings(settings), redis_conn), base_url="https://testserver"
    ) as test_client:
        yield test_client


def test_a_non_ascii_form_token_is_refused_not_a_server_error(client):
    client.get("/console/login")  # the browser's session gets its form token

    response = client.post("/console/login", data={"csrf": "jeton-é", "token": TOKEN})

    assert response.status_code == 400
    assert "the form has expired" in response.text


def test_a_non_ascii_sign_in_state_is_refused_not_a_server_error(client):
    start = client.get("/console/login/github", follow_redirects=False)
    assert start.status_code == 302

    response = client.get("/console/login/github/callback", params={"code": "c", "state": "état-ü"})

    assert response.status_code == 400
    assert "The sign-in expired or came from elsewhere" in response.text


@pytest.mark.parametrize("token", ["tökén", "\u00ff" * 40, TOKEN + "é"])
def test_a_non_ascii_bearer_token_is_a_401(client, token):
    response = client.get("/api/me", headers={"Authorization": f"Bearer {token}".encode()})

    assert response.status_code == 401


def _console_cookie(response) -> str:
    cookies = [v for k, v in response.headers.multi_items() if k == "set-cookie"]
    (cookie,) = [c for c in cookies if c.startswith(f"{COOKIE}=")]
    return cookie.lower()


def test_the_console_cookie_is_secure_http_only_and_same_site(client):
    cookie = _console_cookie(client.get("/console/login"))

    assert "; secure" in cookie and "; httponly" in cookie and "samesite=lax" in cookie


def test_the_console_cookie_drops_secure_only_when_the_operator_says_http(settings, redis_conn):
    app = build_app(operator_settings(settings, console_insecure_cookie=True), redis_conn)
    client = TestClient(app)  # plain http, as in local development

    cookie = _console_cookie(client.get("/console/login"))

    assert "; secure" not in cookie and "; httponly" in cookie


@pytest.mark.parametrize("signature", ["sha256=é" + "0" * 63, "sha256=" + "\u00ff" * 64, "ü"])
def test_a_non_ascii_webhook_signature_is_a_401(settings, redis_conn, signature):
    body = payloads.encode(payloads.issue_comment("/idp plan"))
    headers = payloads.headers("issue_comment", body, None)
    client = TestClient(create_app(settings, connection=redis_conn))

    response = client.post(
        WEBHOOK_PATH,
        content=body,
        headers={**headers, "X-Hub-Signature-256": signature.encode("latin-1")},
    )

    assert response.status_code == 401
    assert response.json()["reason"] == "signature does not match"
