"""Repository administration on GitHub for `GitHubForge`: creating an organization's
repository (empty or from a template repository) and protecting a branch.

Both need the App's "Administration: Read and write" repository permission. The installation
to act as is looked up for the owner, signed as the App, because a new repository may belong
to another organization than the issue that asked for it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import quote

import anyio
import httpx
from githubkit import AppAuthStrategy, GitHub
from githubkit.exception import RequestFailed

from app.config import ConfigError
from app.github.auth import _github_message, is_status, lacking_permission
from app.github.errors import ForgeError
from app.github.forge import RepoInfo, RepoRef, template_ref, validate_branch, validate_repo_name
from app.github.github_client import GitHubClient
from app.github.permissions import REPO_CREATION, grant_sentence
from app.github.protection import BranchRules, branch_protection

# A repository generated from a template gets its branches a moment after GitHub answers
# the generate call; protection asked for before then is a 404. Waits double from
# IDP_GITHUB_RETRY_BASE_DELAY (1, 2, 4, 8 s by default).
BRANCH_WAIT_ATTEMPTS = 5
ADMIN_PERMISSION = (
    "the App needs the **Administration: Read and write** repository permission (the App's "
    "settings page → Permissions & events), accepted by the organization's owners"
)


class GitHubRepositories(GitHubClient):
    """`create_repository` and `protect_branch` of the Forge protocol; part of
    `GitHubForge`."""

    async def create_repository(
        self,
        owner: str,
        name: str,
        *,
        private: bool = True,
        description: str = "",
        template: str | None = None,
    ) -> RepoInfo:
        """POST /orgs/{owner}/repos (with a README, so the default branch exists to protect)
        or POST /repos/{template}/generate; an existing repository is returned instead."""
        target = validate_repo_name(owner, name)
        source = template_ref(template)
        installation_id, is_org = await self._installation(target)
        target = RepoRef(owner, name, installation_id)
        what = f"creating the repository {target.full_name}"
        async with self._admin_errors(what, target):
            found = await self._existing(target)
            if found is not None:
                return _info(found, target, created=False)
            if not is_org:
                raise ForgeError(
                    f"{owner} is a personal account: a GitHub App can create repositories only "
                    f"in organizations. Create {target.full_name} on GitHub yourself (or choose "
                    "an organization as the owner), then run `/idp retry`."
                )
            rest = self._rest(target)
            try:
                if source is not None:
                    self._count("generate_repository")
                    resp = await rest.repos.async_create_using_template(
                        source.owner,
                        source.name,
                        owner=owner,
                        name=name,
                        description=description,
                        private=private,
                        include_all_branches=False,
                    )
                else:
                    self._count("create_repository")
                    resp = await rest.repos.async_create_in_org(
                        owner, name=name, description=description, private=private, auto_init=True
                    )
            except RequestFailed as exc:
                if is_status(exc, 404) and source is not None:
                    raise ForgeError(
                        f"GitHub found no template repository {source.full_name} the App can read "
                        "(404): check the name, mark it as a template repository, and make "
                        f"it public or add it to the App's installation on {source.owner}."
                    ) from exc
                if not is_status(exc, 422):
                    raise
                # 422 when the name is taken: by our own earlier attempt (a retry, another
                # worker) — then reuse it — or by a repository the installation cannot see.
                found = await self._existing(target)
                if found is not None:
                    return _info(found, target, created=False)
                if "already exists" in _github_message(exc):
                    raise ForgeError(
                        f"{target.full_name} already exists but the App cannot see it: add it "
                        "to the App's installation, or choose another name."
                    ) from exc
                raise
            return _info(resp.parsed_data, target, created=True)

    async def protect_branch(
        self,
        repo: RepoRef,
        branch: str,
        *,
        required_reviews: int = 1,
        required_checks: list[str] = (),  # type: ignore[assignment]
        enforce_admins: bool = True,
        rules: BranchRules | None = None,
    ) -> None:
        """PUT /repos/{owner}/{repo}/branches/{branch}/protection (idempotent: it replaces)."""
        validate_branch(branch)
        validate_repo_name(repo.owner, repo.name)
        if rules is not None:
            body = rules.body()
        else:
            body = branch_protection(required_reviews, list(required_checks), enforce_admins)
        url = f"/repos/{repo.owner}/{repo.name}/branches/{quote(branch)}/protection"
        client = self._client(repo)
        async with self._admin_errors(f"protecting branch {branch}", repo):
            for attempt in range(BRANCH_WAIT_ATTEMPTS):
                try:
                    self._count("protect_branch")
                    # Not the typed method: its body model demands `contexts`, which GitHub
                    # refuses next to `checks`.
                    await client.arequest(
                        "PUT", url, json=body, headers={"X-GitHub-Api-Version": self._version}
                    )
                    return
                except RequestFailed as exc:
                    if not is_status(exc, 404):
                        raise
                    if attempt + 1 == BRANCH_WAIT_ATTEMPTS:
                        raise ForgeError(
                            f"GitHub found no branch {branch} in {repo.full_name} (404), or "
                            f"{ADMIN_PERMISSION}."
                        ) from exc
                await anyio.sleep(self._settings.github_retry_base_delay * 2**attempt)

    async def get_branch_protection(self, repo: RepoRef, branch: str) -> BranchRules | None:
        """GET …/branches/{branch}/protection; None on GitHub's 404 "Branch not protected"
        (or a branch that does not exist yet: nothing to keep then either)."""
        validate_branch(branch)
        validate_repo_name(repo.owner, repo.name)
        url = f"/repos/{repo.owner}/{repo.name}/branches/{quote(branch)}/protection"
        client = self._client(repo)
        async with self._admin_errors(f"reading the protection of branch {branch}", repo):
            try:
                resp = await client.arequest(
                    "GET", url, headers={"X-GitHub-Api-Version": self._version}
                )
            except RequestFailed as exc:
                if is_status(exc, 404):
                    return None
                raise
            data = resp.json()
        return BranchRules.from_github(data if isinstance(data, dict) else {})

    # -- plumbing ---------------------------------------------------------------------------

    @asynccontextmanager
    async def _admin_errors(self, what: str, repo: RepoRef) -> AsyncIterator[None]:
        """Like `_errors`, with the fix for a refusal: administration is a permission the App
        asks for separately, and branch protection on a private repository needs a paid plan."""
        async with self._errors(what, repo):
            try:
                yield
            except RequestFailed as exc:
                if is_status(exc, 403):
                    raise ForgeError(
                        f"GitHub refused {what} (403: {_github_message(exc)}): "
                        f"{grant_sentence(lacking_permission(exc) or REPO_CREATION)} Protected "
                        "branches on private repositories also need GitHub Team or Enterprise."
                    ) from exc
                raise

    async def _existing(self, repo: RepoRef) -> Any | None:
        """The repository as GitHub describes it, or None when the installation sees none."""
        try:
            resp = await self._rest(repo).repos.async_get(repo.owner, repo.name)
        except RequestFailed as exc:
            if is_status(exc, 404):
                return None
            raise
        return resp.parsed_data

    async def _installation(self, repo: RepoRef) -> tuple[int, bool]:
        """The App's installation on the repository's owner, and whether the owner is an
        organization (GET /orgs/{org}/installation, else /users/{user}/installation, as the
        App)."""
        app = self._app_client()  # held here: the REST namespace keeps only a weak reference
        apps = app.rest(self._version).apps  # type: ignore[call-overload]
        async with self._errors("looking up the App's installation", repo):
            for lookup, is_org in (
                (apps.async_get_org_installation, True),
                (apps.async_get_user_installation, False),
            ):
                try:
                    resp = await lookup(repo.owner)
                    return resp.parsed_data.id, is_org
                except RequestFailed as exc:
                    if not is_status(exc, 404):
                        raise
        raise ForgeError(
            f"The App is not installed on {repo.owner} (or no such account exists): install it "
            f"on the organization ({ADMIN_PERMISSION}), then run `/idp retry`."
        )

    def _app_client(self) -> GitHub:
        """A client signed as the App itself (a JWT), not as one of its installations."""
        key = self._settings.private_key()
        if not self._settings.github_app_id or not key:
            raise ConfigError(
                "creating repositories needs GITHUB_APP_ID and GITHUB_APP_PRIVATE_KEY "
                "(or GITHUB_APP_PRIVATE_KEY_PATH) of the registered App"
            )
        timeout = self._settings.github_timeout
        return GitHub(
            AppAuthStrategy(self._settings.github_app_id, key),
            base_url=self._settings.github_api_url,
            user_agent="idp-copilot",
            timeout=httpx.Timeout(timeout, connect=min(10.0, timeout)),
            http_cache=False,
            auto_retry=self._retry,
            async_transport=self._transport,
        )


def _info(data: Any, target: RepoRef, *, created: bool) -> RepoInfo:
    return RepoInfo(
        owner=data.owner.login,
        name=data.name,
        url=data.html_url,
        default_branch=data.default_branch,
        private=data.private,
        created=created,
        installation_id=target.installation_id,
    )
