"""`open_pull_request`: every generated file of the session in one commit and one PR.

Validation comes first: files that fail the validators never reach a pull request. The
branch is derived from the session, so a re-run updates the same branch and the same PR.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

from pydantic import BaseModel, Field

from app.github.errors import ForgeError
from tools.spec import ToolContext, ToolError, ToolSpec

log = logging.getLogger(__name__)

BODY_LIMIT = 65_000
CHECK_NAME = "IDP Copilot / validation"


class OpenPullRequestArgs(BaseModel):
    title: str | None = Field(None, description="Pull request title; default 'Add service NAME'")
    summary: str | None = Field(
        None, description="A few sentences for the reviewer: what was generated and why"
    )
    close_issue: bool = Field(
        True, description="Link with 'Closes #N' so merging closes the request issue"
    )
    draft: bool = Field(False, description="Open the pull request as a draft")
    commit_message: str | None = Field(
        None, description="Message of the commit; default: the title and the request's issue"
    )


class OpenPullRequestResult(BaseModel):
    pr_number: int
    pr_url: str
    branch: str
    head_sha: str
    changed: bool = Field(description="False when the branch already held exactly these files")
    committed_paths: list[str]
    summary: str


def branch_for(session_id: str) -> str:
    """`idp/{session-slug}`: stable per session, valid as a git ref."""
    slug = re.sub(r"[^a-z0-9]+", "-", session_id.lower()).strip("-")[:60].strip("-")
    return f"idp/{slug or 'session'}"


def _finding_text(finding: Any) -> str:
    message = getattr(finding, "message", None) or str(finding)
    path = getattr(finding, "path", None) or getattr(finding, "file", None)
    return f"{path}: {message}" if path else str(message)


async def _validated(files: dict[str, str]) -> Any:
    try:
        from tools.validate import validate_files
    except ModuleNotFoundError as exc:
        if exc.name != "tools.validate":
            raise
        raise ToolError(
            "The file validators (tools.validate) are not installed, so no pull request was "
            "opened. Install the full idp-copilot package."
        ) from None
    report = await asyncio.to_thread(validate_files, dict(files))
    if not report.ok:
        findings = [_finding_text(f) for f in report.findings]
        more = f" (and {len(findings) - 10} more)" if len(findings) > 10 else ""
        raise ToolError(
            "The generated files did not pass validation, so no pull request was opened: "
            + "; ".join(findings[:10])
            + more
        )
    return report


async def _check_run(ctx: ToolContext, head_sha: str, report: Any) -> None:
    """The validation table as a check run on the new head, so it shows in the PR's checks.
    A failure here is logged: the PR itself is already open and valid."""
    try:
        await ctx.forge.create_check_run(
            ctx.repo,
            head_sha,
            CHECK_NAME,
            "success",
            "All generated files passed validation",
            report.as_markdown_table(),
        )
    except ForgeError as exc:
        log.warning("check run on %s not created: %s", head_sha[:12], exc)


def _step_summaries(ctx: ToolContext) -> list[str]:
    seen: list[str] = []
    for step in ctx.session.steps if ctx.session else []:
        text = step.output.get("summary") if step.ok else None
        if isinstance(text, str) and text.strip() and step.tool != "open_pull_request":
            line = " ".join(text.split())[:300]
            if line not in seen:
                seen.append(line)
    return seen


# GitHub closes an issue that a pull request body, or a commit message reaching the default
# branch, names after one of these words ("Linking a pull request to an issue"). Only our own
# link may: in text the model wrote, a zero-width space after the word disarms it.
_CLOSING_RE = re.compile(
    r"\b(close[sd]?|fix(?:e[sd])?|resolve[sd]?)(?=:?\s+(?:[\w.-]+/[\w.-]+#\d|#\d|https?://))",
    re.IGNORECASE,
)


def inert_closing_keywords(text: str) -> str:
    """`text` in which no "Closes #N" (or fixes, resolves …) links or closes an issue."""
    return _CLOSING_RE.sub("\\1\u200b", text)


def _plain_title(text: str | None) -> str:
    """A model-written title as GitHub shows it: visible text, one line, no @-mention."""
    from app.untrusted import clean_untrusted, neutralize_mentions

    flat = " ".join(clean_untrusted(text).split())[:120]
    return inert_closing_keywords(neutralize_mentions(flat))


def _body(args: OpenPullRequestArgs, ctx: ToolContext, title: str, table: str) -> str:
    from app.untrusted import inline_markdown

    session = ctx.session
    assert session is not None
    who = f" by @{session.requester}" if session.requester else ""
    lines = [
        f"## {inert_closing_keywords(inline_markdown(title, 120))}",
        "",
        f"Requested{who} in #{session.number}. Generated by IDP Copilot: review it like any "
        "other pull request; comment `/idp set KEY=VALUE` here to change values.",
        "",
        "### Summary",
    ]
    if args.summary:
        # One paragraph: a fence, heading or HTML block in it would swallow or fake the
        # sections below (the file list, the validation table, the closing link).
        lines += [inert_closing_keywords(inline_markdown(args.summary, 2000)), ""]
    lines += [f"- {s}" for s in _step_summaries(ctx)] or ["- (no tool summaries)"]
    lines += ["", "### Files", *[f"- `{p}`" for p in sorted(ctx.files)], ""]
    lines += ["### Validation", "", table.strip(), ""]
    closes = args.close_issue and not session.is_pull_request
    link = f"{'Closes' if closes else 'Requested in'} #{session.number}"
    body = "\n".join(lines)
    if len(body) + len(link) + 2 > BODY_LIMIT:
        body = body[: BODY_LIMIT - len(link) - 80] + "\n\n… (shortened to fit GitHub's limit)"
    return f"{body}\n{link}\n"


async def open_pull_request(args: OpenPullRequestArgs, ctx: ToolContext) -> OpenPullRequestResult:
    """Validate the session's files, commit them all at once, and open or update the PR."""
    session = ctx.session
    if ctx.forge is None or ctx.repo is None or session is None:
        raise ToolError("open_pull_request runs inside a session with a repository to publish to.")
    if not ctx.files:
        raise ToolError("There are no generated files to commit yet: run the generators first.")
    report = await _validated(ctx.files)
    name = session.request.name if session.request else None
    title = _plain_title(args.title) or (
        f"Add service {name}" if name else f"IDP Copilot changes for #{session.number}"
    )
    branch = session.branch or branch_for(session.id)
    body = _body(args, ctx, title, report.as_markdown_table())
    try:
        message = inert_closing_keywords((args.commit_message or "").strip()[:4000]) or (
            f"{title}\n\nRequested in {session.repo}#{session.number}."
        )
        commit = await ctx.forge.commit_files(ctx.repo, branch, dict(ctx.files), message)
        # The check run needs only the commit: it goes out alongside the pull request.
        check = (
            asyncio.ensure_future(_check_run(ctx, commit.sha, report)) if commit.changed else None
        )
        try:
            pr = await ctx.forge.ensure_pull_request(
                ctx.repo, branch, title, body, draft=args.draft
            )
        finally:
            if check is not None:
                await check
    except ForgeError as exc:
        raise ToolError(f"Publishing the pull request failed: {exc}") from None
    return OpenPullRequestResult(
        pr_number=pr.number,
        pr_url=pr.url,
        branch=branch,
        head_sha=commit.sha,
        changed=commit.changed,
        committed_paths=sorted(ctx.files),
        summary=f"Pull request #{pr.number} with {len(ctx.files)} files"
        + ("" if commit.changed else " (no change since the last commit)"),
    )


OPEN_PULL_REQUEST = ToolSpec(
    name="open_pull_request",
    description=(
        "Validate every file generated in this session, commit them all in one commit on the "
        "session's branch and open (or update) the pull request that links back to the issue. "
        "Call it once, after all generators have run."
    ),
    input_model=OpenPullRequestArgs,
    output_model=OpenPullRequestResult,
    func=open_pull_request,
    timeout=180.0,
    aliases=["create_pull_request", "open_pr"],
    side_effect="repo",
)

TOOLS = [OPEN_PULL_REQUEST]
