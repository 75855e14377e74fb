"""Who may do what on GitHub, for `GitHubForge`: a user's role on a repository, and the
permissions the App's installation granted.

A commenter's role decides which commands they may run (app/handling/authorize.py); the App's grants
decide whether a job may start writing at all (app/handling/preflight.py).
"""

from __future__ import annotations

from githubkit.exception import RequestFailed

from app.github.forge import PERMISSION_RANK, Permission, RepoRef
from app.github.github_client import GitHubClient
from app.github.tokens import installation_grants

PERMISSION_TTL = 60


class GitHubAccess(GitHubClient):
    """`permission` and `granted_permissions` of the Forge protocol; part of
    `GitHubForge`."""

    async def granted_permissions(self, repo: RepoRef) -> dict[str, str] | None:
        """What the installation granted, from its token response (kept with the cached
        token in Redis); None when GitHub did not say."""
        client = self._client(repo)

        async def probe() -> None:
            # Any call as the installation fetches a token; this one is needed anyway.
            resp = await self._rest(repo).repos.async_get(repo.owner, repo.name)
            self._default_branches[repo.full_name] = resp.parsed_data.default_branch

        async with self._errors("reading the App's permissions", repo):
            return await installation_grants(client, probe)

    async def permission(self, repo: RepoRef, username: str) -> Permission:
        """The user's role on the repository, cached in Redis for a minute for all workers."""
        key = self._settings.key("perm", repo.owner.lower(), repo.name.lower(), username.lower())
        cached = self._redis.get(key)
        if cached is not None:
            return cached.decode() if isinstance(cached, bytes) else cached  # type: ignore[return-value]
        async with self._errors(f"reading {username}'s permission", repo):
            try:
                resp = await self._rest(repo).repos.async_get_collaborator_permission_level(
                    repo.owner, repo.name, username
                )
                data = resp.parsed_data
                # `permission` folds maintain into write and triage into read; `role_name`
                # keeps them (and names custom roles, which we map through `permission`).
                role = (
                    data.role_name if data.role_name in ("maintain", "triage") else data.permission
                )
                level: Permission = role if role in PERMISSION_RANK else "read"  # type: ignore[assignment]
            except RequestFailed as exc:
                if exc.response.status_code != 404:  # 404: no such user, or not visible
                    raise
                level = "none"
        self._redis.set(key, level, ex=PERMISSION_TTL)
        return level
