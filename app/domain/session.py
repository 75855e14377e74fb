"""The session: everything the agent knows about one issue or PR, as versioned JSON.

The store that loads, saves and locks it is `app/state.py`."""

from __future__ import annotations

import time
from typing import Any, Literal

from pydantic import BaseModel, Field

from app.domain.ci import CiRecord
from app.domain.service import ServiceRequest
from app.domain.todo import Todo

SCHEMA_VERSION = 1
SessionStatus = Literal["new", "planned", "running", "waiting", "done", "failed", "cancelled"]


def session_id_for(repo: str, number: int) -> str:
    """One session per issue or pull request."""
    return f"{repo}#{number}"


class StepRecord(BaseModel):
    """A completed (or failed) tool call; side effects are keyed so a re-run never repeats one."""

    task_id: str | None = None
    tool: str
    args: dict[str, Any] = Field(default_factory=dict)
    idempotency_key: str
    ok: bool
    output: dict[str, Any] = Field(default_factory=dict)
    error: str | None = None
    started_at: float
    finished_at: float


class Approval(BaseModel):
    """One `/idp apply` (or an auto-deploy merge) for one gated call: the digest shown in the
    todo (app/domain/approval.py) and who approved it. A call whose digest differs is not
    covered."""

    task_id: str | None = None
    tool: str
    digest: str
    args_digest: str | None = Field(
        None, description="Digest of the tool and arguments alone: tells 'files changed' apart"
    )
    by: str
    at: float = Field(default_factory=time.time)


class Session(BaseModel):
    """Everything the agent knows about one issue or PR, checkpointed after every step."""

    schema_version: int = SCHEMA_VERSION
    id: str
    repo: str
    number: int
    is_pull_request: bool = False
    installation_id: int | None = None
    requester: str | None = None
    command: str | None = None
    status: SessionStatus = "new"
    request: ServiceRequest | None = None
    request_text: str | None = None
    todo: Todo | None = None
    steps: list[StepRecord] = Field(default_factory=list)
    files: dict[str, str] = Field(default_factory=dict)
    comment_id: int | None = None
    rendered_todo: str | None = None
    branch: str | None = None
    pr_number: int | None = None
    pr_url: str | None = None
    head_sha: str | None = None
    # Who approved last (shown in the console and the model's prompt); what they approved
    # is in `approvals`, one digest per gated call.
    approved_by: str | None = None
    approvals: list[Approval] = Field(default_factory=list)
    # Repositories (owner/name, lower case) the repository tools created for this session:
    # the only ones they may touch again (protection, a retry).
    created_repos: list[str] = Field(default_factory=list)
    # The RQ job running this session now (None between runs): what `/idp cancel` stops.
    job_id: str | None = None
    # When and by whom the App's pull request was merged (`pull_request.closed`, merged).
    merged_at: float | None = None
    merged_by: str | None = None
    # CI on the App's pull request, by head sha (app/handling/ci.py): failures, fix attempts.
    ci: dict[str, CiRecord] = Field(default_factory=dict)
    # The full cluster plan last published as a check run: sha256 of head and plan, and
    # the markdown link the todo shows (app/agent/change_plan.py).
    plan_check: str | None = None
    plan_link: str | None = None
    messages: list[dict[str, Any]] = Field(default_factory=list)
    token_usage: dict[str, int] = Field(default_factory=dict)
    created_at: float = Field(default_factory=time.time)
    updated_at: float = Field(default_factory=time.time)

    def approval_for(self, tool: str, digest: str | None) -> Approval | None:
        """The approval covering a call of `tool` with this digest, if any."""
        for approval in self.approvals:
            if digest and approval.tool == tool and approval.digest == digest:
                return approval
        return None

    def clear_approvals(self) -> None:
        """New content: every approval given is void."""
        self.approved_by = None
        self.approvals = []

    def step_for(self, idempotency_key: str) -> StepRecord | None:
        """The recorded successful result of a side effect, if it already ran."""
        for step in self.steps:
            if step.idempotency_key == idempotency_key and step.ok:
                return step
        return None
