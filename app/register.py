"""`idp-copilot register`: create the GitHub App from `github-app.yml` with GitHub's manifest
flow, for the operator installing IDP Copilot on GitHub.com or GitHub Enterprise Server.

A small local page posts the manifest to GitHub's "create from manifest" form (for the
user's account or an organization); GitHub sends the browser back to this page's callback
with a one-time code, which is exchanged for the App's id, private key, webhook secret and
OAuth client. They go to a new `.env` file readable by its owner only, and nowhere else.
"""

from __future__ import annotations

import html
import json
import secrets
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import yaml

from app.app_credentials import (
    AppCredentials,
    RegisterError,
    check_env_file,
    env_file_text,
    exchange_code,
    write_env_file,
)
from app.config import Settings
from app.github.permissions import APP_PERMISSIONS, missing
from app.github.urls import web_url as github_web_url

MANIFEST_FILE = Path("github-app.yml")
_EXAMPLE_HOST = "example.com"


def web_url(api_url: str) -> str:
    """GitHub's web address for the configured API root, or a RegisterError saying which
    roots are understood."""
    web = github_web_url(api_url)
    if web is not None:
        return web
    raise RegisterError(
        f"GITHUB_API_URL={api_url!r} is neither https://api.github.com nor a GitHub Enterprise "
        "Server API root (https://HOST/api/v3): set it to one of those."
    )


def new_app_url(web: str, org: str | None) -> str:
    """GitHub's create-from-manifest form, for the signed-in user or for organization `org`."""
    if org:
        return f"{web}/organizations/{quote(org, safe='')}/settings/apps/new"
    return f"{web}/settings/apps/new"


def load_manifest(
    path: Path,
    *,
    redirect_url: str,
    public_url: str | None = None,
    name: str | None = None,
) -> dict[str, Any]:
    """The App manifest from `path`, with GitHub sending its code back to `redirect_url`.
    `public_url` replaces the manifest's base URL (its `url`) in every URL that starts with
    it: where `idp-copilot serve` is reachable. `name` replaces the App's name (names are
    unique on a GitHub instance)."""
    try:
        manifest = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise RegisterError(
            f"cannot read the App manifest {path}: {exc.strerror}. Run from a clone of "
            "IDP Copilot or pass --manifest PATH."
        ) from None
    except yaml.YAMLError as exc:
        raise RegisterError(f"{path} is not valid YAML: {exc}") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("url"), str):
        raise RegisterError(f"{path} is not a GitHub App manifest: it needs a `url` key.")
    if public_url:
        base = manifest["url"].rstrip("/")
        new_base = public_url.rstrip("/")

        def rebase(url: str) -> str:
            return new_base + url[len(base) :] if url.startswith(base) else url

        manifest["url"] = new_base
        hook = manifest.get("hook_attributes")
        if isinstance(hook, dict) and isinstance(hook.get("url"), str):
            hook["url"] = rebase(hook["url"])
        if isinstance(manifest.get("setup_url"), str):
            manifest["setup_url"] = rebase(manifest["setup_url"])
        manifest["callback_urls"] = [rebase(u) for u in manifest.get("callback_urls") or []]
    if name:
        manifest["name"] = name
    manifest["redirect_url"] = redirect_url
    return manifest


def example_host_warning(manifest: dict[str, Any]) -> str | None:
    """A warning when GitHub would send webhooks to the manifest's placeholder host."""
    hook_url = (manifest.get("hook_attributes") or {}).get("url", "")
    if _EXAMPLE_HOST in urlsplit(hook_url).netloc:
        return (
            f"The webhook URL is {hook_url}, a placeholder: GitHub cannot deliver events there. "
            "Pass --public-url https://YOUR-HOST, or change it later on the App's settings page."
        )
    return None


def permission_warning(manifest: dict[str, Any]) -> str | None:
    """A warning when the manifest asks for less than the App's features need (a manifest
    of one's own, or an old copy): jobs needing the rest would stop and name it."""
    asked = manifest.get("default_permissions")
    lacking = missing(APP_PERMISSIONS, asked if isinstance(asked, dict) else {})
    if not lacking:
        return None
    listed = ", ".join(f"{name}: {level}" for name, level in lacking.items())
    return (
        f"The manifest does not ask for {listed}, which IDP Copilot needs (the README's "
        "permission table says for what); add them under default_permissions."
    )


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:44rem;margin:3rem auto;line-height:1.5}}
.warn{{background:#fff8c5;padding:.75rem}} button{{font-size:1.1rem;padding:.5rem 1rem}}</style>
</head><body><h1>{title}</h1>{body}</body></html>
"""


def _page(title: str, body: str) -> str:
    return _PAGE.format(title=html.escape(title), body=body)


class RegistrationServer:
    """The local start page (GET /) and GitHub's redirect target (GET /callback) of the
    manifest flow. `start()` serves in a thread; `wait()` returns the App's credentials."""

    def __init__(
        self,
        settings: Settings,
        *,
        env_file: Path,
        manifest_path: Path = MANIFEST_FILE,
        force: bool = False,
        org: str | None = None,
        host: str = "127.0.0.1",
        port: int = 3000,
        public_url: str | None = None,
        name: str | None = None,
    ) -> None:
        self.api_url = settings.github_api_url.rstrip("/")
        self.web = web_url(self.api_url)
        self.action = new_app_url(self.web, org)
        self.org, self.env_file, self.force = org, env_file, force
        self.manifest_path = manifest_path
        self.state = secrets.token_urlsafe(24)
        self.credentials: AppCredentials | None = None
        self._done = threading.Event()
        self._lock = threading.Lock()
        check_env_file(env_file, force)
        self.manifest = load_manifest(
            manifest_path, redirect_url="", public_url=public_url, name=name
        )
        try:
            self.httpd = HTTPServer((host, port), self._handler_class())
        except OSError as exc:
            raise RegisterError(
                f"cannot listen on {host}:{port} ({exc.strerror}); pass another --port."
            ) from None
        # The browser must reach the callback: a wildcard bind is reached on loopback.
        shown = "127.0.0.1" if host in ("", "0.0.0.0") else host  # noqa: S104
        self.url = f"http://{shown}:{self.httpd.server_address[1]}"
        self.manifest["redirect_url"] = f"{self.url}/callback"
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True
        )
        self._thread.start()

    def wait(self, timeout: float | None = None) -> AppCredentials | None:
        """The credentials once the callback has written them; None after `timeout`."""
        self._done.wait(timeout)
        return self.credentials

    def close(self) -> None:
        if self._thread is not None:
            self.httpd.shutdown()
            self._thread.join()
        self.httpd.server_close()

    # -- pages ------------------------------------------------------------------------------

    def start_page(self) -> tuple[int, str]:
        owner = f"the organization <b>{html.escape(self.org)}</b>" if self.org else "your account"
        warnings = [
            w for w in (example_host_warning(self.manifest), permission_warning(self.manifest)) if w
        ]
        manifest = html.escape(json.dumps(self.manifest), quote=True)
        action = html.escape(f"{self.action}?state={self.state}", quote=True)
        body = (
            f"<p>This creates the GitHub App <b>{html.escape(str(self.manifest.get('name')))}"
            f"</b> for {owner} on {html.escape(self.web)}, from "
            f"<code>{html.escape(str(self.manifest_path))}</code>. GitHub shows its settings "
            "first; nothing is created until you confirm there.</p>"
            + "".join(f'<p class="warn">{html.escape(w)}</p>' for w in warnings)
            + f'<form method="post" action="{action}">'
            f'<input type="hidden" name="manifest" value="{manifest}">'
            f'<button type="submit">Create the GitHub App</button></form>'
            f"<p>GitHub then sends you back here, and the App's credentials are written to "
            f"<code>{html.escape(str(self.env_file))}</code>, readable by you only.</p>"
        )
        return 200, _page("Register IDP Copilot", body)

    def callback(self, query: dict[str, list[str]]) -> tuple[int, str]:
        with self._lock:  # a double-clicked redirect must not exchange the code twice
            if self.credentials is not None:
                return 200, self._done_page(self.credentials)
            state = (query.get("state") or [""])[0].encode()
            code = (query.get("code") or [""])[0]
            restart = '<p>Start again from <a href="/">the start page</a>.</p>'
            if not secrets.compare_digest(state, self.state.encode()) or not code:
                return 400, _page(
                    "This link does not belong to this registration",
                    "<p>The callback has no code or a state this page did not issue.</p>" + restart,
                )
            try:
                creds = exchange_code(self.api_url, code)
            except RegisterError as exc:
                print(f"idp-copilot: {exc}", file=sys.stderr)
                return 502, _page("Registration did not finish", f"<p>{html.escape(str(exc))}")
            try:
                write_env_file(self.env_file, env_file_text(creds, self.api_url), self.force)
            except (RegisterError, OSError) as exc:
                message = (
                    f"The App {creds.name} was created, but {self.env_file} could not be "
                    f"written ({exc}). On {creds.html_url} (App settings) generate a new private "
                    "key and set a webhook secret, or delete the App and register again."
                )
                print(f"idp-copilot: {message}", file=sys.stderr)
                return 500, _page("Credentials not saved", f"<p>{html.escape(message)}</p>")
            self.credentials = creds
            self._done.set()
            return 200, self._done_page(creds)

    def _done_page(self, creds: AppCredentials) -> str:
        body = (
            f"<p>The GitHub App <b>{html.escape(creds.name)}</b> (id {creds.app_id}) exists; "
            f"its credentials are in <code>{html.escape(str(self.env_file))}</code>.</p>"
            f'<p>Next: <a href="{html.escape(creds.install_url, quote=True)}">install it</a> '
            "on the repositories it should serve. You can close this page.</p>"
        )
        return _page("IDP Copilot is registered", body)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            server_version = "idp-copilot-register"

            def do_GET(self) -> None:  # noqa: N802 (the http.server naming)
                parts = urlsplit(self.path)
                if parts.path == "/":
                    status, page = server.start_page()
                elif parts.path == "/callback":
                    status, page = server.callback(parse_qs(parts.query))
                else:
                    status, page = 404, _page("Not found", '<p><a href="/">Start page</a></p>')
                body = page.encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                # The callback URL holds the one-time code: never send it on as a Referer.
                self.send_header("Referrer-Policy", "no-referrer")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass  # request lines carry the one-time code: print none of them

        return Handler


def run_register(settings: Settings, **options: Any) -> int:
    """`idp-copilot register`: serve the page until the App is created, then say what next.
    `options` are `RegistrationServer`'s (env_file, manifest_path, force, org, host, …)."""
    server = RegistrationServer(settings, **options)
    for warning in (example_host_warning(server.manifest), permission_warning(server.manifest)):
        if warning:
            print(f"warning: {warning}", file=sys.stderr)
    org = options.get("org")
    where = f"organization {org}" if org else "your user account"
    print(f"Open {server.url}/ in a browser to create the GitHub App for {where} on {server.web}.")
    print("Waiting for GitHub to send you back (Ctrl-C to stop) ...")
    server.start()
    try:
        creds = server.wait()
    finally:
        server.close()
    assert creds is not None  # wait() without a timeout returns only when done
    print(f"Registered {creds.name} (app id {creds.app_id}); credentials in {server.env_file}.")
    print(f"Next: install it on your repositories: {creds.install_url}")
    return 0
