"""Apply requirements, as Atlantis's `apply_requirements`: what the App's pull request must
be before `/idp apply` (or `/idp deploy staging`) approves anything.

Set per repository in `.github/idp-copilot.yml` (`apply_requirements`, default
`[mergeable]`):

- `approved`: an approving review by someone with the permission `apply` needs here. A
  reviewer's latest approval or change request counts, as on GitHub; a dismissed one not.
- `mergeable`: GitHub says the pull request can merge (`mergeable` true; not a draft, no
  conflict, not blocked by branch protection). `mergeable` null means GitHub is still
  computing it: unmet, "try again".
- `checks`: every required check is green on the head commit; required are the base
  branch's protection's required checks when the App may read them, else every check run
  and commit status on that commit (and at least one must have reported).

A refused command gets one reply naming each unmet requirement; nothing is approved. Once
the pull request is merged the requirements are moot: the merge met GitHub's own gate.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from app.domain.session import Session
from app.github.errors import ForgeError
from app.github.forge import PERMISSION_RANK, CommitCheck, PullRequestState
from app.repo_config import required_permission

if TYPE_CHECKING:
    from app.handling.context import JobContext

MAX_REVIEWERS_CHECKED = 10  # each is a permission read; one qualified approver is enough
MAX_NAMED = 8  # check names listed in one reason; the rest are counted
MAX_NAME = 80


async def refused(ctx: JobContext, verb: str) -> bool:
    """True when the session's pull request misses a requirement: the reply said which."""
    session = ctx.store.get(ctx.session_id)
    try:
        reasons = await unmet(ctx, session)
    except ForgeError as exc:
        reasons = [f"GitHub could not be asked about the pull request ({exc}); try again"]
    if not reasons:
        return False
    lines = "\n".join(f"- {r}" for r in reasons)
    await ctx.reply(
        f"`/idp {verb}` did not run: this repository's `apply_requirements` "
        f"(`.github/idp-copilot.yml`) are not met:\n\n{lines}\n\n"
        f"Nothing was approved. Comment `/idp {verb}` again once they are met."
    )
    return True


async def unmet(ctx: JobContext, session: Session | None) -> list[str]:
    """One sentence per unmet requirement (empty: `/idp apply` may go on)."""
    wanted = list(dict.fromkeys(ctx.config.apply_requirements))
    if not wanted or session is None:
        return []
    if session.pr_number is None and not session.files:
        return []  # a session that makes no pull request (`/idp create-repo NAME`)
    if session.pr_number is None:
        return [
            f"**{', '.join(wanted)}**: this session has no pull request yet, and the "
            "requirements are checked on it"
        ]
    pr = await ctx.forge.pull_request_state(ctx.repo, session.pr_number)
    if pr is None:
        return [f"pull request #{session.pr_number} is gone: `/idp plan` opens a new one"]
    if pr.merged:
        return []
    if pr.state != "open":
        return [f"pull request #{pr.number} is closed: reopen it to apply its changes"]
    reasons: list[str] = []
    for name in wanted:
        if name == "approved":
            reason = await _approved(ctx, pr)
        elif name == "mergeable":
            reason = _mergeable(pr)
        else:
            reason = await _checks(ctx, pr)
        if reason:
            reasons.append(f"**{name}**: {reason}")
    return reasons


async def _approved(ctx: JobContext, pr: PullRequestState) -> str | None:
    needed = required_permission(ctx.config, "apply")
    latest: dict[str, tuple[str, str]] = {}
    for review in await ctx.forge.list_reviews(ctx.repo, pr.number):
        # GitHub's rule: a reviewer's latest approval, change request or dismissal stands;
        # a later plain comment does not undo an approval.
        if review.state in ("approved", "changes_requested", "dismissed"):
            latest[review.author.lower()] = (review.author, review.state)
    approvers = [
        who
        for who, state in latest.values()
        if state == "approved" and not who.lower().endswith("[bot]")
    ]
    rank = PERMISSION_RANK[needed]
    for login in approvers[:MAX_REVIEWERS_CHECKED]:
        if PERMISSION_RANK.get(await ctx.forge.permission(ctx.repo, login), 0) >= rank:
            return None
    if approvers:
        return (
            f"pull request #{pr.number} is approved, but by nobody with **{needed}** "
            "permission, which `/idp apply` needs here"
        )
    return (
        f"pull request #{pr.number} has no approving review from someone with **{needed}** "
        "permission (a dismissed approval does not count)"
    )


def _mergeable(pr: PullRequestState) -> str | None:
    n = f"pull request #{pr.number}"
    if pr.draft or pr.mergeable_state == "draft":
        return f"{n} is a draft; mark it ready for review"
    if pr.mergeable is None or pr.mergeable_state == "unknown":
        return f"GitHub is still computing whether {n} can be merged; try again in a minute"
    if pr.mergeable is False or pr.mergeable_state == "dirty":
        return f"{n} has merge conflicts with `{_name(pr.base_ref)}`; resolve them first"
    if pr.mergeable_state == "blocked":
        return (
            f"the protection of `{_name(pr.base_ref)}` blocks merging {n} (a required review "
            "or check is missing)"
        )
    return None


async def _checks(ctx: JobContext, pr: PullRequestState) -> str | None:
    required: tuple[str, ...] = ()
    try:
        rules = await ctx.forge.get_branch_protection(ctx.repo, pr.base_ref)
    except ForgeError:
        rules = None  # not readable without administration: every check counts instead
    if rules is not None:
        required = rules.required_checks
    found = await ctx.forge.commit_checks(ctx.repo, pr.head_sha)
    by_name: dict[str, list[CommitCheck]] = {}
    for check in found:
        by_name.setdefault(check.name, []).append(check)
    commit = f"commit `{pr.head_sha[:12]}`"
    if not required and not by_name:
        return f"no check has reported on {commit} (the head of #{pr.number}) yet"
    names = required or tuple(sorted(by_name))
    missing = [n for n in names if n not in by_name]
    failed = [n for n in names if any(_failed(c) for c in by_name.get(n, ()))]
    running = [
        n
        for n in names
        if n in by_name and n not in failed and not all(c.green for c in by_name[n])
    ]
    parts = []
    if failed:
        parts.append(f"failed: {_names(failed)}")
    if running:
        parts.append(f"not finished: {_names(running)}")
    if missing:
        parts.append(f"not reported: {_names(missing)}")
    if not parts:
        return None
    which = "required checks" if required else "checks"
    return f"{which} on {commit} are not all green ({'; '.join(parts)})"


def _failed(check: CommitCheck) -> bool:
    return check.status == "completed" and not check.green


def _name(text: str) -> str:
    """A name from GitHub, inert in a code span: one line, no backticks, bounded."""
    flat = " ".join(text.replace("`", "'").split())
    return flat if len(flat) <= MAX_NAME else flat[: MAX_NAME - 1] + "…"


def _names(names: list[str]) -> str:
    shown = ", ".join(f"`{_name(n)}`" for n in names[:MAX_NAMED])
    more = len(names) - MAX_NAMED
    return shown + (f" and {more} more" if more > 0 else "")
