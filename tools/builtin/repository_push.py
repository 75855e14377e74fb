"""The steps after `create_repository` for `/idp create-repo`: `push_service_files` (the
service's generated files in one commit on the new repository's default branch) and
`protect_repository_branch` (that branch protected at least as the repository's config asks).

Both keep to the repository tools' ground: they act only on a repository this session created
(`Session.created_repos`), in the account of the repository the request came from, so the
App's installation there is the one that acts. The push waits for `/idp apply` like the
creation: its digest covers every file it pushes, so the files a maintainer approved are the
files that land.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, field_validator

from app.domain.approval import ApprovalScope
from app.domain.service import NAME_RULE, checked_name
from app.github.errors import ForgeError
from app.github.forge import RepoRef
from app.github.protection_settings import BranchProtectionSettings
from tools.builtin.repository import (
    _forge,
    _is_template,
    protect_at_least,
    protection_sentence,
    required_checks_for,
)
from tools.spec import ToolContext, ToolError, ToolSpec


def _full_name(value: str) -> str:
    value = value.strip()
    if not _is_template(value):  # the same OWNER/REPO shape as a template's
        raise ValueError("a repository is named OWNER/NAME, e.g. acme/billing-api")
    return value


class PushServiceFilesInput(BaseModel):
    """Where the service's files go."""

    repository: str = Field(description="The repository this session created, OWNER/NAME")
    service: str = Field(description="The service whose generated files are pushed")

    @field_validator("repository")
    @classmethod
    def _repository(cls, value: str) -> str:
        return _full_name(value)

    @field_validator("service")
    @classmethod
    def _service(cls, value: str) -> str:
        return checked_name(value, NAME_RULE)


class PushServiceFilesOutput(BaseModel):
    full_name: str
    branch: str
    head_sha: str
    changed: bool = Field(description="False when the branch already held exactly these files")
    pushed_paths: list[str]
    summary: str


class ProtectRepositoryInput(BaseModel):
    """Which repository's default branch to protect, and how (the config fixes `protection`)."""

    repository: str = Field(description="The repository this session created, OWNER/NAME")
    service: str | None = Field(
        None, description="The service whose CI jobs become the required checks by default"
    )
    protection: BranchProtectionSettings = Field(
        default_factory=BranchProtectionSettings,
        description="The least protection; the repository's config sets it",
    )

    @field_validator("repository")
    @classmethod
    def _repository(cls, value: str) -> str:
        return _full_name(value)


class ProtectRepositoryOutput(BaseModel):
    full_name: str
    protected_branch: str
    required_reviews: int
    required_checks: list[str]
    enforce_admins: bool
    summary: str


def created_here(ctx: ToolContext, full_name: str) -> RepoRef:
    """The repository as a `RepoRef` when this session created it in the account of the
    repository the request came from; else a ToolError that says why it is left alone."""
    owner, _, name = full_name.partition("/")
    mine = ctx.session.created_repos if ctx.session is not None else []
    if ctx.repo is None or owner.lower() != ctx.repo.owner.lower():
        home = ctx.repo.owner if ctx.repo is not None else "the request's account"
        raise ToolError(
            f"{full_name} is outside {home}: the App pushes to and protects only repositories "
            f"it created in {home} for this request."
        )
    if full_name.lower() not in mine:
        raise ToolError(
            f"The App did not create {full_name} for this request, so it leaves it alone: it "
            "pushes to and protects only repositories `create_repository` made here."
        )
    return RepoRef(owner, name, ctx.repo.installation_id)


def push_scope(
    args: PushServiceFilesInput, files: dict[str, str], repo: RepoRef | None, settings: Any
) -> ApprovalScope:
    """What `/idp apply` approves for a push: the repository and every file pushed."""
    return ApprovalScope(f"repository `{args.repository}`", dict(files))


async def push_service_files(
    args: PushServiceFilesInput, ctx: ToolContext
) -> PushServiceFilesOutput:
    """Commit the session's files (the approved ones) on the new repository's default
    branch, in one commit; nothing new when they are there already."""
    ref = created_here(ctx, args.repository)
    request = ctx.session.request if ctx.session is not None else None
    if request is None or request.name != args.service:
        raise ToolError(
            f"This session holds no service `{args.service}`: the files pushed are the ones "
            f"`/idp create-service {args.service}` generated here."
        )
    if not ctx.files:
        raise ToolError(f"There are no generated files of `{args.service}` to push yet.")
    where = f" in {ctx.session.repo}#{ctx.session.number}" if ctx.session is not None else ""
    message = f"Add service {args.service}\n\nGenerated by IDP Copilot, requested{where}."
    forge = _forge(ctx)
    try:
        branch = await forge.default_branch(ref)
        commit = await forge.commit_files(ref, branch, dict(ctx.files), message)
    except ForgeError as exc:
        raise ToolError(
            f"Pushing the files of `{args.service}` to {args.repository} failed: {exc} "
            "`/idp retry` pushes them again."
        ) from None
    count = len(ctx.files)
    said = f"commit {commit.sha[:7]}" if commit.changed else "they were there already"
    return PushServiceFilesOutput(
        full_name=args.repository,
        branch=branch,
        head_sha=commit.sha,
        changed=commit.changed,
        pushed_paths=sorted(ctx.files),
        summary=f"Pushed {count} files of `{args.service}` to {args.repository} ({branch}, {said})",
    )


async def protect_repository_branch(
    args: ProtectRepositoryInput, ctx: ToolContext
) -> ProtectRepositoryOutput:
    """Protect the new repository's default branch at least as the config asks; each rule
    the branch already had that is stricter is kept."""
    ref = created_here(ctx, args.repository)
    request = ctx.session.request if ctx.session is not None else None
    checks: list[str] = []
    if args.service and request is not None and request.name == args.service:
        checks = required_checks_for(request)
    asked = args.protection.rules(checks)
    forge = _forge(ctx)
    try:
        branch = await forge.default_branch(ref)
        rules = await protect_at_least(ctx, ref, branch, asked)
    except ForgeError as exc:
        raise ToolError(
            f"Protecting the default branch of {args.repository} failed: {exc} `/idp retry` "
            "tries again."
        ) from None
    summary = protection_sentence(branch, rules, asked)
    if args.protection.required_checks is None and rules.required_checks:
        # Required checks that never report block every merge: GitHub waits for them.
        summary += " The checks report for pull requests that touch the service's files."
    return ProtectRepositoryOutput(
        full_name=args.repository,
        protected_branch=branch,
        required_reviews=rules.required_reviews or 0,
        required_checks=list(rules.required_checks),
        enforce_admins=rules.enforce_admins,
        summary=summary,
    )


TOOLS = [
    ToolSpec(
        name="push_service_files",
        description=(
            "Push every generated file of the service, in one commit, to the default branch "
            "of a repository create_repository made for this request. Waits for approval "
            "with /idp apply; the approval covers the files."
        ),
        input_model=PushServiceFilesInput,
        output_model=PushServiceFilesOutput,
        func=push_service_files,
        timeout=120.0,
        aliases=["push_files_to_repository"],
        side_effect="repo",
        requires_approval=True,
        approval_scope=push_scope,
    ),
    ToolSpec(
        name="protect_repository_branch",
        description=(
            "Protect the default branch of a repository create_repository made for this "
            "request, at least as the repository's config asks (branch_protection); stricter "
            "rules the branch already has are kept."
        ),
        input_model=ProtectRepositoryInput,
        output_model=ProtectRepositoryOutput,
        func=protect_repository_branch,
        aliases=["protect_created_repository"],
        side_effect="repo",
    ),
]
