"""Repository tools: `create_repository` and `create_git_repository_with_branch_protection`.

Both wait for approval (`/idp apply`) and act through the Forge: on GitHub a repository of
an organization the App is installed on, empty or generated from a template repository;
locally a git repository under the LocalForge root.

They stay on their own ground: they touch only repositories they created for this session
(recorded on the session), so a retry reuses the session's own repository and any other
existing repository is refused. Protection only ever gets stricter: the branch's current
protection is read first, and each of its rules that is stricter than the one asked for is
kept (more reviews, more checks, admins bound, linear history, push restrictions…).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, field_validator

from app.domain.approval import ApprovalScope
from app.domain.service import NAME_RULE, ServiceRequest, checked_name
from app.github.errors import ForgeError
from app.github.forge import Forge, RepoInfo, RepoRef, is_login
from app.github.protection import BranchRules
from app.untrusted import linear
from tools.render_workflow import workflow
from tools.spec import ToolContext, ToolError, ToolSpec

# GitHub repository names (owners: app.github.forge.is_login); RE2, whole value only.
_REPO_PART_RE = linear(r"^[A-Za-z0-9._-]{1,100}$")


def _is_template(value: str) -> bool:
    owner, slash, name = value.partition("/")
    return bool(slash) and is_login(owner) and _REPO_PART_RE.fullmatch(name) is not None


DESCRIPTION_LIMIT = 350  # GitHub cuts longer repository descriptions


class CreateRepositoryInput(BaseModel):
    """The repository to create."""

    name: str = Field(description="Repository name, a DNS-1123 name like the service's")
    owner: str | None = Field(
        None,
        description="Organization that owns it; default: the owner of the repository this "
        "request came from",
    )
    private: bool = Field(True, description="Private (default) or public")
    description: str = Field("", description="One line shown on the repository's page")
    template: str | None = Field(
        None,
        description="Template repository OWNER/REPO to generate it from; empty: a new "
        "repository with only a README",
    )

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return checked_name(value, NAME_RULE.replace("service", "repository"))

    @field_validator("owner")
    @classmethod
    def _owner(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip().lstrip("@")
        if not is_login(value):
            raise ValueError(
                "an owner is a GitHub organization name: letters, digits and single hyphens, "
                "at most 39 characters"
            )
        return value

    @field_validator("template")
    @classmethod
    def _template(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip().removesuffix(".git")
        if not _is_template(value):
            raise ValueError("a template is named OWNER/REPO, e.g. acme/service-template")
        return value

    @field_validator("description")
    @classmethod
    def _description(cls, value: str) -> str:
        return " ".join(value.split())[:DESCRIPTION_LIMIT]


class ProtectedRepositoryInput(CreateRepositoryInput):
    """The repository to create, and the rules for its default branch."""

    required_reviews: int = Field(
        1, ge=1, le=6, description="Approving reviews a pull request needs before it merges"
    )
    required_checks: list[str] | None = Field(
        None,
        max_length=50,
        description="Status checks that must pass before merging; default: the jobs of the "
        "service's generated CI workflow that run on pull requests",
    )
    enforce_admins: bool = Field(True, description="Hold administrators to the rules too")

    @field_validator("required_checks")
    @classmethod
    def _checks(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        names = [" ".join(v.split()) for v in value]
        if any(not n or len(n) > 255 for n in names):
            raise ValueError("each check name is 1 to 255 characters (a job's name, e.g. Test)")
        return list(dict.fromkeys(names))


class RepositoryOutput(BaseModel):
    full_name: str
    url: str
    default_branch: str
    private: bool
    created: bool = Field(description="False when the repository existed and was reused")
    template: str | None = None
    summary: str


class ProtectedRepositoryOutput(RepositoryOutput):
    protected_branch: str
    required_reviews: int
    required_checks: list[str]
    enforce_admins: bool


def required_checks_for(req: ServiceRequest) -> list[str]:
    """The check names the service's generated workflow reports on a pull request: the names
    of its jobs. Jobs with an `if` (the image push, on pushes only) are left out: skipped on
    pull requests, they would count as passed and guard nothing."""
    jobs = workflow(req)["jobs"]
    return [job.get("name", job_id) for job_id, job in jobs.items() if "if" not in job]


def _forge(ctx: ToolContext) -> Forge:
    if ctx.forge is None:
        raise ToolError("Repository tools run inside a session, with a forge to act on.")
    return ctx.forge


def _owner(args: CreateRepositoryInput, ctx: ToolContext) -> str:
    if args.owner:
        return args.owner
    if ctx.repo is not None:
        return ctx.repo.owner
    raise ToolError("Say which organization owns the new repository: pass `owner`.")


async def _create(args: CreateRepositoryInput, ctx: ToolContext) -> RepoInfo:
    """Create the repository and record it on the session; an existing repository is
    reused only when this session created it."""
    owner = _owner(args, ctx)
    try:
        info = await _forge(ctx).create_repository(
            owner,
            args.name,
            private=args.private,
            description=args.description,
            template=args.template,
        )
    except ForgeError as exc:
        raise ToolError(f"Creating the repository {owner}/{args.name} failed: {exc}") from None
    mine = ctx.session.created_repos if ctx.session is not None else []
    key = info.full_name.lower()
    if info.created:
        if ctx.session is not None and key not in mine:
            mine.append(key)
    elif key not in mine:
        raise ToolError(
            f"{info.full_name} already exists and the App did not create it for this request, "
            "so it leaves it alone: the repository tools touch only repositories they created "
            "here. Choose another name, or ask an administrator of "
            f"{info.owner} to set that repository up."
        )
    return info


async def protect_at_least(
    ctx: ToolContext, repo: RepoRef, branch: str, asked: BranchRules
) -> BranchRules:
    """Protect `branch` with `asked`, keeping each rule of its current protection that is
    stricter; returns what was written. Raises ForgeError."""
    current = await _forge(ctx).get_branch_protection(repo, branch)
    rules = asked.stricter(current)
    await _forge(ctx).protect_branch(repo, branch, rules=rules)
    return rules


def protection_sentence(branch: str, rules: BranchRules, asked: BranchRules) -> str:
    """What the protection written on `branch` asks of a change, for the todo."""
    reviews = rules.required_reviews or 0
    said = f"{reviews} approving review{'s' if reviews != 1 else ''}"
    if rules.required_checks:
        said += (
            f" and the checks {', '.join(rules.required_checks)} passing on an up-to-date branch"
        )
    who = ", administrators included" if rules.enforce_admins else ""
    text = f"Branch {branch} is protected: changes need a pull request with {said}{who}."
    if rules != asked:
        text += " Where the branch's protection was already stricter, it was kept."
    return text


def repository_scope(
    args: CreateRepositoryInput, files: dict[str, str], repo: RepoRef | None, settings: Any
) -> ApprovalScope:
    """What `/idp apply` approves for a repository tool: the repository it creates."""
    owner = args.owner or (repo.owner if repo is not None else "?")
    return ApprovalScope(f"repository `{owner}/{args.name}`")


def _repository_summary(info: RepoInfo, args: CreateRepositoryInput) -> str:
    visibility = "private" if info.private else "public"
    if info.created:
        source = f" from template {args.template}" if args.template else ""
        return f"Created the {visibility} repository {info.full_name}{source}: {info.url}"
    text = f"The repository {info.full_name} already existed and was reused as it is"
    if info.private != args.private:
        text += f" (it is {visibility}, not {'private' if args.private else 'public'} as asked)"
    return f"{text}: {info.url}"


def _output(info: RepoInfo, args: CreateRepositoryInput) -> dict:
    return {
        "full_name": info.full_name,
        "url": info.url,
        "default_branch": info.default_branch,
        "private": info.private,
        "created": info.created,
        "template": args.template,
        "summary": _repository_summary(info, args),
    }


async def create_repository(args: CreateRepositoryInput, ctx: ToolContext) -> RepositoryOutput:
    """Create the repository, or reuse the one of that name."""
    info = await _create(args, ctx)
    return RepositoryOutput(**_output(info, args))


async def create_git_repository_with_branch_protection(
    args: ProtectedRepositoryInput, ctx: ToolContext
) -> ProtectedRepositoryOutput:
    """Create (or reuse) the repository, then protect its default branch: pull requests
    with reviews, the CI workflow's checks passing on an up-to-date branch."""
    info = await _create(args, ctx)
    if args.required_checks is not None:
        checks = args.required_checks
    else:
        request = ctx.session.request if ctx.session and ctx.session.request else None
        checks = required_checks_for(request or ServiceRequest(name=args.name))
    branch = info.default_branch
    asked = BranchRules.asked(args.required_reviews, checks, args.enforce_admins)
    try:
        rules = await protect_at_least(ctx, info.ref, branch, asked)
    except ForgeError as exc:
        made = "was created" if info.created else "exists"
        raise ToolError(
            f"The repository {info.full_name} {made} ({info.url}), but protecting its branch "
            f"{branch} failed: {exc} `/idp retry` reuses the repository and tries again."
        ) from None
    reviews = rules.required_reviews or 0
    checks = list(rules.required_checks)
    summary = f"{_repository_summary(info, args)}. {protection_sentence(branch, rules, asked)}"
    if args.required_checks is None and checks:
        # Required checks that never report block every merge: GitHub waits for them.
        summary += (
            " The checks report once the service's CI workflow is in the repository, and only "
            "for pull requests that touch the paths the workflow watches."
        )
    return ProtectedRepositoryOutput(
        **(_output(info, args) | {"summary": summary}),
        protected_branch=branch,
        required_reviews=reviews,
        required_checks=checks,
        enforce_admins=rules.enforce_admins,
    )


TOOLS = [
    ToolSpec(
        name="create_repository",
        description=(
            "Create a repository in the organization (default: this repository's owner), empty "
            "with a README or generated from a template repository OWNER/REPO. An existing "
            "repository of that name is reused. Waits for approval with /idp apply."
        ),
        input_model=CreateRepositoryInput,
        output_model=RepositoryOutput,
        func=create_repository,
        aliases=["create_repo", "new_repository"],
        side_effect="repo",
        requires_approval=True,
        approval_scope=repository_scope,
    ),
    ToolSpec(
        name="create_git_repository_with_branch_protection",
        description=(
            "Create (or reuse) a repository like create_repository, then protect its default "
            "branch: pull requests with required reviews (stale ones dismissed) and the "
            "service's CI checks passing, administrators included. Waits for approval with "
            "/idp apply."
        ),
        input_model=ProtectedRepositoryInput,
        output_model=ProtectedRepositoryOutput,
        func=create_git_repository_with_branch_protection,
        timeout=120.0,
        aliases=["create_protected_repository", "create_repository_with_branch_protection"],
        side_effect="repo",
        requires_approval=True,
        approval_scope=repository_scope,
    ),
]
