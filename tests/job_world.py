"""One repository on a fake GitHub, as the worker's jobs see it: `GitHubForge` (the real
one) against `FakeGitHub` on respx, the real job entry point `run_parsed`, stand-in
generators (the real ones plug in through the registry), the real knowledge, cluster and
publisher tools, and a `FakeCluster` that records what would reach Kubernetes.

Tests drive it the way GitHub does: `world.comment("/idp …", sender=…)` routes a real
`issue_comment` payload and runs its job; they read what a user would see on GitHub.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from typing import Any

import redis
from pydantic import BaseModel, Field

from app.config import Settings
from app.domain.service import ServiceRequest
from app.domain.session import Session, session_id_for
from app.domain.todo import MARKER_PREFIX
from app.grammar.commands import Command, Trigger
from app.state import SessionStore
from app.webhooks import Ignored, route
from jobs.tasks import run_parsed
from tests import github_api as gh
from tests import payloads
from tests.kube_standin import FakeCluster
from tools.registry import ToolRegistry
from tools.spec import ToolContext, ToolError, ToolSpec

ISSUE = 7
SESSION = session_id_for(payloads.REPO, ISSUE)
# Who is who on acme/payments: GitHub's (permission, role_name) pairs.
PEOPLE = {
    "alice": ("write", "write"),
    "mia": ("write", "maintain"),
    "root": ("admin", "admin"),
    "bob": ("read", "read"),
}


class RequestArgs(BaseModel):
    request: ServiceRequest
    base_path: str = "services/{name}"


class NameTypeArgs(BaseModel):
    name: str
    type: str = "api"


class Generated(BaseModel):
    files: dict[str, str] = Field(default_factory=dict)
    summary: str


def _deployment(req: ServiceRequest, note: str) -> str:
    return (
        "apiVersion: apps/v1\nkind: Deployment\n"
        f"metadata:\n  name: {req.name}\n  labels:\n    team: {req.team}\n"
        f"spec:\n  template:\n    metadata:\n      annotations:\n        note: '{note}'\n"
    )


def _service(req: ServiceRequest) -> str:
    return (
        f"apiVersion: v1\nkind: Service\nmetadata:\n  name: {req.name}\n"
        f"spec:\n  ports:\n    - port: {req.port}\n"
    )


class Generators:
    """Stand-ins for the generator tools. `note` changes what the manifests say (a re-plan
    that changes a file); `failures[tool]` makes the next N calls of `tool` fail."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.note = "v1"
        self.failures: Counter[str] = Counter()

    def _tool(self, name: str, model: type[BaseModel], make: Any) -> ToolSpec:
        def func(args: Any, ctx: ToolContext) -> Generated:
            self.calls[name] += 1
            if self.failures[name] > 0:
                self.failures[name] -= 1
                raise ToolError(f"{name} could not reach the template store (injected)")
            return make(args)

        return ToolSpec(name, f"stand-in for {name}", model, Generated, func)

    def specs(self) -> list[ToolSpec]:
        def folder(a: RequestArgs) -> str:
            return a.base_path.format(name=a.request.name)

        return [
            self._tool(
                "validate_project_name_and_type",
                NameTypeArgs,
                lambda a: Generated(summary=f"`{a.name}` is a valid {a.type} name"),
            ),
            self._tool(
                "generate_k8s_manifests",
                RequestArgs,
                lambda a: Generated(
                    files={
                        f"{folder(a)}/k8s/base/deployment.yaml": _deployment(a.request, self.note),
                        f"{folder(a)}/k8s/base/service.yaml": _service(a.request),
                    },
                    summary=f"Deployment and Service for {a.request.name}",
                ),
            ),
            self._tool(
                "setup_cicd_pipeline",
                RequestArgs,
                lambda a: Generated(
                    files={f".github/workflows/{a.request.name}.yml": "name: ci\non: push\n"},
                    summary=f"CI workflow for {a.request.language}",
                ),
            ),
            self._tool(
                "setup_observability",
                RequestArgs,
                lambda a: Generated(
                    files={f"{folder(a)}/observability/alerts.yaml": "groups: []\n"},
                    summary="Alerts",
                ),
            ),
            self._tool(
                "generate_documentation",
                RequestArgs,
                lambda a: Generated(
                    files={f"{folder(a)}/README.md": f"# {a.request.name}\n"}, summary="Docs"
                ),
            ),
        ]


def comment_trigger(delivery: str, number: int, verb: str, pr: bool = False) -> Trigger:
    """Alice's one-command comment on acme/web#`number` (a pull request when `pr`)."""
    return Trigger(
        delivery_id=delivery,
        event="issue_comment",
        repo="acme/web",
        number=number,
        sender="alice",
        is_pull_request=pr,
        commands=[Command(verb=verb)],
    )


def registry(generators: Generators) -> ToolRegistry:
    from tools.builtin import cluster, knowledge, publish

    return ToolRegistry([*generators.specs(), *knowledge.TOOLS, *cluster.TOOLS, *publish.TOOLS])


class World:
    """acme/payments on a FakeGitHub, issue #7, the people of `PEOPLE`."""

    def __init__(
        self,
        settings: Settings,
        connection: redis.Redis,
        router: Any,
        monkeypatch: Any,
        *,
        real_tools: bool = False,
    ) -> None:
        """`real_tools`: the installed tools and validators instead of the stand-ins."""
        from tests.fakes import install_fake_validator
        from tools.registry import default_registry

        self.settings = gh.as_app(settings)
        self.connection = connection
        self.github = gh.FakeGitHub(router)
        self.github.permissions.update(PEOPLE)
        self.generators = Generators()
        self.cluster = FakeCluster()
        if real_tools:
            self.registry = default_registry(self.settings)
        else:
            self.registry = registry(self.generators)
            self.validated = install_fake_validator(monkeypatch)
        self.store = SessionStore(connection, self.settings)

    # -- acting as GitHub -------------------------------------------------------------------

    def config(self, text: str) -> None:
        """Push `.github/idp-copilot.yml` to the default branch."""
        self.github.push("main", {".github/idp-copilot.yml": text}, "Configure IDP Copilot")

    def comment(
        self, body: str, sender: str = "alice", number: int = ISSUE, on_pr: bool = False, **kw
    ) -> dict[str, str]:
        """A comment as GitHub delivers it, routed and run by the job; the job's result."""
        payload = payloads.issue_comment(body, sender=sender, number=number, on_pull_request=on_pr)
        # GitHub holds the comment it announces: the App reacts on it and reads it back.
        author = gh.user(sender, id=77, at=self.github.at)
        self.github.add_comment(number, body, author, comment_id=payload["comment"]["id"])
        return self.deliver("issue_comment", payload, **kw)

    def deliver(self, event: str, payload: dict, **kw: Any) -> dict[str, str]:
        routed = route(event, str(uuid.uuid4()), payload)
        assert not isinstance(routed, Ignored), routed.reason
        return self.run(routed, **kw)

    def run(self, trigger: Trigger, chat_model: Any = None) -> dict[str, str]:
        return asyncio.run(
            run_parsed(
                trigger,
                self.settings,
                self.connection,
                registry=self.registry,
                cluster=self.cluster,
                chat_model=chat_model,
            )
        )

    # -- what a user sees -------------------------------------------------------------------

    @property
    def session(self) -> Session:
        session = self.store.get(SESSION)
        assert session is not None
        return session

    def todo_comments(self) -> list[dict[str, Any]]:
        return [c for c in self.github.comments.values() if c["body"].startswith(MARKER_PREFIX)]

    def todo(self) -> str:
        (comment,) = self.todo_comments()
        return comment["body"]

    def replies(self, number: int = ISSUE) -> list[str]:
        """The App's plain comments on issue or PR `number` (the todo comment aside)."""
        return [
            c["body"]
            for _, c in sorted(self.github.comments.items())
            if c["number"] == number
            and not c["body"].startswith(MARKER_PREFIX)
            and (c["author"] is None or c["author"]["login"] == gh.APP_BOT)
        ]

    def reactions(self) -> list[str]:
        return [content for _, content in self.github.reactions]

    def pull(self) -> dict[str, Any]:
        (pull,) = self.github.pulls.values()
        return pull

    def pr_number(self) -> int:
        (number,) = self.github.pulls
        return number

    def commits_on(self, branch: str) -> list[str]:
        """Commits on `branch` that are not on main, newest first."""
        base = self.github._ancestors(self.github.refs["main"])
        sha, out = self.github.refs[branch], []
        while sha not in base:
            out.append(sha)
            sha = self.github.commits[sha]["parents"][0]
        return out

    def writes(self, kind: str | None = None) -> list[tuple[str, str]]:
        return [(m, p) for m, p in self.github.writes() if kind is None or kind in p]
