"""What an approval covers: the digest of one gated call, as the todo shows it.

`/idp apply` approves digests, not a session: a call runs for real only when its digest is
one a maintainer approved. The digest covers the tool, its final arguments and the files
it applies and, for a cluster step, the digest of its server-side dry-run plan
(app/domain/plan.py), so any later change to one of them (the live objects included) needs a
new approval.
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
    tool: str,
    args: dict[str, Any],
    files: dict[str, str],
    target: str = "",
    plan: str | None = None,
) -> str:
    """sha256 over the tool, its arguments (canonical JSON), its target (the namespace or
    repository the todo names: the operator's settings may move it without any argument
    changing), the plan's digest when the step has a plan, and each applied file's path and
    text in path order; lengths go in first, so no two inputs share a byte stream."""
    h = hashlib.sha256()
    covered: dict[str, Any] = {"tool": tool, "args": args, "target": target}
    if plan is not None:
        covered["plan"] = plan  # absent otherwise: a step without a plan keeps its digest
    head = json.dumps(
        covered,
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
