"""`idp-copilot register`: the local page posts github-app.yml to GitHub's create-from-manifest
form; GitHub's redirect brings a code that is exchanged (respx plays GitHub) for credentials,
which land in a new .env file with mode 0600, on GitHub.com and on GitHub Enterprise Server."""

from __future__ import annotations

import json
import queue
import stat
import threading
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest
from dotenv import dotenv_values

from app.app_credentials import RegisterError
from app.cli import main
from app.config import Settings
from app.register import RegistrationServer, new_app_url, web_url
from app.web import WEBHOOK_PATH
from tests.github_api import private_key_pem

ROOT = Path(__file__).resolve().parent.parent
API = "https://api.github.com"
GHES_API = "https://ghe.example.com/api/v3"
CODE = "a1b2c3d4e5f6"


def conversion(*, api: str = API, web: str = "https://github.com", owner: str = "acme") -> dict:
    """The 201 body of POST /app-manifests/{code}/conversions (an integration plus the
    secrets GitHub shows only this once)."""
    owner_url = f"{api}/users/{owner}"
    return {
        "id": 4242,
        "slug": "idp-copilot-acme",
        "node_id": "A_kwDOAAAB",
        "client_id": "Iv23liAbCdEf012345",
        "owner": {
            "login": owner,
            "id": 77,
            "node_id": "O_kgDOAAAATQ",
            "avatar_url": "https://avatars.githubusercontent.com/u/77?v=4",
            "gravatar_id": "",
            "url": owner_url,
            "html_url": f"{web}/{owner}",
            "followers_url": f"{owner_url}/followers",
            "following_url": f"{owner_url}/following{{/other_user}}",
            "gists_url": f"{owner_url}/gists{{/gist_id}}",
            "starred_url": f"{owner_url}/starred{{/owner}}{{/repo}}",
            "subscriptions_url": f"{owner_url}/subscriptions",
            "organizations_url": f"{owner_url}/orgs",
            "repos_url": f"{owner_url}/repos",
            "events_url": f"{owner_url}/events{{/privacy}}",
            "received_events_url": f"{owner_url}/received_events",
            "type": "Organization",
            "site_admin": False,
        },
        "name": "IDP Copilot (acme)",
        "description": "Turns platform requests on issues into reviewed pull requests.",
        "external_url": "https://idp.acme.dev",
        "html_url": f"{web}/apps/idp-copilot-acme",
        "created_at": "2026-01-01T00:00:00Z",
        "updated_at": "2026-01-01T00:00:00Z",
        "permissions": {
            "issues": "write",
            "pull_requests": "write",
            "contents": "write",
            "workflows": "write",
            "checks": "write",
            "metadata": "read",
        },
        "events": ["issues", "issue_comment", "pull_request", "pull_request_review"],
        "installations_count": 0,
        "client_secret": "0123456789abcdef0123456789abcdef01234567",
        "webhook_secret": "e4b1c0ffee5ecret9d8f7a6b5c4d3e2f1a0b9c8d",
        "pem": private_key_pem(),
    }


class _FormReader(HTMLParser):
    """The start page's form: its action and hidden fields (entities decoded)."""

    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.method: str | None = None
        self.fields: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "form":
            self.action, self.method = a.get("action"), a.get("method")
        elif tag == "input" and a.get("name"):
            self.fields[a["name"]] = a.get("value") or ""


@pytest.fixture
def start(tmp_path):
    """Start a registration server on a free port; stopped after the test."""
    servers: list[RegistrationServer] = []

    def run(api: str = API, **kwargs) -> RegistrationServer:
        kwargs.setdefault("env_file", tmp_path / ".env")
        kwargs.setdefault("manifest_path", ROOT / "github-app.yml")
        server = RegistrationServer(Settings(github_api_url=api), port=0, **kwargs)
        server.start()
        servers.append(server)
        return server

    yield run
    for server in servers:
        server.close()


def read_form(server: RegistrationServer) -> _FormReader:
    page = httpx.get(f"{server.url}/")
    assert page.status_code == 200
    form = _FormReader()
    form.feed(page.text)
    return form


def callback(server: RegistrationServer, code: str = CODE, state: str | None = None):
    state = server.state if state is None else state
    return httpx.get(f"{server.url}/callback", params={"code": code, "state": state})


def test_start_page_form_posts_the_manifest_to_githubs_new_app_form(start):
    server = start()
    form = read_form(server)
    assert form.method == "post"
    assert form.action == f"https://github.com/settings/apps/new?state={server.state}"
    manifest = json.loads(form.fields["manifest"])
    assert manifest["redirect_url"] == f"{server.url}/callback"
    assert manifest["hook_attributes"]["url"].endswith(WEBHOOK_PATH)
    assert "pull_request_review_comment" in manifest["default_events"]
    assert manifest["public"] is False


def test_org_registration_posts_to_the_organizations_form(start):
    form = read_form(start(org="acme"))
    assert form.action.startswith("https://github.com/organizations/acme/settings/apps/new?")


def test_public_url_replaces_the_example_host_in_every_app_url(start):
    placeholder = httpx.get(f"{start().url}/").text
    assert "a placeholder: GitHub cannot deliver events there" in placeholder
    server = start(public_url="https://idp.acme.dev/", name="IDP Copilot (acme)")
    page = httpx.get(f"{server.url}/").text
    assert "placeholder" not in page
    form = _FormReader()
    form.feed(page)
    manifest = json.loads(form.fields["manifest"])
    assert manifest["name"] == "IDP Copilot (acme)"
    assert manifest["url"] == "https://idp.acme.dev"
    assert manifest["hook_attributes"]["url"] == f"https://idp.acme.dev{WEBHOOK_PATH}"
    assert manifest["callback_urls"] == ["https://idp.acme.dev/console/login/github/callback"]
    assert manifest["redirect_url"] == f"{server.url}/callback"


def test_callback_exchanges_the_code_and_writes_a_private_env_file(
    start, tmp_path, no_unmocked_http
):
    body = conversion()
    exchange = no_unmocked_http.post(f"{API}/app-manifests/{CODE}/conversions").respond(
        201, json=body
    )
    server = start()
    page = callback(server)

    assert page.status_code == 200
    assert "https://github.com/apps/idp-copilot-acme/installations/new" in page.text
    for secret in (body["pem"], body["client_secret"], body["webhook_secret"]):
        assert secret not in page.text
    assert exchange.call_count == 1
    assert exchange.calls.last.request.headers["accept"] == "application/vnd.github+json"

    env_file = tmp_path / ".env"
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    values = dotenv_values(env_file)
    assert values["GITHUB_APP_ID"] == "4242"
    assert values["GITHUB_WEBHOOK_SECRET"] == body["webhook_secret"]
    assert values["GITHUB_CLIENT_ID"] == body["client_id"]
    assert values["GITHUB_CLIENT_SECRET"] == body["client_secret"]
    assert values["GITHUB_API_URL"] == API
    assert "\n" not in values["GITHUB_APP_PRIVATE_KEY"]  # one line, newlines escaped
    # What the App reads back from the file is the PEM GitHub returned.
    loaded = Settings(_env_file=env_file)
    assert loaded.private_key() == body["pem"]
    assert loaded.webhook_secrets == [body["webhook_secret"].encode()]
    assert server.wait(0).app_id == 4242


def test_a_reloaded_callback_does_not_exchange_the_code_twice(start, no_unmocked_http):
    exchange = no_unmocked_http.post(f"{API}/app-manifests/{CODE}/conversions").respond(
        201, json=conversion()
    )
    server = start()
    assert callback(server).status_code == 200
    again = callback(server)
    assert again.status_code == 200 and "is registered" in again.text
    assert exchange.call_count == 1


def test_a_callback_with_a_foreign_state_is_refused(start, tmp_path, no_unmocked_http):
    exchange = no_unmocked_http.post(f"{API}/app-manifests/{CODE}/conversions").respond(
        201, json=conversion()
    )
    server = start()
    refused = callback(server, state="forged-state")
    assert refused.status_code == 400
    assert "does not belong to this registration" in refused.text
    assert exchange.call_count == 0
    assert not (tmp_path / ".env").exists()


def test_an_expired_code_is_explained_and_nothing_is_written(start, tmp_path, no_unmocked_http):
    no_unmocked_http.post(f"{API}/app-manifests/{CODE}/conversions").respond(
        404, json={"message": "Not Found", "status": "404"}
    )
    server = start()
    page = callback(server)
    assert page.status_code == 502
    assert "used already or is older than an hour" in page.text
    assert not (tmp_path / ".env").exists()
    assert server.wait(0) is None


def test_an_existing_env_file_is_kept_unless_forced(start, tmp_path, no_unmocked_http):
    env_file = tmp_path / ".env"
    env_file.write_text("REDIS_URL=redis://keep-me\n")
    env_file.chmod(0o644)
    with pytest.raises(RegisterError, match="exists already; pass --force"):
        start()
    assert env_file.read_text() == "REDIS_URL=redis://keep-me\n"

    no_unmocked_http.post(f"{API}/app-manifests/{CODE}/conversions").respond(201, json=conversion())
    assert callback(start(force=True)).status_code == 200
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    assert dotenv_values(env_file)["GITHUB_APP_ID"] == "4242"


def test_the_cli_serves_until_github_sends_the_code_back(
    tmp_path, monkeypatch, capsys, no_unmocked_http
):
    no_unmocked_http.post(f"{API}/app-manifests/{CODE}/conversions").respond(201, json=conversion())
    started: queue.Queue[RegistrationServer] = queue.Queue()
    original_start = RegistrationServer.start

    def start(self: RegistrationServer) -> None:
        original_start(self)
        started.put(self)

    monkeypatch.setattr(RegistrationServer, "start", start)
    monkeypatch.delenv("GITHUB_API_URL", raising=False)
    env_file = tmp_path / "app.env"
    argv = ["register", "--port", "0", "--env-file", str(env_file), "--org", "acme"]
    argv += ["--manifest", str(ROOT / "github-app.yml"), "--public-url", "https://idp.acme.dev"]
    exit_code: list[int] = []
    cli = threading.Thread(target=lambda: exit_code.append(main(argv)))
    cli.start()
    server = started.get(timeout=30)
    assert read_form(server).action.startswith("https://github.com/organizations/acme/")
    assert callback(server).status_code == 200
    cli.join(timeout=30)

    assert exit_code == [0]
    out = capsys.readouterr().out
    assert f"Open {server.url}/ in a browser" in out
    assert "install it on your repositories: https://github.com/apps/idp-copilot-acme/" in out
    assert dotenv_values(env_file)["GITHUB_APP_ID"] == "4242"


def test_the_cli_refuses_an_existing_env_file_with_a_sentence(tmp_path, capsys):
    env_file = tmp_path / ".env"
    env_file.write_text("X=1\n")
    code = main(["register", "--env-file", str(env_file), "--port", "0"])
    assert code == 2
    assert "exists already; pass --force" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("api", "web"),
    [
        ("https://api.github.com", "https://github.com"),
        ("https://api.github.com/", "https://github.com"),
        ("https://ghe.example.com/api/v3", "https://ghe.example.com"),
        ("https://ghe.example.com/api/v3/", "https://ghe.example.com"),
        ("https://api.acme.ghe.com", "https://acme.ghe.com"),
    ],
)
def test_github_web_url_derives_from_the_api_url(api, web):
    assert web_url(api) == web


def test_an_api_url_of_no_known_shape_names_the_expected_ones():
    with pytest.raises(RegisterError, match=r"https://HOST/api/v3"):
        web_url("https://ghe.example.com/rest")


def test_enterprise_server_registration_uses_the_server_for_form_and_exchange(
    start, tmp_path, no_unmocked_http
):
    exchange = no_unmocked_http.post(f"{GHES_API}/app-manifests/{CODE}/conversions").respond(
        201, json=conversion(api=GHES_API, web="https://ghe.example.com")
    )
    server = start(api=GHES_API, org="platform")
    form = read_form(server)
    assert form.action == (
        f"https://ghe.example.com/organizations/platform/settings/apps/new?state={server.state}"
    )
    page = callback(server)
    assert page.status_code == 200
    assert "https://ghe.example.com/apps/idp-copilot-acme/installations/new" in page.text
    assert exchange.call_count == 1
    assert dotenv_values(tmp_path / ".env")["GITHUB_API_URL"] == GHES_API
    assert new_app_url("https://ghe.example.com", None) == (
        "https://ghe.example.com/settings/apps/new"
    )
