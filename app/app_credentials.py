"""The credentials of a newly registered GitHub App: the one-time code exchange of GitHub's
manifest flow, and the `.env` file they are written to (mode 0600), for `idp-copilot register`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import httpx

from app.config import ConfigError

# The conversions endpoint is the same in every REST version; this one is the version that
# every GitHub Enterprise Server 3.9+ knows as well.
REST_VERSION = "2022-11-28"


class RegisterError(ConfigError):
    """Registration cannot go on; the message says what to do."""


@dataclass(frozen=True)
class AppCredentials:
    """What GitHub returns once for a new App. Secrets stay out of `repr`."""

    app_id: int
    slug: str
    name: str
    html_url: str
    client_id: str
    client_secret: str = field(repr=False)
    webhook_secret: str | None = field(repr=False)
    pem: str = field(repr=False)

    @property
    def install_url(self) -> str:
        return f"{self.html_url}/installations/new"


def exchange_code(api_url: str, code: str, *, timeout: float = 30.0) -> AppCredentials:
    """Trade the one-time code from GitHub's redirect for the new App's credentials
    (POST /app-manifests/{code}/conversions; no authentication: the code is the proof)."""
    url = f"{api_url.rstrip('/')}/app-manifests/{quote(code, safe='')}/conversions"
    headers = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": REST_VERSION}
    try:
        response = httpx.post(url, headers=headers, timeout=timeout)
    except httpx.HTTPError as exc:
        raise RegisterError(
            f"could not reach {api_url} ({type(exc).__name__}); check the network and "
            "GITHUB_API_URL, then run register again (the code is valid for one hour)."
        ) from None
    if response.status_code in (404, 422):
        raise RegisterError(
            "GitHub did not accept the code: it was used already or is older than an hour. "
            "Open the register page again and create the App anew."
        )
    if response.status_code != 201:
        raise RegisterError(
            f"GitHub answered {response.status_code} to the code exchange; try again shortly."
        )
    try:
        body = response.json()
        return AppCredentials(
            app_id=int(body["id"]),
            slug=str(body["slug"]),
            name=str(body["name"]),
            html_url=str(body["html_url"]).rstrip("/"),
            client_id=str(body["client_id"]),
            client_secret=str(body["client_secret"]),
            webhook_secret=body.get("webhook_secret"),
            pem=str(body["pem"]),
        )
    except (ValueError, KeyError, TypeError):
        raise RegisterError(
            "GitHub's answer to the code exchange lacks the App's credentials; "
            "delete the half-created App in GitHub's settings and register again."
        ) from None


def _env_value(value: str) -> str:
    # One line per variable, unquoted: read the same way by docker compose's env_file,
    # `kubectl create secret --from-env-file`, python-dotenv and pydantic-settings.
    # Settings.private_key() turns the escaped "\n" back into newlines.
    return value.replace("\r", "").replace("\n", "\\n")


def env_file_text(creds: AppCredentials, api_url: str) -> str:
    """The `.env` lines for a registered App (the environment contract of DESIGN.md)."""
    values = {
        "GITHUB_APP_ID": str(creds.app_id),
        "GITHUB_APP_PRIVATE_KEY": creds.pem,
        "GITHUB_WEBHOOK_SECRET": creds.webhook_secret or "",
        "GITHUB_CLIENT_ID": creds.client_id,
        "GITHUB_CLIENT_SECRET": creds.client_secret,
        "GITHUB_API_URL": api_url.rstrip("/"),
    }
    lines = [
        f"# GitHub App {creds.name!r} ({creds.html_url}), written by `idp-copilot register`.",
        "# Secrets: keep this file private (mode 0600) and out of version control.",
        *(f"{key}={_env_value(value)}" for key, value in values.items()),
    ]
    return "\n".join(lines) + "\n"


def check_env_file(path: Path, force: bool) -> None:
    """Refuse, before anything is created on GitHub, a file that cannot be written or would
    overwrite an existing one."""
    if not path.parent.is_dir():
        raise RegisterError(f"{path.parent} is not a folder; pass --env-file in an existing one.")
    if path.exists() and not force:
        raise RegisterError(
            f"{path} exists already; pass --force to replace it or --env-file to choose "
            "another file."
        )


def write_env_file(path: Path, text: str, force: bool) -> None:
    """Create `path` readable and writable by its owner only (0600), never wider even for
    a moment; an existing file is replaced only with `force`."""
    check_env_file(path, force)
    if force and path.exists():
        path.unlink()  # a new file gets mode 0600; an old one might be wider
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise RegisterError(f"{path} appeared while registering; pass --force.") from None
    with os.fdopen(fd, "w") as handle:
        os.fchmod(handle.fileno(), 0o600)  # the umask could only narrow it; make it exact
        handle.write(text)
