"""The cluster plan as markdown: one collapsed section of the todo comment, and the full plan
for a check run's output. Both are bounded, so neither can grow past what GitHub accepts
(65,536 characters for a comment, 65,535 for a check run's summary).
"""

from __future__ import annotations

from collections.abc import Sequence

from app.domain.plan import Action, ClusterPlan, ObjectPlan
from app.untrusted import inline_markdown

SECTION_LIMIT = 30_000  # of the todo comment (whose limit is 65,536), the rest for tasks and notes
CHECK_LIMIT = 65_000  # of the check run's summary (65,535), with room for the cut note
TODO_FIELDS = 10  # changed fields listed per object in the todo; the check run lists them all
TODO_VALUE = 80  # characters of a value in the todo
CHECK_NAME = "IDP Copilot plan"

_ICON: dict[Action, str] = {
    "create": "➕",
    "change": "✏️",
    "unchanged": "✅",
    "refused": "⛔",
    "unknown": "❔",
}
_WORD: dict[Action, str] = {
    "create": "create",
    "change": "change",
    "unchanged": "unchanged",
    "refused": "refused",
    "unknown": "would apply",
}

Step = tuple[str, ClusterPlan]  # (task title, its plan)


def code(text: str | None, limit: int = TODO_VALUE) -> str:
    """`text` as one inline code span: on one line, shortened, no backtick to close it early
    (so nothing in a value can reshape the comment or ping anyone)."""
    if text is None:
        return "(absent)"
    flat = " ".join(text.split()).replace("`", "'")
    if len(flat) > limit:
        flat = flat[: limit - 1] + "…"
    return f"`{flat}`" if flat else '`""`'


def summary_line(steps: Sequence[Step]) -> str:
    """The counts, e.g. "3 to create, 1 to change, 2 unchanged"."""
    plans = [p for _, p in steps]
    if plans and not all(p.reached for p in plans):
        total = sum(len(p.objects) for p in plans)
        return f"no cluster reached · {total} object{'s' if total != 1 else ''} would be applied"
    parts = []
    for action, words in (
        ("create", "to create"),
        ("change", "to change"),
        ("unchanged", "unchanged"),
        ("refused", "refused"),
    ):
        n = sum(p.count(action) for p in plans)  # type: ignore[arg-type]
        if n or action in ("create", "change", "unchanged"):
            parts.append(f"{n} {words}")
    return ", ".join(parts)


def _object_lines(obj: ObjectPlan, fields: int, value: int, target: str = "") -> list[str]:
    where = f" in {code(obj.namespace)}" if obj.namespace and obj.namespace != target else ""
    line = f"- {_ICON[obj.action]} {_WORD[obj.action]} {obj.kind} {code(obj.name)}{where}"
    if obj.action == "change":
        n = len(obj.changes) + obj.more_changes
        line += f" ({n} field{'s' if n != 1 else ''})"
    if obj.reason:
        line += f": {code(obj.reason, 300)}"
    lines = [line]
    for change in obj.changes[:fields]:
        lines.append(
            f"  - {code(change.path, 200)}: {code(change.before, value)} → "
            f"{code(change.after, value)}"
        )
    rest = len(obj.changes) - min(fields, len(obj.changes)) + obj.more_changes
    if rest:
        lines.append(f"  - … and {rest} more field{'s' if rest != 1 else ''}")
    return lines


def _step_lines(title: str, plan: ClusterPlan) -> list[str]:
    where = f" → {code(plan.target, 100)}" if plan.target else ""
    head = [f"**{title}** · `{plan.tool}`{where}"]
    if plan.note:
        head.append(f"_{inline_markdown(plan.note, 400)}_")
    return head


def plan_section(steps: Sequence[Step], link: str | None, limit: int = SECTION_LIMIT) -> list[str]:
    """The todo's collapsed plan section (empty without steps), at most `limit` characters:
    objects that do not fit are counted and left to the check run."""
    return _section(steps, link, limit)[0]


def needs_check_run(steps: Sequence[Step]) -> bool:
    """Whether the plan needs a check run besides the todo: a cluster answered (the check run
    holds every changed field), or the todo's section cannot show every object. A plan no
    cluster answered, whose objects the todo lists in full, is all in the todo already."""
    if any(plan.reached for _, plan in steps):
        return True
    return _section(steps, None, SECTION_LIMIT)[1] > 0


def _section(steps: Sequence[Step], link: str | None, limit: int) -> tuple[list[str], int]:
    """The section's lines and how many objects did not fit."""
    if not steps:
        return [], 0
    lines = ["<details>", f"<summary>Cluster plan: {summary_line(steps)}</summary>", ""]
    tail = [f"The full plan is in the check run {link}." if link else "", "</details>"]
    used = _chars(lines + tail) + 120  # room for the "more objects" line
    left = 0
    for title, plan in steps:
        block = _step_lines(title, plan)
        shown = 0
        for obj in plan.objects:
            more = _object_lines(obj, TODO_FIELDS, TODO_VALUE, plan.target)
            if left or used + _chars(block + more) > limit:
                left += 1
                continue
            block += more
            shown += 1
        if shown or not plan.objects:
            lines += [*block, ""]
            used += _chars(block) + 1
    if left:
        where = "the check run" if link else "the check run on the pull request's head"
        lines += [f"… and {left} more object{'s' if left != 1 else ''}: see {where}.", ""]
    return [*lines, *(t for t in tail if t)], left


def _chars(lines: list[str]) -> int:
    return sum(len(x) + 1 for x in lines)


def full_plan(steps: Sequence[Step], limit: int = CHECK_LIMIT) -> str:
    """The whole plan as the check run's summary: every object and every kept field with its
    values, cut at a line boundary to fit `limit`."""
    lines = [f"**{summary_line(steps)}**", ""]
    for title, plan in steps:
        target = f"`{plan.tool}`" + (f" → {code(plan.target, 100)}" if plan.target else "")
        lines += [
            f"### {title}",
            "",
            target,
            *([f"_{inline_markdown(plan.note, 400)}_"] if plan.note else []),
            "",
        ]
        for obj in plan.objects:
            lines += _object_lines(obj, len(obj.changes), 300, plan.target)
        lines.append("")
    text = "\n".join(lines)
    if len(text) <= limit:
        return text
    note = "\n\n_The plan is longer than a check run holds; the rest is not shown._\n"
    cut = text[: limit - len(note)]
    return cut[: cut.rfind("\n")] + note
