"""The installation tokens every worker shares through Redis, and the permissions each token
grants, kept beside it.

An installation token's response lists the permissions the installation granted
(https://docs.github.com/en/rest/apps/apps#create-an-installation-access-token-for-an-app);
githubkit caches only the token, so `GrantKeepingAuth` keeps the grants under the same key,
for `installation_grants` to read before a job's first write.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import anyio.to_thread
import httpx
import redis
from githubkit import AppInstallationAuthStrategy, GitHub
from githubkit.auth.app import AppAuth
from githubkit.cache.base import AsyncBaseCache, BaseCacheStrategy
from githubkit.cache.redis import RedisCache
from githubkit.exception import CacheUnsupportedError

from app.github.permissions import LEVEL_TITLE


class _ThreadedRedisCache(AsyncBaseCache):
    """githubkit's Redis cache used from async code: each call runs in a worker thread."""

    def __init__(self, cache: RedisCache) -> None:
        self._cache = cache

    async def aget(self, key: str) -> str | None:
        return await anyio.to_thread.run_sync(self._cache.get, key)

    async def aset(self, key: str, value: str, ex: timedelta) -> None:
        await anyio.to_thread.run_sync(self._cache.set, key, value, ex)


class SharedTokenCache(BaseCacheStrategy):
    """githubkit's Redis cache for the App JWT and installation tokens, on our sync Redis
    connection, so every worker process reuses one token until shortly before it expires.

    githubkit's own async strategy needs a `redis.asyncio` client, whose connections belong
    to the event loop that opened them; a worker runs each job in a fresh loop, so the sync
    client (thread-safe, loop-free) serves both the sync and the async side here. HTTP
    response caching is off: we always want GitHub's current state.
    """

    def __init__(self, connection: redis.Redis, prefix: str) -> None:
        self._cache = RedisCache(connection, prefix)
        self._async_cache = _ThreadedRedisCache(self._cache)

    def get_cache_storage(self) -> RedisCache:
        return self._cache

    # The permissions an installation token grants live beside the token, a little longer
    # than it (githubkit caches the token until a minute before it expires), so a cached
    # token always has its grants next to it.

    def keep_grants(self, key: str, grants: dict[str, str], expires_in: timedelta) -> None:
        ttl = max(int(expires_in.total_seconds()) + 30, 1)
        self._cache.client.set(self._cache._get_key(f"{key}:grants"), json.dumps(grants), ttl)

    def grants(self, key: str) -> dict[str, str] | None:
        raw = self._cache.get(f"{key}:grants")
        return json.loads(raw) if raw else None

    def forget_token(self, key: str) -> None:
        """Drop a cached token kept without its grants (cached by an older version)."""
        self._cache.client.delete(self._cache._get_key(key))

    async def get_async_cache_storage(self) -> AsyncBaseCache:
        return self._async_cache

    def get_hishel_storage(self):
        raise CacheUnsupportedError("HTTP response caching is off for the App's clients")

    async def get_async_hishel_storage(self):
        raise CacheUnsupportedError("HTTP response caching is off for the App's clients")


def _grants_of(body: object) -> dict[str, str]:
    """The `permissions` object of an installation-token response, names and levels only."""
    raw = body.get("permissions") if isinstance(body, dict) else None
    if not isinstance(raw, dict):
        return {}
    return {
        str(name)[:64]: level
        for name, level in list(raw.items())[:100]
        if isinstance(level, str) and level in LEVEL_TITLE
    }


class GrantKeepingAuth(AppAuth):
    """githubkit's App auth flow that also keeps, next to each installation token it caches,
    the permissions the token response says the installation granted."""

    def _parse_installation_auth_response(self, response: httpx.Response):  # type: ignore[override]
        parsed = super()._parse_installation_auth_response(response)
        cache = self.github.config.cache_strategy
        if isinstance(cache, SharedTokenCache):
            expires = datetime.strptime(parsed.parsed_data.expires_at, "%Y-%m-%dT%H:%M:%SZ")
            # A sync Redis SET, once per token (an hour): the flow's hook is synchronous.
            cache.keep_grants(
                self._get_installation_cache_key(),
                _grants_of(response.json()),
                expires.replace(tzinfo=UTC) - datetime.now(UTC),
            )
        return parsed


@dataclass
class GrantKeepingInstallationAuth(AppInstallationAuthStrategy):
    """`AppInstallationAuthStrategy` with `GrantKeepingAuth` as its flow."""

    def get_auth_flow(self, github):  # type: ignore[no-untyped-def]
        return GrantKeepingAuth(
            github,
            self.app_id,
            self.private_key,
            self.client_id,
            self.client_secret,
            self.installation_id,
            self.repositories,
            self.repository_ids,
            self.permissions,
        )


async def installation_grants(
    github: GitHub, probe: Callable[[], Awaitable[object]]
) -> dict[str, str] | None:
    """What the client's installation granted, as its token response listed it; None when
    unknown. Without grants in the cache, the token is fetched anew by `probe` (any request
    as the installation) and its response's grants are kept."""
    cache = github.config.cache_strategy
    if not isinstance(cache, SharedTokenCache):
        return None
    key = github.auth.get_auth_flow(github)._get_installation_cache_key()  # type: ignore[attr-defined]
    found = await anyio.to_thread.run_sync(cache.grants, key)
    if found is None:
        await anyio.to_thread.run_sync(cache.forget_token, key)
        await probe()
        found = await anyio.to_thread.run_sync(cache.grants, key)
    return found or None  # a response without grants (none is empty: metadata always is)
