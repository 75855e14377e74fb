"""The namespace lock before an approved cluster call (app/locks/namespace.py): the call
runs only while its session holds the namespace it acts on."""

from __future__ import annotations

from typing import Any

from app.agent.approval import scope_of
from app.agent.engine import RunState
from app.agent.outcomes import NamespaceLocked
from app.domain.plan import ClusterPlan
from app.locks.namespace import LOCK_NOTE, LockOwner, NamespaceLocks, target_namespace
from tools.spec import ToolSpec


def hold_namespace(
    locks: NamespaceLocks,
    run: RunState,
    spec: ToolSpec,
    args: dict[str, Any],
    workspace: dict[str, str],
    task_id: str | None,
    settings: Any = None,
    shown: ClusterPlan | None = None,
) -> str | None:
    """Take (or renew) the lock of the namespace the call acts on, owned by the session,
    its pull request and who approved the call; the namespace, or None for a call that
    names none or that no one approved (`shown`: the plan the todo showed). Raises
    `NamespaceLocked` naming the holder when another session has it. Taken before the call
    is planned again: a session waiting for the lock keeps its approval, and the plan it
    checks once it holds the lock is the one the holder left."""
    scope = scope_of(spec, args, workspace, run.repo, settings, shown)
    namespace = target_namespace(scope.target)
    if namespace is None:
        return None
    s = run.session
    approval = s.approval_for(spec.name, scope.digest)
    if approval is None:
        return None
    who = approval.by
    owner = LockOwner(s.id, s.repo, s.pr_number or s.number, who, s.installation_id)
    held = locks.acquire(namespace, owner)
    if held is not None:
        raise NamespaceLocked(spec.name, task_id, held.sentence())
    if s.todo is not None:  # the wait is over: its line goes
        stale = LOCK_NOTE.format(namespace)
        s.todo.notes = [n for n in s.todo.notes if not n.startswith(stale)]
    return namespace
