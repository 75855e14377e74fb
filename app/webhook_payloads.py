"""The fields of GitHub's webhook payloads that the router (app/webhooks.py) reads.

Extra fields are ignored, so new GitHub payload fields never make us reject a real
delivery; every text field is size-bounded and scrubbed before anything parses it.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, Field

from app.untrusted import MAX_BODY_CHARS, MAX_TITLE_CHARS, scrub

# Every text field gets its size bound before any parsing: GitHub's own limits, so a real
# delivery is never cut; the rest of a longer field is never read.
Body = Annotated[
    str | None, AfterValidator(lambda v: None if v is None else scrub(v[:MAX_BODY_CHARS]))
]
Title = Annotated[str, AfterValidator(lambda v: scrub(v[:MAX_TITLE_CHARS]))]


class User(BaseModel):
    login: str
    type: str = "User"


class Label(BaseModel):
    name: str


class PullRequestRef(BaseModel):
    merged_at: str | None = None


class Issue(BaseModel):
    number: int
    title: Title = ""
    body: Body = None
    state: str = "open"
    locked: bool = False
    labels: list[Label] = []
    pull_request: PullRequestRef | None = None
    user: User | None = None


class Comment(BaseModel):
    id: int
    body: Body = None


class Repository(BaseModel):
    full_name: str


class Installation(BaseModel):
    id: int


class Envelope(BaseModel):
    """What every event we route carries besides its subject."""

    action: str | None = None
    repository: Repository
    installation: Installation | None = None
    sender: User


class PreviousBody(BaseModel):
    from_: Body = Field(None, alias="from")


class Changes(BaseModel):
    """`issues.edited`: what the edit changed, with the previous text."""

    body: PreviousBody | None = None


class IssuePayload(Envelope):
    issue: Issue
    comment: Comment | None = None
    label: Label | None = None
    changes: Changes | None = None


class Branch(BaseModel):
    ref: str


class PullRequest(BaseModel):
    number: int
    title: Title = ""
    state: str = "closed"
    locked: bool = False
    merged: bool = False
    head: Branch


class PullRequestPayload(Envelope):
    pull_request: PullRequest


class Review(BaseModel):
    id: int
    body: Body = None
    state: str = "commented"


class ReviewComment(BaseModel):
    id: int
    body: Body = None
    pull_request_review_id: int | None = None


class ReviewPayload(PullRequestPayload):
    review: Review


class ReviewCommentPayload(PullRequestPayload):
    comment: ReviewComment


# -- CI: `workflow_run` and `check_suite` (completed) ----------------------------------------

# Names and branches in CI payloads: GitHub's limits are far below these bounds.
Name = Annotated[str | None, AfterValidator(lambda v: None if v is None else scrub(v[:300]))]


class PullRequestHead(BaseModel):
    ref: str
    sha: str = ""


class CiPullRequest(BaseModel):
    """An entry of a run's `pull_requests` (empty when the head branch is in a fork)."""

    number: int
    head: PullRequestHead


class App(BaseModel):
    id: int | None = None
    slug: str = ""


class WorkflowRun(BaseModel):
    id: int
    name: Name = None
    head_branch: Name = None
    head_sha: str
    conclusion: str | None = None
    html_url: str = ""
    run_attempt: int = 1
    pull_requests: list[CiPullRequest] = []


class WorkflowRunPayload(Envelope):
    workflow_run: WorkflowRun


class CheckSuite(BaseModel):
    id: int
    head_branch: Name = None
    head_sha: str
    conclusion: str | None = None
    app: App | None = None
    pull_requests: list[CiPullRequest] = []


class CheckSuitePayload(Envelope):
    check_suite: CheckSuite
