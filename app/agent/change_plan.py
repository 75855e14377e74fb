"""The plan a maintainer approves: each waiting cluster step run as a server-side dry run
(its tool's `plan`), shown in the todo, bound into the step's approval digest, and published
in full as a check run on the pull request's head.

The App makes the plan, not the model: the rules path and the model path end their run the
same way (`plan_waiting`), and `/idp apply` checks the plan again before anything is applied
(app/agent/approval.py).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import ValidationError

from app.agent.approval import scope_of, show
from app.config import Settings
from app.domain.plan import ClusterPlan
from app.domain.plan_render import CHECK_NAME, Step, full_plan, needs_check_run, summary_line
from app.domain.session import Session
from app.github.errors import ForgeError
from app.github.forge import Forge, RepoRef
from app.locks.namespace import LOCK_NOTE, NamespaceLocks
from app.redaction import redact
from tools.spec import ToolContext, ToolError, ToolSpec

log = logging.getLogger(__name__)

PLAN_TIMEOUT = 120.0  # seconds for one step's dry runs: a slow API server must not hold the run

Planner = Callable[[dict[str, str]], Awaitable[ClusterPlan]]


async def make_plan(
    spec: ToolSpec,
    args: dict[str, Any],
    workspace: dict[str, str],
    *,
    settings: Settings,
    session: Session,
    forge: Forge | None,
    repo: RepoRef | None,
    cluster: Any,
) -> ClusterPlan:
    """The dry-run plan of `spec` called with `args` on `workspace`. A step that cannot be
    planned (no manifests yet, arguments it refuses) gets a plan that says why, with no
    objects: its digest then covers that, and a later plan with objects needs approval."""
    assert spec.plan is not None
    ctx = ToolContext(
        settings=settings,
        session=session,
        forge=forge,
        repo=repo,
        cluster=cluster,
        approved=False,  # a plan only ever dry-runs
        files=dict(workspace),
    )
    try:
        parsed = spec.input_model.model_validate(args)
        return await asyncio.wait_for(spec.plan(parsed, ctx), PLAN_TIMEOUT)
    except ValidationError:
        why = "its arguments are invalid"
    except ToolError as exc:
        why = str(exc).rstrip(".")
    except TimeoutError:
        why = f"the dry run took longer than {PLAN_TIMEOUT:g}s"
    return ClusterPlan(
        tool=spec.name, target="", reached=False, note=f"No plan could be made: {why}."
    )


def planner(
    spec: ToolSpec,
    args: dict[str, Any],
    *,
    settings: Settings,
    session: Session,
    forge: Forge | None,
    repo: RepoRef | None,
    cluster: Any,
) -> Planner | None:
    """`make_plan` for a workspace still to be read (the branch head), or None for a tool
    without a plan."""
    if spec.plan is None:
        return None

    async def plan(workspace: dict[str, str]) -> ClusterPlan:
        return await make_plan(
            spec,
            args,
            workspace,
            settings=settings,
            session=session,
            forge=forge,
            repo=repo,
            cluster=cluster,
        )

    return plan


def shown_plan(session: Session, task_id: str | None) -> ClusterPlan | None:
    """The plan the todo showed for `task_id` (what its approval digest covers)."""
    if session.todo is None or task_id is None:
        return None
    return next((t.plan for t in session.todo.tasks if t.id == task_id), None)


async def plan_waiting(
    session: Session,
    repo: RepoRef,
    *,
    settings: Settings,
    forge: Forge,
    cluster: Any,
    spec_for: Callable[[str | None], ToolSpec | None],
    call_args: Callable[[ToolSpec, dict[str, Any]], dict[str, Any]],
    locks: NamespaceLocks | None = None,
) -> bool:
    """Plan every waiting step whose tool has a plan; each task shows its plan and the
    digest that covers it, and the todo names who holds a namespace another session has
    locked. Then the full plan goes to a check run. True when a plan ran."""
    if session.todo is None:
        return False
    steps: list[Step] = []
    for task in session.todo.tasks:
        spec = spec_for(task.tool)
        if task.status != "waiting_approval" or spec is None or spec.plan is None:
            continue
        args = call_args(spec, task.args)
        task.plan = await make_plan(
            spec,
            args,
            session.files,
            settings=settings,
            session=session,
            forge=forge,
            repo=repo,
            cluster=cluster,
        )
        show(task, scope_of(spec, args, session.files, repo, settings, task.plan))
        steps.append((task.title, task.plan))
    if locks is not None:
        name_holders(session, locks, {plan.target for _, plan in steps if plan.target})
    await publish_check(session, repo, steps, forge=forge, settings=settings)
    return bool(steps)


def name_holders(session: Session, locks: NamespaceLocks, namespaces: set[str]) -> None:
    """A todo line per planned namespace that another session holds: who, and that
    `/idp apply` here waits for it (Atlantis's "locked by" on plan)."""
    todo = session.todo
    if todo is None:
        return
    for namespace in sorted(namespaces):
        stale = LOCK_NOTE.format(namespace)
        todo.notes = [n for n in todo.notes if not n.startswith(stale)]
        held = locks.holder(namespace)
        if held is not None and held.holder.session_id != session.id:
            todo.notes.append(held.sentence())


async def publish_check(
    session: Session, repo: RepoRef, steps: list[Step], *, forge: Forge, settings: Settings
) -> None:
    """The full plan as a neutral check run on the pull request's head, once per head and
    plan; the todo links to it. Without a head commit there is nowhere to put it yet; a plan
    no cluster answered that the todo shows whole needs none (one write less per request)."""
    todo = session.todo
    if todo is None:
        return
    if not steps or not session.head_sha or not needs_check_run(steps):
        todo.plan_link = None
        return
    text = redact(full_plan(steps), settings.secret_values())
    key = hashlib.sha256(f"{session.head_sha}\0{text}".encode()).hexdigest()
    if session.plan_check != key:
        title = f"Cluster plan: {summary_line(steps)}"[:200]
        try:
            check_id = await forge.create_check_run(
                repo, session.head_sha, CHECK_NAME, "neutral", title, text
            )
        except ForgeError as exc:
            log.warning("plan check run of %s not created: %s", session.id, exc)
            todo.plan_link = None
            return
        session.plan_check, session.plan_link = key, check_link(session.pr_url, check_id)
    todo.plan_link = session.plan_link


def check_link(pr_url: str | None, check_id: int) -> str:
    """Markdown for the check run: a link under the pull request's checks on GitHub."""
    if pr_url and pr_url.startswith(("https://", "http://")) and "/pull/" in pr_url:
        return f"[{CHECK_NAME}]({pr_url}/checks?check_run_id={check_id})"
    return f"`{CHECK_NAME}` (check run {check_id})"
