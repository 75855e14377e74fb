"""The scheduled upkeep sweep of one repository, and its dashboard issue.

jobs/upkeep.py queues one `sweep` job per repository the App generated services in (weekly
by default, IDP_UPKEEP_INTERVAL). The job finds every service's `catalog-info.yaml` on the
default branch, compares its template version with the set's current one, and opens at most
one upgrade pull request (app/handling/upgrade.py) — none while the repository's last one is
still open, or while the installation's GitHub write budget has no room for it. Then it
writes the one "IDP Copilot dashboard" issue of the repository (pinned when GitHub allows):
pending upgrades with a box each, open upgrade pull requests, and the services that are
current. Ticking a box is an `issues.edited` event that starts that upgrade
(app/webhooks.py).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import TYPE_CHECKING

from app.budgets import write_headroom
from app.domain.service import NAME_RE
from app.github.errors import ForgeError
from app.grammar import dashboard
from app.grammar.commands import Command
from app.handling import upkeep_records as records
from app.handling.upgrade import (
    CATALOG_FILE,
    Service,
    UpgradeStopped,
    read_service,
    target_version,
    upgrade_service,
)
from tools.template_sets.manifest import version_key

if TYPE_CHECKING:
    from app.handling.context import JobContext

log = logging.getLogger(__name__)

MAX_SERVICES = 50  # catalog files read per repository and sweep
# Writes one upgrade takes at most (tree, commit, ref, pull request, dashboard, pin) with
# room to spare: below this the sweep leaves the repository for the next run.
WRITES_PER_UPGRADE = 10


async def scan(ctx: JobContext) -> list[Service]:
    """The generated services on the default branch: each `catalog-info.yaml` in a folder
    the config's `manifests_path` names, carrying the App's template annotations."""
    branch = await ctx.forge.default_branch(ctx.repo)
    before, _, after = ctx.config.manifests_path.partition("{name}")
    suffix = f"{after}/{CATALOG_FILE}"
    services: list[Service] = []
    for path in await ctx.forge.list_files(ctx.repo, branch):
        if not (path.startswith(before) and path.endswith(suffix)):
            continue
        name = path[len(before) : len(path) - len(suffix)]
        if not NAME_RE.fullmatch(name):
            continue
        service = await read_service(ctx, ctx.config.manifests_dir(name), branch)
        if service is not None and service.name == name:
            services.append(service)
        if len(services) >= MAX_SERVICES:
            break
    return services


async def entries_for(ctx: JobContext, services: list[Service]) -> list[dashboard.Entry]:
    """Each service as the dashboard shows it: pending, open or current."""
    entries = []
    for service in services:
        note, target = "", None
        try:
            newest = await target_version(ctx, service)
            target = newest if version_key(newest) > version_key(service.version) else None
        except UpgradeStopped as stop:
            note = stop.message[:200]
        entries.append(
            dashboard.Entry(
                service.name,
                service.folder,
                service.template_set,
                service.version,
                target,
                await records.open_upgrade(ctx, service.name),
                note,
            )
        )
    return entries


async def sweep(ctx: JobContext, command: Command) -> str:
    """One repository's sweep: at most one upgrade pull request, then the dashboard."""
    records.remember_repo(ctx)
    services = await scan(ctx)
    if not services:
        return "nothing"
    if not _budget_allows(ctx):
        return "budget"  # nothing written: the next sweep comes back
    entries = await entries_for(ctx, services)
    if await records.last_open(ctx) is not None:
        outcome = "waiting"  # the repository's last upgrade is still open
    else:
        outcome, entries = await _upgrade_one(ctx, services, entries)
    await publish_dashboard(ctx, entries)
    return outcome


def _budget_allows(ctx: JobContext) -> bool:
    installation = ctx.repo.installation_id
    if installation is None:
        return True
    room = write_headroom(ctx.connection, ctx.settings, installation)
    if room < WRITES_PER_UPGRADE:
        log.info("upkeep of %s waits: %s GitHub writes left", ctx.repo.full_name, room)
        return False
    return True


async def _upgrade_one(
    ctx: JobContext, services: list[Service], entries: list[dashboard.Entry]
) -> tuple[str, list[dashboard.Entry]]:
    """The first pending service that upgrades cleanly gets its pull request; a conflict
    is noted on the dashboard and the next one is tried."""
    by_name = {s.name: s for s in services}
    outcome = "current"
    for index, entry in sorted(enumerate(entries), key=lambda pair: pair[1].name):
        if not entry.pending:
            continue
        closed = await records.declined(ctx, entry.name, entry.target or "")
        if closed is not None:
            note = f"#{closed} was closed without merging; tick the box to open it again"
            entries[index] = replace(entry, note=note)
            continue
        try:
            done = await upgrade_service(ctx, by_name[entry.name])
        except UpgradeStopped as stop:
            conflicts = ", ".join(stop.conflicts) or stop.message
            entries[index] = replace(entry, note=f"needs you: {conflicts}"[:300])
            outcome = "stopped"
            continue
        if done.outcome == "opened" and done.pr_number is not None:
            records.record_pull_request(ctx, entry.name, done.pr_number, done.target)
            entries[index] = replace(entry, pull_request=done.pr_number)
            return "opened", entries
    return outcome, entries


async def publish_dashboard(ctx: JobContext, entries: list[dashboard.Entry]) -> int:
    """Write the repository's dashboard issue (found again by its marker), pinned once;
    a refused pin leaves a working, unpinned dashboard."""
    body = dashboard.render(entries, ctx.repo.full_name)
    number = await ctx.forge.upsert_issue(
        ctx.repo, records.dashboard_issue(ctx), dashboard.TITLE, body, dashboard.MARKER
    )
    pinned = records.pinned(ctx, number)
    if not pinned:
        try:
            await ctx.forge.pin_issue(ctx.repo, number)
            pinned = True
        except ForgeError as exc:
            log.warning("dashboard %s#%s not pinned: %s", ctx.repo.full_name, number, exc)
    records.record_dashboard(ctx, number, pinned)
    return number


async def refresh_dashboard(ctx: JobContext) -> None:
    """Rewrite the dashboard after an upgrade started from it (no pull request opened)."""
    if records.dashboard_issue(ctx) is None:
        return
    try:
        await publish_dashboard(ctx, await entries_for(ctx, await scan(ctx)))
    except ForgeError as exc:  # the next sweep writes it again
        log.warning("dashboard of %s not refreshed: %s", ctx.repo.full_name, exc)
