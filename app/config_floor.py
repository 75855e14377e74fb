"""What a settings file may not go below: the built-in defaults, and for a repository's file
the organization's `.github` file as well (README "Organization defaults").

Anyone who can push to a repository's default branch can edit its file, so a file may only
make a policy stricter: a command's permission, the tools that wait for approval, the tools
the agent may use and the permission a reviewer needs. `floor_problems` names each key that
goes below its floor, with the value it must keep and whose value that is.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from app.github.forge import PERMISSION_RANK
from app.repo_config_errors import code_span, show_value

Problem = tuple[tuple[Any, ...], str]
DEFAULT = "the default"


@dataclass(frozen=True)
class Floor:
    """The least a file may ask for. `permissions` maps each command to (level, whose value:
    "the default" or the organization's file); the other fields are None (or empty) where
    only the built-in defaults bind, which a file may change as it likes."""

    permissions: Mapping[str, tuple[str, str]]
    approval_required: tuple[str, ...] = ()
    tools: tuple[str, ...] | None = None
    reviewer_permission: str | None = None
    owner: str = ""  # who sets the floors beyond the defaults, for the sentences


def floor_problems(config: Any, data: Mapping[str, Any], floor: Floor) -> list[Problem]:
    """Each key of one file (`data`, validated as `config`) that goes below `floor`."""
    problems: list[Problem] = []
    for verb, level in config.permissions.items():
        least, whose = floor.permissions[verb]
        if PERMISSION_RANK[level] < PERMISSION_RANK[least]:
            below = f"the default {least}" if whose == DEFAULT else f"{least}, which {whose} sets"
            problems.append(
                (
                    ("permissions", verb),
                    code_span(f"permissions.{verb}: {level!r} is below {below}")
                    + f". A file may only make a command stricter: use {least} or above",
                )
            )
    if floor.approval_required and "approval_required" in data:
        dropped = [t for t in floor.approval_required if t not in config.approval_required]
        if dropped:
            problems.append(
                (
                    ("approval_required",),
                    code_span(f"approval_required: leaves out {', '.join(dropped)}")
                    + f", which {floor.owner} requires approval for; keep "
                    + ("it" if len(dropped) == 1 else "them")
                    + " in the list: a file may add tools to it, never take the organization's out",
                )
            )
    if floor.tools is not None and "tools" in data:
        if config.tools is None:
            problems.append(
                (
                    ("tools",),
                    code_span("tools: all tools")
                    + f" widens the list {floor.owner} allows; name a subset of "
                    + ", ".join(floor.tools),
                )
            )
        else:
            extra = [t for t in config.tools if t not in floor.tools]
            if extra:
                problems.append(
                    (
                        ("tools",),
                        code_span(f"tools: {', '.join(show_value(t) for t in extra)}")
                        + f" is not among the tools {floor.owner} allows: "
                        + ", ".join(floor.tools),
                    )
                )
    least = floor.reviewer_permission
    reviewers = data.get("reviewers")
    if least is not None and isinstance(reviewers, Mapping) and "min_permission" in reviewers:
        level = config.reviewers.min_permission
        if PERMISSION_RANK[level] < PERMISSION_RANK[least]:
            problems.append(
                (
                    ("reviewers", "min_permission"),
                    code_span(f"reviewers.min_permission: {level!r} is below {least}")
                    + f", which {floor.owner} sets; use {least} or above",
                )
            )
    return problems
