"""What upkeep remembers in Redis: the repositories the sweep visits, each repository's
dashboard issue, and the upgrade pull request the App opened last per service and per
repository.

A record is small, one per repository the App generated a service in, and lives a year after
its last write (every sweep writes it): the dashboard and the "one open upgrade at a time"
rule must hold for longer than any session lives, and a repository the App stopped serving
is forgotten. Whether a recorded pull request is still open is asked of GitHub each time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import redis

from app.config import Settings
from app.github.errors import ForgeError

if TYPE_CHECKING:
    from app.handling.context import JobContext

LAST = "last"
RECORD_TTL = 365 * 24 * 3600


def _key(settings: Settings, repo: str) -> str:
    return settings.key("upkeep", repo.lower())


def repos_key(settings: Settings) -> str:
    return settings.key("upkeep-repos")


def remember_repo(ctx: JobContext) -> None:
    """Add the job's repository (with its installation) to those the sweep visits."""
    if ctx.repo.installation_id is not None:
        key = repos_key(ctx.settings)
        pipe = ctx.connection.pipeline()
        pipe.hset(key, ctx.repo.full_name, str(ctx.repo.installation_id))
        pipe.expire(key, RECORD_TTL)
        pipe.execute()


def known_repos(connection: redis.Redis, settings: Settings) -> dict[str, int]:
    """Repository → installation id, for every repository upkeep has seen."""
    raw = connection.hgetall(repos_key(settings))
    found: dict[str, int] = {}
    for repo, installation in raw.items():
        name = repo.decode() if isinstance(repo, bytes) else str(repo)
        value = installation.decode() if isinstance(installation, bytes) else str(installation)
        if value.isdigit():
            found[name] = int(value)
    return found


def record_pull_request(ctx: JobContext, service: str, number: int, target: str) -> None:
    """The upgrade pull request just opened for `service` to version `target`: the
    service's and the repository's latest."""
    fields = {f"pr:{service}": number, f"target:{service}": target, LAST: number}
    _write(ctx, fields)


def _write(ctx: JobContext, fields: dict[str, int | str]) -> None:
    key = _key(ctx.settings, ctx.repo.full_name)
    pipe = ctx.connection.pipeline()
    pipe.hset(key, mapping=fields)
    pipe.expire(key, RECORD_TTL)
    pipe.execute()


def _recorded(ctx: JobContext, field: str) -> int | None:
    raw = ctx.connection.hget(_key(ctx.settings, ctx.repo.full_name), field)
    if raw is None:
        return None
    text = raw.decode() if isinstance(raw, bytes) else str(raw)
    return int(text) if text.isdigit() else None


async def _still_open(ctx: JobContext, number: int | None) -> int | None:
    if number is None:
        return None
    try:
        pr = await ctx.forge.pull_request_state(ctx.repo, number)
    except ForgeError:
        return number  # unknown: as if open, so no second pull request is opened
    return number if pr is not None and pr.status == "open" else None


async def open_upgrade(ctx: JobContext, service: str) -> int | None:
    """The number of `service`'s upgrade pull request when it is still open."""
    return await _still_open(ctx, _recorded(ctx, f"pr:{service}"))


async def declined(ctx: JobContext, service: str, target: str) -> int | None:
    """The upgrade pull request of `service` to `target` that was closed without merging:
    the sweep does not open it again (a box on the dashboard still can)."""
    number = _recorded(ctx, f"pr:{service}")
    raw = ctx.connection.hget(_key(ctx.settings, ctx.repo.full_name), f"target:{service}")
    recorded = raw.decode() if isinstance(raw, bytes) else raw
    if number is None or recorded != target:
        return None
    try:
        pr = await ctx.forge.pull_request_state(ctx.repo, number)
    except ForgeError:
        return number  # unknown: not opened again this time
    return number if pr is not None and pr.status == "closed" else None


async def last_open(ctx: JobContext) -> int | None:
    """The repository's last upgrade pull request when it is still open: the sweep opens
    no other until it is merged or closed."""
    return await _still_open(ctx, _recorded(ctx, LAST))


def dashboard_issue(ctx: JobContext) -> int | None:
    return _recorded(ctx, "dashboard")


def record_dashboard(ctx: JobContext, number: int, pinned: bool) -> None:
    fields: dict[str, int | str] = {"dashboard": number}
    if pinned:
        fields["pinned"] = number
    _write(ctx, fields)


def pinned(ctx: JobContext, number: int) -> bool:
    return _recorded(ctx, "pinned") == number
