"""Console sign-in with GitHub: the App's user OAuth flow and what the signed-in user may read.

The web flow (https://docs.github.com/en/apps/creating-github-apps/authenticating-with-a-
github-app/generating-a-user-access-token-for-a-github-app): redirect to
`{web}/login/oauth/authorize`, exchange the code at `{web}/login/oauth/access_token`, then
ask the API with the user's token. `GET /user/repos` with a GitHub App's user token lists the
repositories both the user and the App can reach, each with the user's `permissions`.
"""

from __future__ import annotations

from urllib.parse import urlencode

import httpx

from app.config import Settings
from app.github.urls import web_url as github_web_url

# GitHub's `permissions` flags, strongest first, and the role names the /idp rules use.
_ROLE_OF_FLAG = (
    ("admin", "admin"),
    ("maintain", "maintain"),
    ("push", "write"),
    ("triage", "triage"),
    ("pull", "read"),
)
# 30 pages of 100: far more repositories than one person works on; beyond it, say so.
MAX_REPO_PAGES = 30


class SignInError(Exception):
    """Sign-in with GitHub failed; the message is safe to show and says what to do."""


class TokenRejected(SignInError):
    """GitHub no longer accepts the user's token (expired or revoked): sign in again."""


def web_url(settings: Settings) -> str:
    """GitHub's web root for the configured API (a stand-in's own address when it is not
    GitHub's)."""
    api = settings.github_api_url.rstrip("/")
    return github_web_url(api) or api


def authorize_url(settings: Settings, redirect_uri: str, state: str) -> str:
    query = urlencode(
        {"client_id": settings.github_client_id or "", "redirect_uri": redirect_uri, "state": state}
    )
    return f"{web_url(settings)}/login/oauth/authorize?{query}"


def role_of(permissions: dict | None) -> str:
    """The strongest role a repository object's `permissions` flags grant, or "none"."""
    for flag, role in _ROLE_OF_FLAG:
        if permissions and permissions.get(flag):
            return role
    return "none"


def _client(settings: Settings) -> httpx.AsyncClient:
    return httpx.AsyncClient(timeout=settings.github_timeout, follow_redirects=False)


def _api_headers(token: str) -> dict[str, str]:
    return {
        "Authorization": f"Bearer {token}",
        "Accept": "application/vnd.github+json",
        "User-Agent": "idp-copilot-console",
    }


async def exchange_code(settings: Settings, code: str, redirect_uri: str) -> str:
    """The user's access token for an authorization `code`."""
    if not settings.github_client_id or settings.github_client_secret is None:
        raise SignInError(
            "Sign-in with GitHub is not configured (GITHUB_CLIENT_ID and "
            "GITHUB_CLIENT_SECRET); sign in with an operator token instead."
        )
    data = {
        "client_id": settings.github_client_id,
        "client_secret": settings.github_client_secret.get_secret_value(),
        "code": code,
        "redirect_uri": redirect_uri,
    }
    try:
        async with _client(settings) as client:
            response = await client.post(
                f"{web_url(settings)}/login/oauth/access_token",
                data=data,
                headers={"Accept": "application/json"},
            )
    except httpx.HTTPError:
        raise SignInError("GitHub did not answer the sign-in; try again.") from None
    body = (
        response.json()
        if response.headers.get("content-type", "").startswith("application/json")
        else {}
    )
    token = body.get("access_token") if isinstance(body, dict) else None
    if response.status_code != 200 or not token:
        reason = body.get("error_description") if isinstance(body, dict) else None
        raise SignInError(
            f"GitHub refused the sign-in ({reason or response.status_code}); start it again."
        )
    return str(token)


async def _get(client: httpx.AsyncClient, url: str, token: str) -> httpx.Response:
    try:
        response = await client.get(url, headers=_api_headers(token))
    except httpx.HTTPError:
        raise SignInError("GitHub did not answer; try again in a moment.") from None
    if response.status_code == 401:
        raise TokenRejected("Your GitHub sign-in has expired; sign in again.")
    if response.status_code != 200:
        raise SignInError(f"GitHub answered {response.status_code}; try again in a moment.")
    return response


async def fetch_login(settings: Settings, token: str) -> str:
    """The signed-in user's login (`GET /user`)."""
    async with _client(settings) as client:
        response = await _get(client, f"{settings.github_api_url}/user", token)
    return str(response.json()["login"])


async def fetch_repo_roles(settings: Settings, token: str) -> dict[str, str]:
    """Every repository the user can reach through the App → the user's role there
    (lower-cased full names: GitHub's names are case-insensitive)."""
    roles: dict[str, str] = {}
    url: str | None = f"{settings.github_api_url}/user/repos?per_page=100"
    async with _client(settings) as client:
        for _ in range(MAX_REPO_PAGES):
            if url is None:
                break
            response = await _get(client, url, token)
            for repo in response.json():
                role = role_of(repo.get("permissions"))
                if role != "none":
                    roles[str(repo["full_name"]).lower()] = role
            url = response.links.get("next", {}).get("url")
    return roles
