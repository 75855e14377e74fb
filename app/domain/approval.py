"""What an approval covers: the digest of one gated call, as the todo shows it.

`/idp apply` approves digests, not a session: a call runs for real only when its digest is
one a maintainer approved. The digest covers the tool, its final arguments and the files
it applies, so any later change to one of them needs a new approval. Kept in one function
so the digest can grow to cover more (e.g. a server-side dry-run plan) without its callers
changing.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

SHORT = 12  # hex digits the todo shows; enough to tell two plans apart at a glance


@dataclass(frozen=True)
class ApprovalScope:
    """What a gated call acts on: a target people recognise (a namespace, a repository)
    and the workspace files it applies (path → text)."""

    target: str
    files: dict[str, str] = field(default_factory=dict)


def approval_digest(
    tool: str, args: dict[str, Any], files: dict[str, str], target: str = ""
) -> str:
    """sha256 over the tool, its arguments (canonical JSON), its target (the namespace or
    repository the todo names: the operator's settings may move it without any argument
    changing) and each applied file's path and text in path order; lengths go in first, so
    no two inputs share a byte stream."""
    h = hashlib.sha256()
    head = json.dumps(
        {"tool": tool, "args": args, "target": target},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=str,
    ).encode()
    h.update(b"%d:" % len(head) + head)
    for path in sorted(files):
        for part in (path.encode(), files[path].encode()):
            h.update(b"%d:" % len(part) + part)
    return h.hexdigest()


def short(digest: str | None) -> str:
    """The digest as the todo and the notes show it."""
    return (digest or "")[:SHORT]
