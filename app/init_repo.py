"""`idp-copilot init-repo OWNER/REPO`: one pull request that adds the "New service" issue
form and a commented `.github/idp-copilot.yml` to a repository, for the platform team that
onboards it.

Files already on the default branch are left as they are (a team's own config is never
overwritten). A second run finds the same branch and pull request and commits nothing new.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from importlib import resources
from typing import Any, TypeVar

import httpx
import redis

from app.config import ConfigError, Settings
from app.github.errors import ForgeError
from app.github.forge import Forge, PullRequestInfo, RepoRef
from app.repo_config import CONFIG_PATH, render_example_config

T = TypeVar("T")
ISSUE_FORM_PATH = ".github/ISSUE_TEMPLATE/new-service.yml"
BRANCH = "idp-copilot/init"
TITLE = "Set up IDP Copilot"
COMMIT_MESSAGE = "Add the IDP Copilot issue form and repository settings"
ISSUE_LABEL = "idp:new-service"

_WHAT = {
    ISSUE_FORM_PATH: "the **New service** issue form: developers ask for a service by filling "
    f"it in; it applies the label `{ISSUE_LABEL}`",
    CONFIG_PATH: "this repository's IDP Copilot settings, commented, with the defaults: who may "
    "run which command, which tools wait for `/idp apply`, where generated files go",
}


def issue_form_text() -> str:
    """The "New service" issue form, as shipped with the App."""
    return resources.files("app.repo_templates").joinpath("new-service.yml").read_text()


def onboarding_files() -> dict[str, str]:
    """Path → text of every file `init-repo` adds."""
    return {ISSUE_FORM_PATH: issue_form_text(), CONFIG_PATH: render_example_config()}


@dataclass(frozen=True)
class InitResult:
    """What `init_repo` did: the files its pull request adds, the files left alone because
    the default branch has them, and the pull request (None when nothing was missing)."""

    added: tuple[str, ...]
    kept: tuple[str, ...]
    pull_request: PullRequestInfo | None


def pull_request_body(added: list[str], kept: list[str]) -> str:
    lines = ["IDP Copilot adds what developers need to ask it for services here:", ""]
    lines += [f"- `{path}`: {_WHAT[path]}." for path in added]
    if kept:
        lines += ["", "Already on the default branch and left as they are:"]
        lines += [f"- `{path}`" for path in kept]
    lines += [
        "",
        "Review the settings before merging. The issue form applies the label "
        f"`{ISSUE_LABEL}`: create it under Issues → Labels if this repository lacks it.",
        "After the merge, open an issue from the **New service** form, or comment `/idp help` "
        "on any issue.",
    ]
    return "\n".join(lines) + "\n"


async def init_repo(forge: Forge, repo: RepoRef) -> InitResult:
    """Open (or find) the pull request adding the onboarding files `repo` lacks."""
    added: dict[str, str] = {}
    kept: list[str] = []
    for path, text in onboarding_files().items():
        if await forge.read_file(repo, path) is None:
            added[path] = text
        else:
            kept.append(path)
    if not added:
        return InitResult((), tuple(kept), None)
    await forge.commit_files(repo, BRANCH, added, COMMIT_MESSAGE)
    body = pull_request_body(list(added), kept)
    pull = await forge.ensure_pull_request(repo, BRANCH, TITLE, body)
    return InitResult(tuple(added), tuple(kept), pull)


async def find_installation(
    settings: Settings, repo: RepoRef, *, transport: httpx.AsyncBaseTransport | None = None
) -> int:
    """The id of the App's installation on `repo` (GET /repos/{owner}/{repo}/installation,
    signed as the App)."""
    from githubkit import AppAuthStrategy, GitHub
    from githubkit.exception import GitHubException, RequestFailed

    from app.github.auth import api_version, describe

    key = settings.private_key()
    if not settings.github_app_id or not key:
        raise ConfigError(
            "reading a repository on GitHub needs GITHUB_APP_ID and GITHUB_APP_PRIVATE_KEY (or "
            "GITHUB_APP_PRIVATE_KEY_PATH); register the App with `idp-copilot register`, or "
            "pass --dry-run to try it on the LocalForge."
        )
    github = GitHub(
        AppAuthStrategy(settings.github_app_id, key),
        base_url=settings.github_api_url,
        user_agent="idp-copilot",
        timeout=settings.github_timeout,
        async_transport=transport,
    )
    rest: Any = github.rest(api_version(settings))  # type: ignore[call-overload]
    try:
        response = await rest.apps.async_get_repo_installation(repo.owner, repo.name)
    except RequestFailed as exc:
        if exc.response.status_code == 404:
            raise ConfigError(
                f"The App is not installed on {repo.full_name} (or the repository does not "
                "exist): install it there from the App's page, then run init-repo again."
            ) from None
        raise ConfigError(f"GitHub refused the installation lookup: {describe(exc)}") from None
    except GitHubException as exc:
        raise ConfigError(f"could not look up the App's installation: {describe(exc)}") from None
    return int(response.parsed_data.id)


def on_repository(
    settings: Settings,
    connection: redis.Redis,
    full_name: str,
    installation_id: int | None,
    action: Callable[[Forge, RepoRef], Awaitable[T]],
) -> tuple[RepoRef, T]:
    """`action` on OWNER/REPO for a command line: on GitHub as the App's installation there
    (looked up unless given), else on the LocalForge; a bad name or a forge failure is a
    ConfigError sentence."""
    from app.github.factory import make_forge

    try:
        repo = RepoRef.parse(full_name)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None

    async def run() -> tuple[RepoRef, T]:
        at = repo
        if settings.uses_github and at.installation_id is None:
            found = installation_id or await find_installation(settings, at)
            at = RepoRef(at.owner, at.name, found)
        return at, await action(make_forge(settings, connection), at)

    try:
        return asyncio.run(run())
    except ForgeError as exc:
        raise ConfigError(str(exc)) from None


def run_init_repo(
    settings: Settings,
    connection: redis.Redis,
    full_name: str,
    *,
    installation_id: int | None = None,
) -> int:
    """`idp-copilot init-repo`: print the pull request, or why nothing was needed."""
    if not settings.uses_github and settings.forge != "local":
        raise ConfigError(
            "init-repo opens its pull request on GitHub: set GITHUB_APP_ID and "
            "GITHUB_APP_PRIVATE_KEY (the .env `idp-copilot register` wrote), or pass --dry-run "
            "to try it on the LocalForge."
        )
    repo, result = on_repository(settings, connection, full_name, installation_id, init_repo)
    if result.pull_request is None:
        print(f"{repo.full_name} has {', '.join(result.kept)} already; nothing to add.")
        return 0
    verb = "Opened" if result.pull_request.created else "Already open:"
    print(f"{verb} {result.pull_request.url} adding {', '.join(result.added)}")
    if result.kept:
        print(f"Left as they are: {', '.join(result.kept)}")
    return 0
