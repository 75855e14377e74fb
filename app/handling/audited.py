"""The audit trail of one job: a `Forge` and a `Cluster` that record every side effect.

A job wraps the real forge and cluster once; the handlers, the publisher and the tools all
write through the wrappers, so no side effect escapes the log (app/audit.py). Each entry is
appended after the call returns, or with `failed: …` when it raised.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import redis

from app.audit import AuditAction, AuditLog
from app.domain.ci import CiJob
from app.github.forge import (
    CommitCheck,
    CommitInfo,
    Forge,
    Permission,
    PullRequestInfo,
    PullRequestState,
    RepoInfo,
    RepoRef,
    Review,
)
from app.github.protection import BranchRules

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass
class AuditScope:
    """Who asked, with which command, for which session: the same for a job's entries."""

    audit: AuditLog
    session_id: str | None
    actor: str | None
    command: str | None = None

    def record(
        self, action: AuditAction, target: str, result: str, detail: dict | None = None
    ) -> None:
        try:
            self.audit.record(
                action,
                session_id=self.session_id,
                actor=self.actor,
                command=self.command,
                target=target,
                result=result,
                detail=detail,
            )
        except redis.RedisError as exc:  # the side effect happened; losing its entry is logged
            log.error("audit entry %s %s lost: %s", action, target, exc)


class AuditedForge:
    """A `Forge` whose writes are recorded in the audit log; reads pass straight through.

    Every method of the `Forge` protocol is written out here, with no `__getattr__`
    pass-through: a write added to the protocol fails tests/test_audit_forge.py until it
    is audited here, instead of slipping past the log. The concrete forge's extras are on
    `inner`."""

    def __init__(self, inner: Forge, scope: AuditScope, known_branches: set[str] | None = None):
        self.inner = inner
        self.scope = scope
        self._branches = set(known_branches or ())

    async def _logged(
        self,
        action: AuditAction,
        target: str,
        call: Callable[[], Awaitable[T]],
        result: Callable[[T], tuple[str, dict]],
    ) -> T:
        try:
            value = await call()
        except Exception as exc:
            self.scope.record(action, target, f"failed: {exc}"[:300])
            raise
        outcome, detail = result(value)
        self.scope.record(action, target, outcome, detail)
        return value

    async def upsert_todo_comment(
        self, repo: RepoRef, number: int, session_id: str, body: str, comment_id: int | None
    ) -> int:
        return await self._logged(
            "comment",
            f"{repo.full_name}#{number}",
            lambda: self.inner.upsert_todo_comment(repo, number, session_id, body, comment_id),
            lambda cid: (
                "created" if comment_id is None else "updated",
                {"comment_id": cid, "kind": "todo"},
            ),
        )

    async def post_comment(self, repo: RepoRef, number: int, body: str) -> int:
        return await self._logged(
            "comment",
            f"{repo.full_name}#{number}",
            lambda: self.inner.post_comment(repo, number, body),
            lambda cid: ("created", {"comment_id": cid, "kind": "reply"}),
        )

    async def reply_to_review_comment(
        self, repo: RepoRef, number: int, comment_id: int, body: str
    ) -> int:
        return await self._logged(
            "comment",
            f"{repo.full_name}#{number}",
            lambda: self.inner.reply_to_review_comment(repo, number, comment_id, body),
            lambda cid: ("created", {"comment_id": cid, "kind": "review_reply"}),
        )

    async def get_review(self, repo: RepoRef, number: int, review_id: int) -> Review:
        return await self.inner.get_review(repo, number, review_id)

    async def get_branch_protection(self, repo: RepoRef, branch: str) -> BranchRules | None:
        return await self.inner.get_branch_protection(repo, branch)

    async def list_reviews(self, repo: RepoRef, number: int) -> list[Review]:
        return await self.inner.list_reviews(repo, number)

    async def pull_request_state(self, repo: RepoRef, number: int) -> PullRequestState | None:
        return await self.inner.pull_request_state(repo, number)

    async def commit_checks(self, repo: RepoRef, sha: str) -> list[CommitCheck]:
        return await self.inner.commit_checks(repo, sha)

    async def add_reaction(self, repo: RepoRef, comment_id: int, content: str) -> None:
        # A reaction is an acknowledgement, not a change anyone reviews: not audited.
        await self.inner.add_reaction(repo, comment_id, content)

    async def list_reactions(self, repo: RepoRef, comment_id: int) -> list[tuple[str, str]]:
        return await self.inner.list_reactions(repo, comment_id)

    async def default_branch(self, repo: RepoRef) -> str:
        return await self.inner.default_branch(repo)

    async def read_file(self, repo: RepoRef, path: str, ref: str | None = None) -> str | None:
        return await self.inner.read_file(repo, path, ref)

    async def permission(self, repo: RepoRef, username: str) -> Permission:
        return await self.inner.permission(repo, username)

    async def granted_permissions(self, repo: RepoRef) -> dict[str, str] | None:
        return await self.inner.granted_permissions(repo)

    async def commit_files(
        self, repo: RepoRef, branch: str, files: dict[str, str], message: str
    ) -> CommitInfo:
        target = f"{repo.full_name}@{branch}"
        info = await self._logged(
            "commit",
            target,
            lambda: self.inner.commit_files(repo, branch, files, message),
            lambda c: (
                "created" if c.changed else "unchanged",
                {"sha": c.sha, "files": len(files)},
            ),
        )
        if info.changed and branch not in self._branches:
            # The first commit of a session's branch is what creates the branch.
            self.scope.record("branch", target, "created", {"sha": info.sha})
        self._branches.add(branch)
        return info

    async def ensure_pull_request(
        self, repo: RepoRef, branch: str, title: str, body: str, draft: bool = False
    ) -> PullRequestInfo:
        return await self._logged(
            "pull_request",
            f"{repo.full_name}@{branch}",
            lambda: self.inner.ensure_pull_request(repo, branch, title, body, draft),
            lambda pr: (
                "created" if pr.created else "updated",
                {"number": pr.number, "url": pr.url, "draft": draft},
            ),
        )

    async def create_check_run(
        self, repo: RepoRef, head_sha: str, name: str, conclusion: str, title: str, summary: str
    ) -> int:
        return await self._logged(
            "check_run",
            f"{repo.full_name}@{head_sha[:12]}",
            lambda: self.inner.create_check_run(repo, head_sha, name, conclusion, title, summary),
            lambda check_id: (conclusion, {"check_run_id": check_id, "name": name}),
        )

    async def list_run_jobs(self, repo: RepoRef, run_id: int) -> list[CiJob]:
        return await self.inner.list_run_jobs(repo, run_id)

    async def job_log_tail(self, repo: RepoRef, job_id: int, limit: int) -> str:
        return await self.inner.job_log_tail(repo, job_id, limit)

    async def rerun_failed_jobs(self, repo: RepoRef, run_id: int) -> None:
        await self._logged(
            "workflow_run",
            f"{repo.full_name} run {run_id}",
            lambda: self.inner.rerun_failed_jobs(repo, run_id),
            lambda _: ("re-run", {"run_id": run_id, "jobs": "failed"}),
        )

    async def list_files(self, repo: RepoRef, ref: str) -> list[str]:
        return await self.inner.list_files(repo, ref)

    async def upsert_issue(
        self, repo: RepoRef, number: int | None, title: str, body: str, marker: str
    ) -> int:
        return await self._logged(
            "issue",
            f"{repo.full_name}#{number or 'new'}",
            lambda: self.inner.upsert_issue(repo, number, title, body, marker),
            lambda found: ("created" if found != number else "updated", {"number": found}),
        )

    async def pin_issue(self, repo: RepoRef, number: int) -> None:
        await self._logged(
            "issue",
            f"{repo.full_name}#{number}",
            lambda: self.inner.pin_issue(repo, number),
            lambda _: ("pinned", {}),
        )

    async def add_labels(self, repo: RepoRef, number: int, labels: list[str]) -> None:
        await self._logged(
            "label",
            f"{repo.full_name}#{number}",
            lambda: self.inner.add_labels(repo, number, labels),
            lambda _: ("added", {"labels": list(labels)}),
        )

    async def create_repository(
        self,
        owner: str,
        name: str,
        *,
        private: bool = True,
        description: str = "",
        template: str | None = None,
    ) -> RepoInfo:
        return await self._logged(
            "repository",
            f"{owner}/{name}",
            lambda: self.inner.create_repository(
                owner, name, private=private, description=description, template=template
            ),
            lambda info: (
                "created" if info.created else "unchanged",
                {"url": info.url, "private": info.private, "template": template},
            ),
        )

    async def protect_branch(
        self,
        repo: RepoRef,
        branch: str,
        *,
        required_reviews: int = 1,
        required_checks: list[str] = (),  # type: ignore[assignment]
        enforce_admins: bool = True,
        rules: BranchRules | None = None,
    ) -> None:
        # What is written: `rules` when given (the repository tools pass the stricter merge
        # of what they ask and what the branch had), else the three plain settings.
        written = rules or BranchRules.asked(
            required_reviews, list(required_checks), enforce_admins
        )
        await self._logged(
            "branch_protection",
            f"{repo.full_name}@{branch}",
            lambda: self.inner.protect_branch(
                repo,
                branch,
                required_reviews=required_reviews,
                required_checks=required_checks,
                enforce_admins=enforce_admins,
                rules=rules,
            ),
            lambda _: (
                "applied",
                {
                    "required_reviews": written.required_reviews,
                    "required_checks": list(written.required_checks),
                    "enforce_admins": written.enforce_admins,
                },
            ),
        )


class AuditedCluster:
    """A `Cluster` whose calls are recorded: namespaces and each applied object. The real
    cluster is built on first use, so a job that never deploys needs no credentials."""

    def __init__(self, make: Callable[[], Any], scope: AuditScope) -> None:
        self._make = make
        self._inner: Any = None
        self.scope = scope

    @property
    def inner(self) -> Any:
        if self._inner is None:
            self._inner = self._make()
        return self._inner

    def ensure_namespace(
        self, name: str, labels: dict[str, str], *, dry_run: bool, **options: Any
    ) -> Any:
        try:
            out = self.inner.ensure_namespace(name, labels, dry_run=dry_run, **options)
        except Exception as exc:
            self.scope.record("namespace", name, f"failed: {exc}"[:300])
            raise
        self.scope.record("namespace", name, "dry run" if dry_run else "applied")
        return out

    def apply(
        self, obj: dict[str, Any], *, dry_run: bool, field_manager: str, force: bool = False
    ) -> Any:
        meta = obj.get("metadata") or {}
        target = f"{meta.get('namespace', '')}/{obj.get('kind')}/{meta.get('name')}"
        try:
            out = self.inner.apply(obj, dry_run=dry_run, field_manager=field_manager, force=force)
        except Exception as exc:
            self.scope.record("deploy", target, f"failed: {exc}"[:300])
            raise
        self.scope.record("deploy", target, "dry run" if dry_run else "applied")
        return out

    # Reads (rollout status, pods) change nothing: not audited.
    def read(self, api_version: str, kind: str, namespace: str, name: str) -> Any:
        return self.inner.read(api_version, kind, namespace, name)

    def pods(self, namespace: str, labels: dict[str, str]) -> Any:
        return self.inner.pods(namespace, labels)
