"""The "IDP Copilot dashboard" issue: its body, written by the App, and the boxes people tick.

One dashboard per repository lists the services the App generated that are on an older
version of their template set (a box each: ticking it starts that upgrade, as Renovate's
dependency dashboard does), the upgrade pull requests still open, and the services that are
current. The body is rendered here and read back here, with linear-time patterns only: the
edit event carries the whole body, which anyone with triage access could have rewritten.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.untrusted import MAX_BODY_CHARS, linear

MARKER = "<!-- idp-copilot:dashboard -->"
TITLE = "IDP Copilot dashboard"
LABEL = "idp-copilot:dashboard"
# A box line: "- [ ] … <!-- upgrade:NAME -->"; NAME follows the service-name rule.
_BOX_RE = linear(r"^\s*[-*] \[([ xX])\] .*<!-- upgrade:([a-z][a-z0-9-]{0,62}) -->\s*$")
MAX_BOXES = 200


@dataclass(frozen=True)
class Entry:
    """One service on the dashboard."""

    name: str
    folder: str
    template_set: str
    version: str
    target: str | None = None  # the version an upgrade would bring; None: current
    pull_request: int | None = None  # its open upgrade pull request
    note: str = ""  # why it was not upgraded (a conflict, no recorded request)

    @property
    def pending(self) -> bool:
        return self.target is not None and self.pull_request is None


def boxes(body: str) -> dict[str, bool]:
    """Service name → ticked, for every box line of a dashboard body."""
    found: dict[str, bool] = {}
    if MARKER not in body:
        return found
    for line in body[:MAX_BODY_CHARS].splitlines():
        if "<!-- upgrade:" not in line:
            continue
        match = _BOX_RE.fullmatch(line)
        if match is not None and len(found) < MAX_BOXES:
            found[match.group(2)] = match.group(1) != " "
    return found


def newly_ticked(before: str, after: str) -> list[str]:
    """The services whose box `after` ticks and `before` did not (the `issues.edited`
    event's `changes.body.from` and the new body)."""
    old, new = boxes(before), boxes(after)
    return [name for name, ticked in new.items() if ticked and not old.get(name, False)]


def render(entries: list[Entry], repo: str) -> str:
    """The dashboard's body for these services (sorted by name)."""
    pending = [e for e in entries if e.pending]
    open_prs = [e for e in entries if e.pull_request is not None]
    current = [e for e in entries if e.target is None and e.pull_request is None]
    lines = [
        MARKER,
        f"The services of {repo} that IDP Copilot generated, and the upgrades of their "
        "template sets. Tick a box to open that upgrade's pull request (write permission "
        "needed); the weekly sweep opens one pull request at a time by itself.",
        "",
        "## Pending upgrades",
        "",
    ]
    for e in sorted(pending, key=lambda e: e.name):
        note = f" ({e.note})" if e.note else ""
        lines.append(
            f"- [ ] `{e.name}` in `{e.folder}`: {e.template_set} {e.version} → {e.target}"
            f"{note} <!-- upgrade:{e.name} -->"
        )
    if not pending:
        lines.append("None.")
    lines += ["", "## Open upgrade pull requests", ""]
    for e in sorted(open_prs, key=lambda e: e.name):
        lines.append(
            f"- `{e.name}`: {e.template_set} {e.version} → {e.target or 'current'} in "
            f"#{e.pull_request}"
        )
    if not open_prs:
        lines.append("None.")
    lines += ["", "## Up to date", ""]
    for e in sorted(current, key=lambda e: e.name):
        note = f" ({e.note})" if e.note else ""
        lines.append(f"- `{e.name}`: {e.template_set} {e.version}{note}")
    if not current:
        lines.append("None.")
    return "\n".join(lines) + "\n"
