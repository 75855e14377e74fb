"""`FakeForge`: an in-memory `Forge` that behaves like GitHub's side of the protocol and
records every call, so tests assert on what a user would see (the comment, the commit, the
pull request) and on how many writes it took."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, Field

from app.domain.service import ServiceRequest
from app.domain.todo import MARKER_PREFIX
from app.github.errors import ForgeError
from app.github.forge import (
    CommitInfo,
    Permission,
    PullRequestInfo,
    PullRequestState,
    RepoRef,
    validate_branch,
    validate_path,
)
from app.github.permissions import APP_PERMISSIONS
from tools.spec import ToolContext, ToolSpec

WRITE_METHODS = (
    "create_comment",
    "edit_comment",
    "post_comment",
    "add_reaction",
    "commit",
    "create_pull_request",
    "update_pull_request",
    "create_check_run",
    "add_labels",
    "create_issue",
    "edit_issue",
    "pin_issue",
)


@dataclass
class FakeComment:
    id: int
    number: int
    body: str
    edits: int = 0


@dataclass
class FakePull:
    number: int
    branch: str
    title: str
    body: str
    draft: bool
    head_sha: str
    url: str


@dataclass
class FakeForge:
    """One repository's issues, branches and pull requests, in memory."""

    default: str = "main"
    permissions: dict[str, Permission] = field(default_factory=dict)
    base_files: dict[str, str] = field(default_factory=dict)
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    comments: dict[int, FakeComment] = field(default_factory=dict)
    branches: dict[str, dict[str, str]] = field(default_factory=dict)
    commits: list[dict[str, Any]] = field(default_factory=list)
    pulls: dict[int, FakePull] = field(default_factory=dict)
    reactions: list[tuple[int, str]] = field(default_factory=list)
    check_runs: list[dict[str, Any]] = field(default_factory=list)
    labels: dict[int, list[str]] = field(default_factory=dict)
    fail_on: set[str] = field(default_factory=set)
    granted: dict[str, str] | None = None
    # Files of other repositories by full name (an org's `.github`, an `_extends` target).
    # A repository named `.github` has only these, so the test's config is not also the org's.
    repo_files: dict[str, dict[str, str]] = field(default_factory=dict)
    issues: dict[int, dict[str, Any]] = field(default_factory=dict)
    pinned: list[int] = field(default_factory=list)
    pull_states: dict[int, str] = field(default_factory=dict)  # number → closed / merged
    _next_id: int = 1000

    def _record(self, method: str, **kwargs: Any) -> None:
        self.calls.append((method, kwargs))
        if method in self.fail_on:
            raise ForgeError(f"GitHub answered 502 to {method} (injected)")

    def count(self, method: str) -> int:
        """How many times `method` (a protocol method or a write kind) happened."""
        return sum(1 for name, _ in self.calls if name == method)

    @property
    def writes(self) -> int:
        return sum(1 for name, _ in self.calls if name in WRITE_METHODS)

    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def todo_comments(self) -> list[FakeComment]:
        return [c for c in self.comments.values() if c.body.startswith(MARKER_PREFIX)]

    # -- the Forge protocol ------------------------------------------------------------------

    async def upsert_todo_comment(
        self, repo: RepoRef, number: int, session_id: str, body: str, comment_id: int | None
    ) -> int:
        self._record("upsert_todo_comment", number=number, comment_id=comment_id)
        target = self.comments.get(comment_id) if comment_id is not None else None
        if target is None:
            marker_line = body.splitlines()[0]
            target = next(
                (c for c in self.comments.values() if c.body.startswith(marker_line)), None
            )
        if target is None:
            target = FakeComment(self._new_id(), number, body)
            self.comments[target.id] = target
            self._record("create_comment", id=target.id)
        elif target.body != body:
            target.body = body
            target.edits += 1
            self._record("edit_comment", id=target.id)
        return target.id

    async def post_comment(self, repo: RepoRef, number: int, body: str) -> int:
        self._record("post_comment", number=number, body=body)
        comment = FakeComment(self._new_id(), number, body)
        self.comments[comment.id] = comment
        return comment.id

    async def add_reaction(self, repo: RepoRef, comment_id: int, content: str) -> None:
        self._record("add_reaction", comment_id=comment_id, content=content)
        self.reactions.append((comment_id, content))

    async def list_reactions(self, repo: RepoRef, comment_id: int) -> list[tuple[str, str]]:
        self._record("list_reactions", comment_id=comment_id)
        return [("idp-copilot[bot]", c) for cid, c in self.reactions if cid == comment_id]

    async def default_branch(self, repo: RepoRef) -> str:
        self._record("default_branch")
        return self.default

    async def read_file(self, repo: RepoRef, path: str, ref: str | None = None) -> str | None:
        self._record("read_file", path=path, ref=ref)
        if repo.full_name in self.repo_files or repo.name == ".github":
            return self.repo_files.get(repo.full_name, {}).get(path)
        files = self.branches.get(ref or self.default, self.base_files)
        return files.get(path)

    async def commit_files(
        self, repo: RepoRef, branch: str, files: dict[str, str], message: str
    ) -> CommitInfo:
        self._record("commit_files", branch=branch, paths=sorted(files), message=message)
        validate_branch(branch)
        for path in files:
            validate_path(path)
        tree = dict(self.branches.get(branch, self.base_files))
        before = dict(tree)
        tree.update(files)
        if tree == before and branch in self.branches:
            return CommitInfo(sha=self._head(branch), branch=branch, changed=False)
        self.branches[branch] = tree
        sha = hashlib.sha1(  # git object ids are SHA-1
            f"{branch}{len(self.commits)}{sorted(tree.items())}".encode(), usedforsecurity=False
        )
        self.commits.append(
            {"branch": branch, "sha": sha.hexdigest(), "files": dict(files), "message": message}
        )
        self._record("commit", branch=branch, sha=sha.hexdigest())
        return CommitInfo(sha=sha.hexdigest(), branch=branch, changed=True)

    def _head(self, branch: str) -> str:
        shas = [c["sha"] for c in self.commits if c["branch"] == branch]
        return shas[-1] if shas else "0" * 40

    async def ensure_pull_request(
        self, repo: RepoRef, branch: str, title: str, body: str, draft: bool = False
    ) -> PullRequestInfo:
        self._record("ensure_pull_request", branch=branch, title=title)
        pull = next((p for p in self.pulls.values() if p.branch == branch), None)
        if pull is None:
            number = len(self.pulls) + 100
            url = f"https://github.com/{repo.full_name}/pull/{number}"
            pull = FakePull(number, branch, title, body, draft, self._head(branch), url)
            self.pulls[number] = pull
            self._record("create_pull_request", number=number)
            created = True
        else:
            if (pull.title, pull.body) != (title, body):
                pull.title, pull.body = title, body
                self._record("update_pull_request", number=pull.number)
            pull.head_sha = self._head(branch)
            created = False
        return PullRequestInfo(pull.number, pull.url, branch, pull.head_sha, created)

    async def permission(self, repo: RepoRef, username: str) -> Permission:
        self._record("permission", username=username)
        return self.permissions.get(username, "read")

    async def granted_permissions(self, repo: RepoRef) -> dict[str, str] | None:
        """Everything the App asks for, unless a test set `granted` (not a call of note)."""
        return dict(APP_PERMISSIONS if self.granted is None else self.granted)

    async def create_check_run(
        self,
        repo: RepoRef,
        head_sha: str,
        name: str,
        conclusion: str,
        title: str,
        summary: str,
    ) -> int:
        self._record("create_check_run", head_sha=head_sha, name=name, conclusion=conclusion)
        run = {"id": self._new_id(), "head_sha": head_sha, "name": name}
        run.update(conclusion=conclusion, title=title, summary=summary)
        self.check_runs.append(run)
        return run["id"]

    async def add_labels(self, repo: RepoRef, number: int, labels: list[str]) -> None:
        self._record("add_labels", number=number, labels=list(labels))
        have = self.labels.setdefault(number, [])
        have.extend(label for label in labels if label not in have)

    async def list_files(self, repo: RepoRef, ref: str) -> list[str]:
        self._record("list_files", ref=ref)
        return sorted(self.branches.get(ref, self.base_files))

    async def pull_request_state(self, repo: RepoRef, number: int) -> PullRequestState | None:
        self._record("pull_request_state", number=number)
        if number not in self.pulls:
            return None
        status = self.pull_states.get(number, "open")
        return PullRequestState(
            number=number,
            state="open" if status == "open" else "closed",
            merged=status == "merged",
            draft=False,
            mergeable=True,
            mergeable_state="clean",
            head_sha="",
            base_ref="main",
        )

    async def upsert_issue(
        self, repo: RepoRef, number: int | None, title: str, body: str, marker: str
    ) -> int:
        self._record("upsert_issue", number=number)
        issue = self.issues.get(number) if number is not None else None
        if issue is None or issue["state"] != "open":
            found = [
                n for n, i in self.issues.items() if i["state"] == "open" and marker in i["body"]
            ]
            number = found[0] if found else None
        if number is None:
            number = self._new_id()
            self.issues[number] = {"title": title, "body": body, "state": "open"}
            self._record("create_issue", number=number)
        elif self.issues[number]["body"] != body:
            self.issues[number].update(title=title, body=body)
            self._record("edit_issue", number=number)
        return number

    async def pin_issue(self, repo: RepoRef, number: int) -> None:
        self._record("pin_issue", number=number)
        if number not in self.pinned:
            self.pinned.append(number)


# -- stand-in tools and validator --------------------------------------------------------


class FakeReport:
    """Shaped like tools.validate.ValidationReport: `ok`, `findings`, a markdown table."""

    def __init__(self, findings: list[str]) -> None:
        self.findings = findings
        self.ok = not findings

    def as_markdown_table(self) -> str:
        rows = [f"| ❌ | {f} |" for f in self.findings] or ["| ✅ | all files valid |"]
        return "\n".join(["| result | check |", "| --- | --- |", *rows])


def install_fake_validator(monkeypatch: Any, bad_paths: tuple[str, ...] = ()) -> list[dict]:
    """Make `tools.validate.validate_files` a recorder that fails files under `bad_paths`.
    Returns the list of file sets it was asked to validate."""
    import sys
    import types

    seen: list[dict] = []

    def validate_files(files: dict[str, str]) -> FakeReport:
        seen.append(dict(files))
        return FakeReport([f"{p}: not valid YAML" for p in sorted(files) if p in bad_paths])

    module = types.ModuleType("tools.validate")
    module.validate_files = validate_files  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "tools.validate", module)
    return seen


class RequestArgs(BaseModel):
    request: ServiceRequest


class NameTypeArgs(BaseModel):
    name: str
    type: str = "api"


class FlatArgs(BaseModel):
    name: str
    language: str
    port: int = 8080


class ServiceNameArgs(BaseModel):
    service_name: str
    team: str = "platform"


class QueryArgs(BaseModel):
    query: str


class NamespaceArgs(BaseModel):
    name: str
    environment: str = "staging"
    team: str | None = None


class DeployArgs(BaseModel):
    service: str
    namespace: str | None = None


class Generated(BaseModel):
    files: dict[str, str] = Field(default_factory=dict)
    summary: str


Hook = Callable[[str, BaseModel, ToolContext], Awaitable[None]]


class ServiceTools:
    """Stand-ins for the create-service tools with the real names, each recording its calls.
    `hooks[name]` runs inside the tool first (to block, crash or fail it on purpose)."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.order: list[str] = []
        self.hooks: dict[str, Hook] = {}

    def _tool(self, name: str, model: type[BaseModel], make: Callable[[Any], Generated], **kw):
        async def func(args: BaseModel, ctx: ToolContext) -> Generated:
            self.calls[name] += 1
            self.order.append(name)
            if name in self.hooks:
                await self.hooks[name](name, args, ctx)
            return make(args)

        return ToolSpec(name, f"stand-in for {name}", model, Generated, func, **kw)

    def specs(self, with_kb: bool = True) -> list[ToolSpec]:
        from tools.builtin.publish import OPEN_PULL_REQUEST

        def manifests(a: RequestArgs) -> Generated:
            name = a.request.name
            return Generated(
                files={f"deploy/{name}/deployment.yaml": f"kind: Deployment\nname: {name}\n"},
                summary=f"Kubernetes manifests for {name}",
            )

        specs = [
            self._tool(
                "validate_project_name_and_type",
                NameTypeArgs,
                lambda a: Generated(summary=f"{a.name} is a valid {a.type} name"),
                aliases=["validate-project"],
            ),
            self._tool("generate_k8s_manifests", RequestArgs, manifests),
            self._tool(
                "setup_cicd_pipeline",
                FlatArgs,
                lambda a: Generated(
                    files={".github/workflows/ci.yml": f"name: ci\n# {a.language}\n"},
                    summary=f"CI workflow for {a.language}",
                ),
            ),
            self._tool(
                "setup_observability",
                ServiceNameArgs,
                lambda a: Generated(
                    files={f"observability/{a.service_name}.yaml": "alerts: []\n"},
                    summary="Alerts and dashboard",
                ),
            ),
            self._tool(
                "generate_documentation",
                FlatArgs,
                lambda a: Generated(files={"docs/README.md": f"# {a.name}\n"}, summary="Docs"),
            ),
            OPEN_PULL_REQUEST,
            self._tool(
                "create_k8s_namespace",
                NamespaceArgs,
                lambda a: Generated(summary=f"namespace {a.name}-{a.environment} created"),
                side_effect="external",
                requires_approval=True,
            ),
            self._tool(
                "deploy_to_staging",
                DeployArgs,
                lambda a: Generated(summary=f"deployed {a.service}"),
                side_effect="external",
                requires_approval=True,
            ),
        ]
        if with_kb:
            specs.insert(
                1,
                self._tool(
                    "search_knowledge_base_for_guidelines",
                    QueryArgs,
                    lambda a: Generated(summary="3 guidelines found"),
                ),
            )
        return specs
