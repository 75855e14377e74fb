"""CI on the App's pull requests: what GitHub reported (a failed workflow run or check
suite), the jobs and steps that failed, and what the App did about it, per head commit.

The router (app/webhooks.py) builds a `CiEvent` from a `workflow_run` or `check_suite`
delivery; the job (app/handling/ci.py) reads the failed jobs through the forge and keeps a
`CiRecord` per head sha on the session, so a redelivery, the twin `check_suite` of a run, or
the App's own fix commit never counts twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, Field

CiKind = Literal["workflow_run", "check_suite"]
# Conclusions that ask for attention; `cancelled`, `skipped`, `neutral`, `stale` and
# `action_required` are someone's decision, not a broken build.
FAILED_CONCLUSIONS = frozenset({"failure", "timed_out", "startup_failure"})
# The most fix commits the App pushes for one failing commit and the fixes that follow it.
MAX_FIX_ATTEMPTS = 2


class CiEvent(BaseModel):
    """A completed workflow run or check suite on a branch of the App, as the router read it."""

    kind: CiKind
    head_branch: str
    head_sha: str
    conclusion: str
    name: str = ""
    html_url: str = ""
    run_id: int | None = None
    run_attempt: int = 1
    check_suite_id: int | None = None
    app_slug: str = ""
    app_id: int | None = None

    def key(self) -> str:
        """One handling per run attempt (or check suite): the idempotency key."""
        if self.kind == "workflow_run":
            return f"ci:run:{self.run_id}:{self.run_attempt}"
        return f"ci:suite:{self.check_suite_id}"


@dataclass(frozen=True)
class CiStep:
    number: int
    name: str
    conclusion: str | None


@dataclass(frozen=True)
class CiJob:
    """One job of a workflow run, with its steps (GitHub's "list jobs for a workflow run")."""

    id: int
    name: str
    conclusion: str | None
    html_url: str
    steps: tuple[CiStep, ...] = ()

    @property
    def failed(self) -> bool:
        return self.conclusion in FAILED_CONCLUSIONS

    def failed_steps(self) -> list[CiStep]:
        return [s for s in self.steps if s.conclusion in FAILED_CONCLUSIONS]


class CiFailure(BaseModel):
    """One failed run (or suite) of a head commit, as the todo shows it."""

    kind: CiKind
    name: str
    html_url: str = ""
    run_id: int | None = None
    # "job name › step name", with the job's link, one per failed job.
    jobs: list[tuple[str, str, str]] = Field(default_factory=list)


class CiRecord(BaseModel):
    """What happened to one head commit of the App's branch."""

    failures: list[CiFailure] = Field(default_factory=list)
    # Fix commits pushed for this commit's line (a fix commit inherits its parent's count).
    attempts: int = 0
    # One sentence per fix tried (or refused), for the todo and the final word.
    tried: list[str] = Field(default_factory=list)
    # The fix commit pushed for this head, if any.
    fixed_by: str | None = None
    stopped: bool = False


def failure_lines(record: CiRecord) -> list[str]:
    """The todo's lines for a head commit's failures: workflow, job and step, linked."""
    lines: list[str] = []
    for failure in record.failures:
        run = f"[{failure.name}]({failure.html_url})" if failure.html_url else failure.name
        if not failure.jobs:
            lines.append(f"❌ {run} failed")
        for job, step, url in failure.jobs:
            where = f"[{job}]({url})" if url else job
            lines.append(f"❌ {run} › {where}" + (f" › step **{step}**" if step else ""))
    return lines
