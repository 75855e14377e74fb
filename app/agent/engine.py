"""The agent engine's seams: one step runner, and the strategies that decide its steps.

`Agent` (app/agent/loop.py) is the step runner: it executes a tool call under the loop's
rules, checkpoints at a step's end (cancel flag, lock, save, todo comment), notes and emits.
A `Strategy` decides what runs: `RulesStrategy` (loop.py) plans with the rules planner and
runs the todo's ready tasks; `ModelStrategy` (model_loop.py) lets a language model plan and
pick the calls, and finishes what it leaves (backstop.py). Strategies see the runner only
through `Steps`, so neither imports the other or the runner. Every model turn, here and in
the review agent, goes through one path that redacts secrets (app/agent/model_turn.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from app.agent.guard import LoopGuard
from app.config import Settings
from app.domain.todo import Task
from app.github.forge import RepoRef
from app.state import Session
from app.telemetry import AgentSteps
from tools.registry import ToolRegistry, ToolResult
from tools.spec import ToolSpec

EventSink = Callable[[str, dict[str, Any]], Any]


@dataclass
class RunState:
    """One run of one session: where it publishes, its guard, and the lock it renews."""

    session: Session
    repo: RepoRef
    guard: LoopGuard
    lock: Any = None
    steps: AgentSteps = field(default_factory=AgentSteps)  # step spans and durations


class Steps(Protocol):
    """The step runner, as a strategy sees it."""

    settings: Settings
    registry: ToolRegistry
    allowed: set[str] | None  # None: every tool of the registry

    async def execute(
        self, run: RunState, name: str, args: dict[str, Any], task_id: str | None = None
    ) -> ToolResult: ...
    async def run_task(self, run: RunState, task: Task) -> None: ...
    async def run_ready(self, run: RunState) -> None: ...
    async def boundary(
        self, run: RunState, check_cancel: bool = True, sync_todo: bool = True
    ) -> None: ...
    def apply_result(self, s: Session, result: ToolResult, task: Task | None) -> None: ...
    def gate_approvals(self, s: Session) -> None: ...
    def set_task(self, task: Task, status: str, detail: str | None) -> None: ...
    def note(self, s: Session, note: str) -> None: ...
    def emit(self, kind: str, data: dict[str, Any]) -> None: ...
    def spec_or_none(self, name: str | None) -> ToolSpec | None: ...
    def needs_approval(self, spec: ToolSpec) -> bool: ...
    def is_gated(self, tool: str | None) -> bool: ...


class Strategy(Protocol):
    """How a run decides its steps. Raises the loop's typed outcomes (outcomes.py)."""

    async def drive(self, steps: Steps, run: RunState) -> None: ...
