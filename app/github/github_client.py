"""`GitHubClient`: the plumbing every part of `GitHubForge` shares: one githubkit client
per installation, the REST namespace of the configured API version, the translation of
githubkit failures into `ForgeError` sentences, and the count of writes.

The parts of the forge (comments, access, repositories, reviews) are classes built on it,
so each uses these methods as its own rather than declaring a host's.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pydantic
import redis
from githubkit import GitHub
from githubkit.exception import GitHubException
from githubkit.throttling import BaseThrottler

from app.config import Settings
from app.github.auth import RetryPolicy, api_version, app_client, explain
from app.github.errors import ForgeError
from app.github.forge import RepoRef


class GitHubClient:
    """Without a `throttler`, each installation's client paces its writes through the budget
    all workers share in Redis (`RedisWriteThrottler`)."""

    def __init__(
        self,
        settings: Settings,
        connection: redis.Redis,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        throttler: BaseThrottler | None = None,
    ) -> None:
        self._settings = settings
        self._redis = connection
        self._transport = transport
        self._throttler = throttler
        self._retry = RetryPolicy.from_settings(settings)
        self._version = api_version(settings)
        self._clients: dict[int, GitHub] = {}
        self._default_branches: dict[str, str] = {}
        # Lookups started early (`prefetch_todo`) and branches this forge created: answers the
        # job already has, so it does not ask GitHub again.
        self._todo_lookups: dict[tuple[str, int, str], tuple[float, asyncio.Future[Any]]] = {}
        self._created_branches: set[tuple[str, str]] = set()
        self.writes: Counter[str] = Counter()

    def _client(self, repo: RepoRef) -> GitHub:
        if repo.installation_id is None:
            raise ForgeError(
                f"No GitHub App installation is known for {repo.full_name}: "
                "install the App on the repository and send the command again."
            )
        client = self._clients.get(repo.installation_id)
        if client is None:
            client = app_client(
                self._settings,
                self._redis,
                repo.installation_id,
                transport=self._transport,
                throttler=self._throttler,
                retry=self._retry,
            )
            self._clients[repo.installation_id] = client
        return client

    def _rest(self, repo: RepoRef) -> Any:
        return self._client(repo).rest(self._version)  # type: ignore[call-overload]

    @asynccontextmanager
    async def _errors(self, what: str, repo: RepoRef) -> AsyncIterator[None]:
        """Turn githubkit failures (after their retries) into a ForgeError users can read."""
        try:
            yield
        except GitHubException as exc:
            raise ForgeError(explain(exc, f"{what} on {repo.full_name}", self._retry)) from exc
        except pydantic.ValidationError as exc:
            raise ForgeError(
                f"GitHub's answer to {what} on {repo.full_name} did not have the expected "
                "shape; the App may need an update for this GitHub version."
            ) from exc

    def _count(self, operation: str) -> None:
        self.writes[operation] += 1

    def _pages(self, repo: RepoRef, method: Any, **params: Any) -> Any:
        """Every page of a list call on `repo` (100 items a page), as one async iterator."""
        return self._client(repo).rest.paginate(
            method,
            owner=repo.owner,
            repo=repo.name,
            per_page=100,
            headers={"X-GitHub-Api-Version": self._version},
            **params,
        )
