"""One revision of the App's pull request, for the review loop (app/handling/review.py).

The revision starts from the files as they are on the pull request's branch, whoever wrote
them. `/idp set` values re-render the service with the generators and merge the difference
between the old and the new rendering into those files (a three-way merge, as git does), so
a human's commit on the branch is kept and only a change to the same lines is a conflict.
The result goes through the publisher (`open_pull_request`): the same validators, one commit
on top of the branch head, never a force push, a check run on the new head.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.agent.planner import args_for
from app.domain.service import ServiceRequest
from app.domain.session import Session
from app.github.forge import Forge, RepoRef
from app.handling.agent_run import fixed_tool_args
from app.repo_config import RepoConfig
from tools.spec import ToolContext

if TYPE_CHECKING:
    from app.handling.context import JobContext

GENERATOR_TOOLS = (
    "apply_template",
    "generate_k8s_manifests",
    "setup_cicd_pipeline",
    "setup_observability",
    "generate_documentation",
)
PUBLISHER = "open_pull_request"
READ_CONCURRENCY = 8


class RevisionStopped(Exception):
    """The revision cannot go on; `message` (with what to do) answers the threads and
    nothing is pushed."""

    def __init__(self, message: str, conflicts: list[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.conflicts = conflicts or []  # one phrase per conflicting file


@dataclass
class Workspace:
    """The pull request's files: `base` as they are on the branch, `files` as the revision
    leaves them (edited in place by the review agent's tools)."""

    base: dict[str, str]
    files: dict[str, str]

    def changed(self) -> dict[str, str]:
        return {p: t for p, t in sorted(self.files.items()) if self.base.get(p) != t}


async def read_workspace(forge: Forge, repo: RepoRef, branch: str, paths: list[str]) -> Workspace:
    """The branch's version of each path the App generated; a file someone deleted is left
    out, so a revision never brings it back unasked."""
    gate = asyncio.Semaphore(READ_CONCURRENCY)

    async def read(path: str) -> tuple[str, str | None]:
        async with gate:
            return path, await forge.read_file(repo, path, ref=branch)

    found = await asyncio.gather(*(read(p) for p in sorted(paths)))
    base = {path: text for path, text in found if text is not None}
    return Workspace(base=base, files=dict(base))


def _generators(ctx: JobContext, session: Session) -> list[str]:
    """The generators that made the pull request's files (the plan's, else the usual four)."""
    registry = ctx.tools()
    used = [
        registry.get(t.tool).name
        for t in (session.todo.tasks if session.todo else [])
        if t.tool and t.tool in registry and registry.get(t.tool).name in GENERATOR_TOOLS
    ]
    chosen = list(dict.fromkeys(used)) or [t for t in GENERATOR_TOOLS[1:] if t in registry]
    if not chosen:
        raise RevisionStopped("No generator tool is installed, so nothing can be re-rendered.")
    return chosen


async def render(
    ctx: JobContext, session: Session, request: ServiceRequest, config: RepoConfig | None = None
) -> dict[str, str]:
    """Every file the generators make for `request`, with the repo's config (pure calls;
    `config` replaces it, as an upgrade does to render another template version)."""
    registry = ctx.tools()
    fixed = fixed_tool_args(config or ctx.config, session)
    files: dict[str, str] = {}
    for name in _generators(ctx, session):
        spec = registry.get(name)
        args = args_for(spec, request, **fixed.get(name, {}))
        # The forge only reads a template set kept in a repository; generators write nothing.
        tool_ctx = ToolContext(
            settings=ctx.settings, session=session, forge=ctx.forge, repo=ctx.repo
        )
        result = await registry.call(name, args, tool_ctx)
        if not result.ok:
            raise RevisionStopped(f"Re-rendering with `{name}` failed: {result.error}")
        files.update((result.output or {}).get("files") or {})
    return files


def merge3(current: str, base: str, other: str) -> str | None:
    """`other`'s change from `base` applied to `current`, or None when both changed the
    same lines. Uses `git merge-file`; without git only untouched files merge."""
    if current in (base, other):
        return other
    if other == base:
        return current
    git = shutil.which("git")
    if git is None:
        return None
    with tempfile.TemporaryDirectory() as scratch:
        names = []
        for name, text in (("current", current), ("base", base), ("other", other)):
            path = Path(scratch) / name
            path.write_text(text)
            names.append(str(path))
        done = subprocess.run(  # noqa: S603 - fixed git binary and our own temp files
            [git, "merge-file", "-p", "-q", *names], capture_output=True, check=False
        )
    if done.returncode != 0:  # >0: conflicts; <0 or 255: git failed
        return None
    return done.stdout.decode("utf-8", errors="replace")


def merge_rendering(
    ws: Workspace, old: dict[str, str], new: dict[str, str]
) -> tuple[list[str], list[str]]:
    """Apply the old → new rendering to the workspace: the paths it changed, and the paths
    the new values no longer make (kept: a revision never deletes). Raises
    `RevisionStopped` naming each conflict."""
    conflicts: list[str] = []
    changed: list[str] = []
    for path in sorted(set(old) | set(new)):
        before, after = old.get(path), new.get(path)
        if before == after or after is None:
            continue
        current = ws.files.get(path)
        if current is None:
            if before is not None:
                conflicts.append(f"`{path}` was deleted on the branch")
                continue
            merged: str | None = after
        else:
            merged = merge3(current, before if before is not None else "", after)
        if merged is None:
            conflicts.append(f"`{path}` was changed in the same lines")
        elif merged != current:
            ws.files[path] = merged
            changed.append(path)
    if conflicts:
        raise RevisionStopped(
            "I did not push anything: commits on the branch that the App did not make touch "
            "what this change would rewrite, and I never overwrite them. "
            + "; ".join(conflicts)
            + ". Make the change in those files yourself, or revert those edits and ask again.",
            conflicts,
        )
    gone = sorted(p for p in old if p not in new and p in ws.files)
    return changed, gone


def findings(report: Any) -> list[str]:
    """A validation report's errors, one line each (the real report or a stand-in)."""
    errors = report.errors() if hasattr(report, "errors") else report.findings
    return [
        f"{f.validator}: {f.path}: {f.message}" if hasattr(f, "validator") else str(f)
        for f in errors
    ]


async def validate(files: dict[str, str]) -> list[str]:
    """The publisher's validators on `files`; the problems found (empty when all pass)."""
    from tools.validate import validate_files

    report = await asyncio.to_thread(validate_files, dict(files))
    return [] if report.ok else findings(report)


async def publish(ctx: JobContext, session: Session, ws: Workspace, message: str) -> dict[str, Any]:
    """Validate, then commit through `open_pull_request` on the session's branch; the
    publisher's output (`head_sha`, `changed`, …). Keeps the PR's title and summary."""
    problems = await validate(ws.files)
    if problems:
        more = f"\n- … and {len(problems) - 10} more" if len(problems) > 10 else ""
        raise RevisionStopped(
            "I did not push this change: the files did not pass validation.\n\n"
            + "\n".join(f"- {p}" for p in problems[:10])
            + more
        )
    previous = next((s.args for s in reversed(session.steps) if s.tool == PUBLISHER), {})
    args = {k: v for k, v in previous.items() if k in ("title", "summary", "close_issue", "draft")}
    args["commit_message"] = message
    tool_ctx = ToolContext(
        settings=ctx.settings,
        session=session,
        forge=ctx.forge,
        repo=ctx.repo,
        files=dict(ws.files),
    )
    result = await ctx.tools().call(PUBLISHER, args, tool_ctx)
    if not result.ok:
        raise RevisionStopped(f"I did not push this change: {result.error}")
    return result.output or {}
