"""A session's generated files as a tree, and what its last revision changed.

The session keeps its files as they are now (`Session.files`); each commit of the App's pull
request is a step: `open_pull_request` (output `head_sha`) and each review revision
(`review_revision`, output `sha`). The diff of the newest commit is taken against the files
of the commit before it, read through the `Forge` (the LocalForge for dry runs), so it shows
what the revision changed whoever wrote the branch's earlier files.
"""

from __future__ import annotations

import asyncio
import difflib
from collections.abc import Callable
from typing import Any

import redis

from app.config import ConfigError, Settings
from app.domain.session import Session
from app.github.errors import ForgeError
from app.github.forge import Forge, RepoRef

COMMIT_STEPS = {"open_pull_request": "head_sha", "review_revision": "sha"}
# difflib's matcher is quadratic in the worst case: files past these bounds are not diffed.
MAX_DIFF_CHARS = 200_000
MAX_DIFF_LINES = 5_000
READ_CONCURRENCY = 8


def commits_of(session: Session) -> list[str]:
    """The pull request's commits the session made, oldest first (repeats dropped: a re-run
    that changed nothing reports the same head)."""
    shas: list[str] = []
    for step in session.steps:
        key = COMMIT_STEPS.get(step.tool)
        sha = step.output.get(key) if key and step.ok else None
        if isinstance(sha, str) and sha and (not shas or shas[-1] != sha):
            shas.append(sha)
    return shas


def file_tree(files: dict[str, str]) -> list[dict[str, Any]]:
    """Folders first, then files, each level sorted: `{"name", "path", "children"}` for a
    folder, `{"name", "path", "content", "lines"}` for a file."""
    root: dict[str, Any] = {}
    for path in sorted(files):
        node = root
        parts = path.split("/")
        for part in parts[:-1]:
            node = node.setdefault(part + "/", {})
        node[parts[-1]] = path

    def build(node: dict[str, Any], prefix: str) -> list[dict[str, Any]]:
        folders = sorted(k for k in node if k.endswith("/"))
        leaves = sorted(k for k in node if not k.endswith("/"))
        out: list[dict[str, Any]] = [
            {"name": k[:-1], "path": prefix + k[:-1], "children": build(node[k], prefix + k)}
            for k in folders
        ]
        for k in leaves:
            text = files[node[k]]
            out.append({"name": k, "path": node[k], "content": text, "lines": text.count("\n")})
        return out

    return build(root, "")


def unified_diff(path: str, before: str | None, after: str | None) -> str:
    """`diff -u` of one file; an empty string when it did not change."""
    if before == after:
        return ""
    sizes = [len(t or "") for t in (before, after)]
    lines = [(t or "").count("\n") for t in (before, after)]
    if max(sizes) > MAX_DIFF_CHARS or max(lines) > MAX_DIFF_LINES:
        return f"{path}: too large to diff here ({max(sizes)} characters); the forge shows it.\n"
    return "".join(
        difflib.unified_diff(
            (before or "").splitlines(keepends=True),
            (after or "").splitlines(keepends=True),
            fromfile="/dev/null" if before is None else f"a/{path}",
            tofile="/dev/null" if after is None else f"b/{path}",
        )
    )


def diff_files(before: dict[str, str | None], after: dict[str, str]) -> list[dict[str, str]]:
    """One `{"path", "diff"}` per file that differs, in path order."""
    out = []
    for path in sorted(set(before) | set(after)):
        text = unified_diff(path, before.get(path), after.get(path))
        if text:
            out.append({"path": path, "diff": text})
    return out


def forge_for(settings: Settings, connection: redis.Redis, dry_run: bool) -> Forge:
    """The forge the session's files were committed to: a dry run's are on the LocalForge,
    as the worker chose (jobs/tasks.py)."""
    from app.github.factory import make_forge

    if dry_run and settings.uses_github:
        settings = settings.model_copy(update={"forge": "local"})
    return make_forge(settings, connection)


async def last_revision(make_forge: Callable[[], Forge], session: Session) -> dict[str, Any] | None:
    """The newest commit's diff against the one before it: `{"from", "to", "files"}`, or
    None before the first revision (no forge is made then). A forge that cannot read the
    old commit gives `"error"` instead of the files."""
    commits = commits_of(session)
    if len(commits) < 2:
        return None
    previous, head = commits[-2], commits[-1]
    repo = RepoRef.parse(session.repo, session.installation_id)
    limit = asyncio.Semaphore(READ_CONCURRENCY)

    async def read(forge: Forge, path: str) -> str | None:
        async with limit:
            return await forge.read_file(repo, path, ref=previous)

    paths = sorted(session.files)
    try:
        forge = make_forge()
        texts = await asyncio.gather(*(read(forge, p) for p in paths))
    except (ConfigError, ForgeError, ValueError, OSError) as exc:
        return {"from": previous, "to": head, "files": [], "error": f"{type(exc).__name__}: {exc}"}
    before = dict(zip(paths, texts, strict=True))
    return {"from": previous, "to": head, "files": diff_files(before, session.files)}
