"""Webhook signature check and the event router: a verified GitHub delivery → `Trigger`.

Used by the receiver in `app/web.py` and by `idp-copilot receive`. Nothing here does I/O.
The payload models, holding only the fields the router reads, are app/webhook_payloads.py.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterable
from typing import Any

from pydantic import BaseModel, ValidationError

from app.domain.ci import FAILED_CONCLUSIONS, CiEvent
from app.grammar.commands import (
    Command,
    CommandError,
    Trigger,
    is_issue_form,
    parse_comment,
    parse_issue_form,
    read_comment,
)
from app.grammar.dashboard import newly_ticked
from app.webhook_payloads import (
    CheckSuitePayload,
    Envelope,
    IssuePayload,
    PullRequestPayload,
    ReviewCommentPayload,
    ReviewPayload,
    WorkflowRunPayload,
)

NEW_SERVICE_LABEL = "idp:new-service"
# Branches of the App's pull requests (tools/builtin/publish.py `branch_for`).
APP_BRANCH_PREFIX = "idp/"
# Commands that still make sense on a merged (hence closed) pull request.
AFTER_MERGE_VERBS = frozenset({"deploy", "status", "feedback", "help"})


def verify_signature(secrets: Iterable[bytes], body: bytes, header: str | None) -> bool:
    """True when `header` (X-Hub-Signature-256) is the HMAC-SHA256 of `body` under any secret.

    Every secret is compared in constant time, so a rotation can keep the old one for a while.
    """
    if not header or not header.startswith("sha256="):
        return False
    given = header.removeprefix("sha256=").strip().encode()
    ok = False
    for secret in secrets:
        expected = hmac.new(secret, body, hashlib.sha256).hexdigest().encode()
        ok |= hmac.compare_digest(expected, given)
    return ok


class Ignored(BaseModel):
    """A delivery we answer 2xx and do nothing with; `reason` is said in the response."""

    reason: str


Handler = Callable[[str, str, IssuePayload], "Trigger | Ignored"]


def _envelope(event: str, delivery_id: str, p: Envelope) -> dict[str, Any]:
    """The Trigger fields every event carries alike: where it came from and who sent it."""
    return {
        "delivery_id": delivery_id,
        "event": event,
        "action": p.action,
        "repo": p.repository.full_name,
        "installation_id": p.installation.id if p.installation else None,
        "sender": p.sender.login,
    }


def _trigger(event: str, delivery_id: str, p: IssuePayload, **fields: object) -> Trigger:
    return Trigger(
        **_envelope(event, delivery_id, p),
        number=p.issue.number,
        is_pull_request=p.issue.pull_request is not None,
        comment_id=p.comment.id if p.comment else None,
        title=p.issue.title,
        state=p.issue.state,
        locked=p.issue.locked,
        **fields,  # type: ignore[arg-type]
    )


def _on_comment_created(event: str, delivery_id: str, p: IssuePayload) -> Trigger | Ignored:
    """`/idp` lines in a comment on an issue or a pull request."""
    if p.comment is None:
        return Ignored(reason="issue_comment payload without a comment")
    commands, errors, lines = read_comment(p.comment.body or "")
    if not commands and not errors:
        if p.issue.pull_request is not None and p.issue.state == "open" and p.comment.body:
            # Free text on a pull request: review feedback if the App opened it, which only
            # the worker can tell (app/handling/review.py); it drops the rest without a word.
            review = Command(verb="review", text=p.comment.body)
            return _trigger(event, delivery_id, p, commands=[review])
        return Ignored(reason="no /idp command in the comment")
    if p.issue.state != "open":
        merged = p.issue.pull_request is not None and p.issue.pull_request.merged_at
        commands = [c for c in commands if merged and c.verb in AFTER_MERGE_VERBS]
        if not commands:
            return Ignored(reason=f"{_kind(p)} is closed")
        errors = []
    return _trigger(event, delivery_id, p, **_parsed(commands, errors, lines))


def _parsed(commands: list[Command], errors: list[CommandError], lines: int) -> dict[str, Any]:
    """A comment's reading as Trigger fields: its commands, the sentence of each error, and
    how many command lines it held."""
    return {"commands": commands, "errors": [e.message for e in errors], "command_lines": lines}


def _new_service_trigger(event: str, delivery_id: str, p: IssuePayload) -> Trigger:
    """An issue asking for a new service: the form → create-service, else a free-text request."""
    body = p.issue.body or ""
    if not is_issue_form(body):
        return _trigger(event, delivery_id, p, commands=[Command(verb="request", text=body)])
    try:
        service = parse_issue_form(body)
    except CommandError as exc:
        return _trigger(event, delivery_id, p, errors=[exc.message])
    return _trigger(
        event, delivery_id, p, commands=[Command(verb="create-service", service=service)]
    )


def _on_issue_opened(event: str, delivery_id: str, p: IssuePayload) -> Trigger | Ignored:
    labelled = any(label.name == NEW_SERVICE_LABEL for label in p.issue.labels)
    if not labelled and not is_issue_form(p.issue.body):
        return Ignored(reason=f"issue is neither labelled {NEW_SERVICE_LABEL} nor the form")
    return _new_service_trigger(event, delivery_id, p)


def _on_issue_labeled(event: str, delivery_id: str, p: IssuePayload) -> Trigger | Ignored:
    if p.label is None or p.label.name != NEW_SERVICE_LABEL:
        return Ignored(reason=f"label is not {NEW_SERVICE_LABEL}")
    return _new_service_trigger(event, delivery_id, p)


def _on_issue_edited(event: str, delivery_id: str, p: IssuePayload) -> Trigger | Ignored:
    """A box ticked on the App's dashboard issue: the upgrade of that service (the sender's
    permission is checked by the worker like any command's). The App's own edits come from a
    Bot and are ignored before this, so its dashboard updates never loop."""
    if p.changes is None or p.changes.body is None:
        return Ignored(reason="issue edit did not change the body")
    if p.issue.user is None or p.issue.user.type != "Bot":
        return Ignored(reason="not a dashboard the App wrote")
    names = newly_ticked(p.changes.body.from_ or "", p.issue.body or "")
    if not names:
        return Ignored(reason="no dashboard box was ticked")
    commands = [Command(verb="upgrade", text=name) for name in names]
    return _trigger(event, delivery_id, p, commands=commands, command_lines=len(commands))


def _on_pull_request_closed(event: str, delivery_id: str, payload: dict) -> Trigger | Ignored:
    """The App's pull request merged: the worker records it on the session and, when the
    repository's config says so, moves on to the staging deploy. Merged or closed, the
    namespace locks of its session are released."""
    try:
        p = PullRequestPayload.model_validate(payload)
    except ValidationError as exc:
        where = ".".join(str(part) for part in exc.errors()[0]["loc"])
        return Ignored(reason=f"{event}.closed payload has no usable {where}")
    pr = p.pull_request
    if not pr.head.ref.startswith(APP_BRANCH_PREFIX):
        return Ignored(reason="not a pull request the App opened")
    # Closed without merging: its namespace locks go (app/handling/namespace_wait.py).
    verb = "merged" if pr.merged else "closed"
    return _pull_request_trigger(event, delivery_id, p, commands=[Command(verb=verb)])


def _pull_request_trigger(
    event: str, delivery_id: str, p: PullRequestPayload, **fields: object
) -> Trigger:
    pr = p.pull_request
    return Trigger(
        **_envelope(event, delivery_id, p),
        number=pr.number,
        is_pull_request=True,
        title=pr.title,
        state=pr.state,
        locked=pr.locked,
        **fields,  # type: ignore[arg-type]
    )


def _validated(event: str, payload: dict, model: type[Envelope]) -> Any:
    """The payload as `model`, or why it is ignored: a bot sent it (the App's own replies,
    among others), or a field the router reads is missing or malformed."""
    sender = payload.get("sender")
    if isinstance(sender, dict) and sender.get("type") == "Bot":
        return Ignored(reason="sender is a bot")
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        where = ".".join(str(part) for part in exc.errors()[0]["loc"])
        return Ignored(reason=f"{event}.{payload.get('action')} payload has no usable {where}")


def _reviewed(event: str, payload: dict, model: type[PullRequestPayload]) -> Any:
    """The payload parsed, or why it is ignored: bots, locked and closed pull requests."""
    p = _validated(event, payload, model)
    if isinstance(p, Ignored):
        return p
    if p.pull_request.locked:
        return Ignored(reason="pull request is locked")
    if p.pull_request.state != "open":
        return Ignored(reason="pull request is closed")
    return p


def _review_or_commands(
    event: str, delivery_id: str, p: PullRequestPayload, body: str, review_id: int | None
) -> Trigger | Ignored:
    """On the App's branch: the review, read whole by the worker. Elsewhere: only `/idp`
    lines count, as in any comment."""
    if p.pull_request.head.ref.startswith(APP_BRANCH_PREFIX):
        if review_id is None:
            return Ignored(reason="review comment without a review")
        return _pull_request_trigger(
            event, delivery_id, p, commands=[Command(verb="review")], review_id=review_id
        )
    commands, errors, lines = read_comment(body)
    if not commands and not errors:
        return Ignored(reason="not a pull request the App opened, and no /idp command")
    return _pull_request_trigger(event, delivery_id, p, **_parsed(commands, errors, lines))


def _on_review_submitted(event: str, delivery_id: str, payload: dict) -> Trigger | Ignored:
    """A review on a pull request: changes requested or comments (with their line comments);
    an approval only when it holds `/idp set`."""
    p = _reviewed(event, payload, ReviewPayload)
    if isinstance(p, Ignored):
        return p
    body = p.review.body or ""
    state = p.review.state.lower()
    if state not in ("changes_requested", "commented", "approved"):
        return Ignored(reason=f"a {state} review asks for nothing")
    if state == "approved" and not any(c.verb == "set" for c in parse_comment(body)[0]):
        return Ignored(reason="an approving review asks for no change")
    return _review_or_commands(event, delivery_id, p, body, p.review.id)


def _on_review_comment_created(event: str, delivery_id: str, payload: dict) -> Trigger | Ignored:
    """A line comment. GitHub also sends `pull_request_review.submitted` for its review:
    both name the review, and the worker handles each review once."""
    p = _reviewed(event, payload, ReviewCommentPayload)
    if isinstance(p, Ignored):
        return p
    comment = p.comment
    return _review_or_commands(
        event, delivery_id, p, comment.body or "", comment.pull_request_review_id
    )


def _on_ci_completed(event: str, delivery_id: str, payload: dict) -> Trigger | Ignored:
    """A workflow run or check suite that failed on the App's branch → the internal verb
    `ci` on the App's pull request. Bots pass: the App's own push starts the run."""
    model = WorkflowRunPayload if event == "workflow_run" else CheckSuitePayload
    try:
        p = model.model_validate(payload)
    except ValidationError as exc:
        where = ".".join(str(part) for part in exc.errors()[0]["loc"])
        return Ignored(reason=f"{event}.completed payload has no usable {where}")
    run = p.workflow_run if isinstance(p, WorkflowRunPayload) else None
    suite = p.check_suite if isinstance(p, CheckSuitePayload) else None
    subject = run or suite
    assert subject is not None
    if subject.conclusion not in FAILED_CONCLUSIONS:
        return Ignored(reason=f"{event} concluded {subject.conclusion}: nothing to report")
    branch = subject.head_branch or ""
    if not branch.startswith(APP_BRANCH_PREFIX):
        return Ignored(reason="not a branch of the App")
    app = suite.app if suite is not None else None
    if app is not None and app.slug == "github-actions":
        # The same failure arrives as `workflow_run`, which names the run to read and re-run.
        return Ignored(reason="GitHub Actions' check suite: its workflow_run reports it")
    pulls = [pr for pr in subject.pull_requests if pr.head.ref == branch]
    if not pulls:
        # GitHub leaves `pull_requests` empty when the head branch is in a fork; the App's
        # branches never are.
        return Ignored(reason=f"{event} names no pull request of this repository")
    ci = CiEvent(
        kind="workflow_run" if run is not None else "check_suite",
        head_branch=branch,
        head_sha=subject.head_sha,
        conclusion=subject.conclusion or "",
        name=(run.name if run is not None else (app.slug if app else "")) or "",
        html_url=run.html_url if run is not None else "",
        run_id=run.id if run is not None else None,
        run_attempt=run.run_attempt if run is not None else 1,
        check_suite_id=suite.id if suite is not None else None,
        app_slug=app.slug if app is not None else "",
        app_id=app.id if app is not None else None,
    )
    return Trigger(
        **_envelope(event, delivery_id, p),
        number=pulls[0].number,
        is_pull_request=True,
        commands=[Command(verb="ci")],
        ci=ci,
    )


def _kind(p: IssuePayload) -> str:
    return "pull request" if p.issue.pull_request is not None else "issue"


# One table of (event, action) → handler; adding an event family adds rows here only.
ROUTES: dict[tuple[str, str], Handler] = {
    ("issue_comment", "created"): _on_comment_created,
    ("issues", "opened"): _on_issue_opened,
    ("issues", "labeled"): _on_issue_labeled,
    ("issues", "edited"): _on_issue_edited,
}
# Pull request and CI events carry no `issue`: they have a table (and payload models) of
# their own.
PULL_REQUEST_ROUTES: dict[tuple[str, str], Callable[[str, str, dict], Trigger | Ignored]] = {
    ("pull_request", "closed"): _on_pull_request_closed,
    ("pull_request_review", "submitted"): _on_review_submitted,
    ("pull_request_review_comment", "created"): _on_review_comment_created,
    ("workflow_run", "completed"): _on_ci_completed,
    ("check_suite", "completed"): _on_ci_completed,
}
KNOWN_EVENTS = frozenset(
    {"ping", *(event for event, _ in ROUTES), *(event for event, _ in PULL_REQUEST_ROUTES)}
)


def route(event: str, delivery_id: str, payload: dict) -> Trigger | Ignored:
    """What a verified delivery asks for: a Trigger to queue, or the reason to ignore it."""
    if event == "ping":
        return Ignored(reason="pong")
    action = payload.get("action")
    pr_handler = PULL_REQUEST_ROUTES.get((event, action)) if isinstance(action, str) else None
    if pr_handler is not None:
        # Before the Bot check: a merge queue or a bot may merge the App's pull request.
        return pr_handler(event, delivery_id, payload)
    handler = ROUTES.get((event, action)) if isinstance(action, str) else None
    if handler is None:
        return Ignored(reason=f"{event}.{action} is not handled" if action else f"{event} event")
    parsed = _validated(event, payload, IssuePayload)
    if isinstance(parsed, Ignored):
        return parsed
    if parsed.issue.locked:
        return Ignored(reason=f"{_kind(parsed)} is locked")
    if parsed.issue.state != "open" and event != "issue_comment":
        return Ignored(reason=f"{_kind(parsed)} is closed")
    return handler(event, delivery_id, parsed)
