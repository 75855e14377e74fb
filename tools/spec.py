"""`ToolSpec`: a typed function plus what the agent needs to know about it.

Schemas are derived from the pydantic models of the arguments and the result, never written
twice. Runtime context (session, forge, settings) comes in a `ToolContext`, not the schema.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel

if TYPE_CHECKING:
    from app.config import Settings
    from app.domain.approval import ApprovalScope
    from app.domain.plan import ClusterPlan
    from app.domain.session import Session
    from app.github.forge import Forge, RepoRef
    from tools.cluster import Cluster

SideEffect = Literal["none", "repo", "external"]


class ToolError(Exception):
    """The tool could not do its job; the message is shown to the model and in the todo."""


@dataclass
class ToolContext:
    """What a tool may touch besides its arguments. `files` is the session's workspace of
    generated files (path → text) that the publisher commits in one go."""

    settings: Settings
    session: Session | None = None
    forge: Forge | None = None
    repo: RepoRef | None = None
    cluster: Cluster | None = None
    approved: bool = False
    files: dict[str, str] = field(default_factory=dict)
    idempotency_key: str = ""


ToolFunc = Callable[[Any, ToolContext], "BaseModel | Awaitable[BaseModel]"]
# (validated arguments, the session's workspace, the session's repository, the operator's
# settings) → what a gated call acts on; its approval digest covers those files
# (app/domain/approval.py).
ScopeFunc = Callable[[Any, dict[str, str], "RepoRef | None", Any], "ApprovalScope"]
# (validated arguments, a context that is never approved) → the step's server-side dry-run
# plan, shown before approval; its digest joins the approval digest (app/domain/plan.py).
PlanFunc = Callable[[Any, ToolContext], "Awaitable[ClusterPlan]"]


@dataclass
class ToolSpec:
    """The prototype's ToolSpec, typed: `func(args: input_model, ctx) -> output_model`."""

    name: str
    description: str
    input_model: type[BaseModel]
    output_model: type[BaseModel]
    func: ToolFunc
    is_async: bool | None = None
    timeout: float | None = 60.0
    aliases: list[str] = field(default_factory=list)
    capabilities_provider: Callable[[], dict[str, Any]] | None = None
    side_effect: SideEffect = "none"
    requires_approval: bool = False
    approval_scope: ScopeFunc | None = None
    plan: PlanFunc | None = None

    def __post_init__(self) -> None:
        if self.is_async is None:
            self.is_async = inspect.iscoroutinefunction(self.func)

    @property
    def input_schema(self) -> dict[str, Any]:
        return self.input_model.model_json_schema()

    @property
    def output_schema(self) -> dict[str, Any]:
        return self.output_model.model_json_schema()


def to_openai_tool(spec: ToolSpec) -> dict[str, Any]:
    """The Chat Completions `tools` entry for a spec."""
    return {
        "type": "function",
        "function": {
            "name": spec.name,
            "description": spec.description,
            "parameters": spec.input_schema,
        },
    }


def to_anthropic_tool(spec: ToolSpec) -> dict[str, Any]:
    """The Messages API `tools` entry for a spec."""
    return {
        "name": spec.name,
        "description": spec.description,
        "input_schema": spec.input_schema,
    }
