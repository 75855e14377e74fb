"""What a settings file may not go below: the built-in defaults, and for a repository's file
the organization's `.github` file as well (README "Organization defaults").

Anyone who can push to a repository's default branch can edit its file, so a file may only
make a policy stricter: a command's permission, the tools that wait for approval, the tools
the agent may use, the permission a reviewer needs, what `/idp apply` requires of a pull
request and the least branch protection of a repository `/idp create-repo` makes.
`floor_problems` names each key that goes below its floor, with the value it must keep and
whose value that is.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
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
    apply_requirements: tuple[str, ...] = ()
    # The org file's `branch_protection` keys (key → value): a repository's may only be stricter.
    branch_protection: Mapping[str, Any] | None = None
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
    problems += _left_out(
        "approval_required",
        data,
        floor.approval_required,
        config.approval_required,
        lambda n: (
            f", which {floor.owner} requires approval for; keep "
            + ("it" if n == 1 else "them")
            + " in the list: a file may add tools to it, never take the organization's out"
        ),
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
    problems += _left_out(
        "apply_requirements",
        data,
        floor.apply_requirements,
        config.apply_requirements,
        lambda n: (
            f", which {floor.owner} requires; a file may add requirements, never take "
            "the organization's out"
        ),
    )
    problems += _protection_problems(config, data, floor)
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


def _left_out(
    key: str,
    data: Mapping[str, Any],
    required: tuple[str, ...],
    have: list[str],
    why: Callable[[int], str],
) -> list[Problem]:
    """The file's list `key` when it leaves out items of the org's `required` list; `why`
    ends the sentence, given how many were left out."""
    dropped = [item for item in required if item not in have] if key in data else []
    if not dropped:
        return []
    return [((key,), code_span(f"{key}: leaves out {', '.join(dropped)}") + why(len(dropped)))]


def _protection_problems(config: Any, data: Mapping[str, Any], floor: Floor) -> list[Problem]:
    """Each `branch_protection` key of the file that is weaker than the org file's: fewer
    reviews, a rule turned off, a required check left out."""
    org, mine = floor.branch_protection, data.get("branch_protection")
    if not org or not isinstance(mine, Mapping):
        return []
    ours = config.branch_protection
    problems: list[Problem] = []
    for key, least in org.items():
        if key not in mine:
            continue
        have = getattr(ours, key)
        if key == "required_reviews":
            weaker = have < least
        elif key == "required_checks":
            weaker = least is not None and (have is None or not set(least) <= set(have))
        else:
            weaker = bool(least) and not have
        if not weaker:
            continue
        if key == "required_checks":
            missing = [c for c in least if have is None or c not in have]
            said = f"branch_protection.required_checks: leaves out {', '.join(missing)}"
            what = f"{code_span(said)}, which {floor.owner} requires"
        else:
            said = f"branch_protection.{key}: {_yaml(have)}"
            what = f"{code_span(said)} is weaker than {_yaml(least)}, which {floor.owner} sets"
        problems.append(
            (
                ("branch_protection", key),
                f"{what}; a repository may only make its protection stricter",
            )
        )
    return problems


def _yaml(value: Any) -> str:
    """A number or a switch as the file writes it (`true`, not `True`)."""
    return str(value).lower() if isinstance(value, bool) else show_value(value)
