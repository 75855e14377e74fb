"""Upkeep of the services the App generated: re-render one with a newer version of its
template set and open one pull request, keeping what people changed.

A service's `catalog-info.yaml` records its template set, the version that rendered it and
the request's values (tools/render.py). The upgrade renders the service twice with the
repository's config, once with that version (the base) and once with the current one, and
merges the difference into the files on the default branch as the review loop does
(app/handling/revision.py `merge_rendering`, git's three-way merge): a human's edit is kept,
a change to the same lines stops the upgrade with the files named, and nothing is pushed.
Otherwise all changed files go in one commit on `idp-upgrade/<service>-<version>` and one
pull request lists the files, the lines changed and the release notes of every version in
between. `/idp upgrade` (app/handling/upgrade_verb.py), a ticked box on the dashboard issue
and the weekly sweep (app/handling/sweep.py) all end here.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import yaml
from pydantic import ValidationError

from app.domain.service import NAME_RE, ServiceRequest
from app.domain.session import Session
from app.github.errors import ForgeError
from app.handling.revision import RevisionStopped, merge_rendering, read_workspace, render, validate
from app.repo_config import TemplatesConfig
from app.untrusted import inline_markdown
from tools.render import REQUEST_ANNOTATION, TEMPLATE_SET_ANNOTATION, TEMPLATE_VERSION_ANNOTATION
from tools.template_sets import TemplateSetError
from tools.template_sets.manifest import version_key
from tools.template_sets.sources import TemplateSetCatalog

if TYPE_CHECKING:
    from app.handling.context import JobContext

CATALOG_FILE = "catalog-info.yaml"
BRANCH_PREFIX = "idp-upgrade/"
MAX_CATALOG_BYTES = 64 * 1024
MAX_NOTE_CHARS = 2_000


class UpgradeStopped(Exception):
    """The upgrade cannot go on; `message` says why and what to do. Nothing was pushed."""

    def __init__(self, message: str, conflicts: list[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.conflicts = conflicts or []


@dataclass(frozen=True)
class Service:
    """A generated service as its `catalog-info.yaml` describes it."""

    name: str
    folder: str
    template_set: str
    version: str
    request: ServiceRequest | None


@dataclass
class Upgraded:
    """What an upgrade did: `opened` a pull request, or found the service `current`."""

    outcome: str
    service: Service
    target: str
    pr_number: int | None = None
    pr_url: str = ""
    files: list[str] = field(default_factory=list)


def parse_catalog(text: str, folder: str) -> Service | None:
    """The service a `catalog-info.yaml` describes, or None when the App did not generate
    it (no template annotations) or the file is not the entity it wrote."""
    if len(text.encode()) > MAX_CATALOG_BYTES:
        return None
    try:
        entity = yaml.safe_load(text)
    except yaml.YAMLError:
        return None
    meta = entity.get("metadata") if isinstance(entity, dict) else None
    notes = meta.get("annotations") if isinstance(meta, dict) else None
    if not isinstance(notes, dict):
        return None
    name, tset = meta.get("name"), notes.get(TEMPLATE_SET_ANNOTATION)
    version = notes.get(TEMPLATE_VERSION_ANNOTATION)
    if not all(isinstance(v, str) for v in (name, tset, version)) or not NAME_RE.fullmatch(name):
        return None
    request = None
    raw = notes.get(REQUEST_ANNOTATION)
    if isinstance(raw, str) and len(raw) <= MAX_CATALOG_BYTES:
        try:
            values = json.loads(raw)
            if isinstance(values, dict):
                request = ServiceRequest.model_validate({**values, "name": name})
        except (ValueError, ValidationError):
            request = None
    try:
        TemplatesConfig(set=tset, version=version)
    except ValidationError:
        return None
    return Service(name, folder, tset, version, request)


async def read_service(ctx: JobContext, folder: str, ref: str) -> Service | None:
    text = await ctx.forge.read_file(ctx.repo, f"{folder}/{CATALOG_FILE}", ref)
    return None if text is None else parse_catalog(text, folder)


async def target_version(ctx: JobContext, service: Service) -> str:
    """The version an upgrade brings: the repository's pinned one when its config names the
    service's set with a version, else the set's current version."""
    chosen = ctx.config.templates
    if chosen.set == service.template_set and chosen.version:
        return chosen.version
    catalog = TemplateSetCatalog.from_settings(ctx.settings)
    try:
        found = await catalog.load(
            ctx.forge, service.template_set, installation_id=ctx.repo.installation_id
        )
        return found.version
    except TemplateSetError as exc:
        raise UpgradeStopped(f"I cannot upgrade `{service.name}`: {exc}") from None


def release_notes(notes: dict[str, str], after: str, upto: str) -> list[tuple[str, str]]:
    """(version, notes) of every version after `after` up to `upto`, oldest first."""
    low, high = version_key(after), version_key(upto)
    chosen = [(v, n) for v, n in notes.items() if low < version_key(v) <= high]
    return sorted(chosen, key=lambda pair: version_key(pair[0]))


async def upgrade_service(
    ctx: JobContext, service: Service, session: Session | None = None
) -> Upgraded:
    """Re-render `service` at its set's target version and open the upgrade pull request
    (see the module docstring). Raises `UpgradeStopped`; `Upgraded("current")` when there is
    nothing newer."""
    target = await target_version(ctx, service)
    if version_key(target) <= version_key(service.version):
        return Upgraded("current", service, target)
    request = service.request
    if request is None and session is not None and session.request is not None:
        request = session.request if session.request.name == service.name else None
    if request is None:
        raise UpgradeStopped(
            f"`{service.folder}/{CATALOG_FILE}` does not record the values `{service.name}` was "
            "generated with (services generated before upgrades existed lack them), so I cannot "
            f"tell your changes from the template's. Run `/idp upgrade` on the issue that "
            "created it, or upgrade it by hand."
        )
    holder = session or Session(
        id=f"{ctx.repo.full_name}#upgrade", repo=ctx.repo.full_name, number=0
    )
    base, theirs, notes = await _renders(ctx, holder, request, service, target)
    branch = await ctx.forge.default_branch(ctx.repo)
    ws = await read_workspace(ctx.forge, ctx.repo, branch, sorted(set(base) | set(theirs)))
    try:
        merge_rendering(ws, base, theirs)
    except RevisionStopped as stop:
        files = "; ".join(stop.conflicts)
        raise UpgradeStopped(
            f"I did not open an upgrade of `{service.name}` to {service.template_set} {target}: "
            f"changes made on {branch} touch the same lines the new templates change: {files}. "
            "Nothing was pushed. Merge those changes by hand, or revert them and run "
            "`/idp upgrade` again.",
            stop.conflicts,
        ) from None
    changed = ws.changed()
    if not changed:
        return Upgraded("current", service, target)
    problems = await validate(ws.files)
    if problems:
        raise UpgradeStopped(
            f"I did not open an upgrade of `{service.name}`: the upgraded files did not pass "
            "validation.\n\n" + "\n".join(f"- {p}" for p in problems[:10])
        )
    what = f"{service.template_set} {service.version} → {target}"
    upgrade_branch = f"{BRANCH_PREFIX}{service.name}-{target}"
    try:
        await ctx.forge.commit_files(
            ctx.repo,
            upgrade_branch,
            changed,
            f"Upgrade {service.name} to template set {what}",
        )
        body = pull_request_body(service, target, ws.base, changed, notes)
        pr = await ctx.forge.ensure_pull_request(
            ctx.repo,
            upgrade_branch,
            f"Upgrade {service.name} ({what})",
            body,
            draft=ctx.config.draft_pull_requests,
        )
        if pr.created and ctx.config.labels:
            await ctx.forge.add_labels(ctx.repo, pr.number, list(ctx.config.labels))
    except ForgeError as exc:
        raise UpgradeStopped(f"I could not open the upgrade of `{service.name}`: {exc}") from None
    return Upgraded("opened", service, target, pr.number, pr.url, sorted(changed))


async def _renders(
    ctx: JobContext, holder: Session, request: ServiceRequest, service: Service, target: str
) -> tuple[dict[str, str], dict[str, str], list[tuple[str, str]]]:
    """The service rendered at its recorded version and at `target`, and the notes between."""
    catalog = TemplateSetCatalog.from_settings(ctx.settings)
    renders: list[dict[str, str]] = []
    for version in (service.version, target):
        try:
            tset = await catalog.load(
                ctx.forge, service.template_set, version, ctx.repo.installation_id
            )
        except TemplateSetError as exc:
            raise UpgradeStopped(
                f"I cannot upgrade `{service.name}`: {exc}. The upgrade needs the version that "
                "rendered the service to tell your changes from the template's."
            ) from None
        templates = TemplatesConfig(set=service.template_set, version=version)
        config = ctx.config.model_copy(update={"templates": templates})
        try:
            renders.append(await render(ctx, holder, request, config))
        except RevisionStopped as stop:
            raise UpgradeStopped(f"I cannot upgrade `{service.name}`: {stop.message}") from None
    notes = release_notes(dict(tset.manifest.release_notes), service.version, target)
    return renders[0], renders[1], notes


def pull_request_body(
    service: Service,
    target: str,
    before: dict[str, str],
    changed: dict[str, str],
    notes: list[tuple[str, str]],
) -> str:
    """The upgrade pull request's description: what, the files with lines added and
    removed, and the release notes of the versions in between."""
    lines = [
        f"Upgrades `{service.name}` (`{service.folder}`) from template set "
        f"**{service.template_set} {service.version}** to **{target}**.",
        "",
        "Changes made to these files since they were generated are kept (a three-way merge "
        "of the old and the new rendering into the files as they are).",
        "",
        "| file | added | removed |",
        "| --- | ---: | ---: |",
    ]
    for path, text in sorted(changed.items()):
        diff = list(
            difflib.unified_diff(
                before.get(path, "").splitlines(), text.splitlines(), lineterm="", n=0
            )
        )
        added = sum(1 for d in diff if d.startswith("+") and not d.startswith("+++"))
        removed = sum(1 for d in diff if d.startswith("-") and not d.startswith("---"))
        lines.append(f"| `{path}` | {added} | {removed} |")
    lines += ["", "### Release notes", ""]
    for version, note in notes:
        # The set's text (a repository's): one line, no live mention, no HTML.
        lines.append(f"- **{version}**: {inline_markdown(note, MAX_NOTE_CHARS)}")
    if not notes:
        lines.append("The set has no notes for these versions.")
    return "\n".join(lines) + "\n"
