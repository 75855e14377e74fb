"""Namespace locks seen from GitHub and the cluster: two sessions on one staging namespace
are served one at a time (the second waits, its todo names the holder), and the holder's
merge, close or `/idp unlock` lets the waiting one go on. The lock API itself is tested at
the end, on Redis."""

from __future__ import annotations

import pytest

from app.domain.session import session_id_for
from app.grammar.commands import Trigger
from app.locks.namespace import LockOwner, NamespaceLocks, target_namespace
from jobs.queue import queue_for
from tests import payloads
from tests.job_world import World
from tests.test_pr_commands import merged_payload

NAMESPACE = "acme-payments-bf264d5186-staging"  # one namespace per repository
FIRST, SECOND = 7, 8


@pytest.fixture
def world(settings, redis_conn, no_unmocked_http, monkeypatch) -> World:
    world = World(settings, redis_conn, no_unmocked_http, monkeypatch)
    world.comment("/idp create-service payments-api --lang go", number=FIRST)
    world.comment("/idp create-service orders-api --lang go", number=SECOND)
    return world


def session(world: World, number: int):
    found = world.store.get(session_id_for(payloads.REPO, number))
    assert found is not None
    return found


def pr_of(world: World, number: int) -> int:
    pr = session(world, number).pr_number
    assert pr is not None
    return pr


def todo_of(world: World, number: int) -> str:
    s = session(world, number)
    (comment,) = [c for c in world.github.comments.values() if c["body"] == s.rendered_todo]
    return comment["body"]


def queued(world: World) -> list[Trigger]:
    queue = queue_for(world.connection, world.settings)
    return [Trigger.model_validate(job.kwargs["trigger"]) for job in queue.jobs]


def deployed(world: World, service: str) -> bool:
    return any(c[:3] == ("apply", "Deployment", service) for c in world.cluster.writes)


def apply(world: World, number: int, sender: str = "mia") -> dict[str, str]:
    return world.comment("/idp apply", sender=sender, number=pr_of(world, number), on_pr=True)


def test_two_sessions_on_one_namespace_the_second_waits_and_its_todo_names_the_holder(world):
    assert apply(world, FIRST) == {"apply": "done"}
    assert deployed(world, "payments-api")

    outcome = apply(world, SECOND)

    assert outcome == {"apply": "waiting"}
    assert not deployed(world, "orders-api")
    todo = todo_of(world, SECOND)
    holder = f"acme/payments#{pr_of(world, FIRST)}"
    assert f"🔒 namespace `{NAMESPACE}` is locked by {holder}" in todo
    assert f"session `{session_id_for(payloads.REPO, FIRST)}`" in todo
    assert "`/idp unlock` there releases it" in todo
    # still approved: nobody has to approve again once the lock is free
    assert session(world, SECOND).approvals


def test_a_plan_of_a_locked_namespace_names_the_holder_before_anyone_approves(world):
    assert apply(world, FIRST) == {"apply": "done"}

    assert world.comment("/idp plan", number=SECOND) == {"plan": "waiting"}

    todo = todo_of(world, SECOND)
    assert f"🔒 namespace `{NAMESPACE}` is locked by acme/payments#{pr_of(world, FIRST)}" in todo
    assert "Cluster plan:" in todo  # the dry run still shows what an apply would change
    assert session(world, SECOND).approvals == []
    # the holder's own plan names no lock
    world.comment("/idp plan", number=FIRST)
    assert "is locked by" not in todo_of(world, FIRST)


def waiting_world(world: World) -> World:
    apply(world, FIRST)
    apply(world, SECOND)
    assert not deployed(world, "orders-api")
    return world


def run_resumes(world: World) -> list[dict[str, str]]:
    triggers = queued(world)
    queue_for(world.connection, world.settings).empty()
    return [world.run(t) for t in triggers]


def test_unlock_on_the_holders_pull_request_lets_the_waiting_session_go_on(world):
    waiting_world(world)

    outcome = world.comment("/idp unlock", sender="mia", number=pr_of(world, FIRST), on_pr=True)

    assert outcome == {"unlock": "done"}
    (reply,) = [r for r in world.replies(pr_of(world, FIRST)) if "Released" in r]
    assert f"🔓 Released the lock on namespace `{NAMESPACE}`" in reply
    (resume,) = queued(world)
    assert (resume.sender, resume.number, resume.is_pull_request) == (
        "mia",
        pr_of(world, SECOND),
        True,
    )
    assert run_resumes(world) == [{"apply": "done"}]
    assert deployed(world, "orders-api")
    assert "is locked by" not in todo_of(world, SECOND)
    holder = NamespaceLocks(world.connection, world.settings).holder(NAMESPACE)
    assert holder is not None and holder.holder.session_id == session_id_for(payloads.REPO, SECOND)


def test_the_holders_merge_releases_the_lock_and_the_waiting_session_goes_on(world):
    waiting_world(world)
    payload = merged_payload(world, number=pr_of(world, FIRST))

    assert world.deliver("pull_request", payload)["merged"] in ("done", "waiting")

    assert run_resumes(world) == [{"apply": "done"}]
    assert deployed(world, "orders-api")


def test_the_holders_close_without_merge_releases_the_lock(world):
    waiting_world(world)

    assert world.deliver(
        "pull_request", merged_payload(world, number=pr_of(world, FIRST), merged=False)
    ) == {"closed": "done"}

    assert run_resumes(world) == [{"apply": "done"}]
    assert deployed(world, "orders-api")


def test_a_bot_closing_the_holders_pull_request_releases_the_lock_without_a_word(world):
    waiting_world(world)
    payload = merged_payload(world, number=pr_of(world, FIRST), merged=False)
    payload["sender"] = payloads.user("stale[bot]", "Bot")
    before = len(world.replies(pr_of(world, FIRST)))

    assert world.deliver("pull_request", payload) == {"closed": "done"}

    assert len(world.replies(pr_of(world, FIRST))) == before
    assert run_resumes(world) == [{"apply": "done"}]


def test_a_second_apply_while_the_lock_is_held_still_waits_and_says_it_once(world):
    waiting_world(world)

    assert apply(world, SECOND) == {"apply": "waiting"}

    assert not deployed(world, "orders-api")
    assert todo_of(world, SECOND).count("is locked by") == 1


def test_unlock_needs_maintain_and_a_session_without_a_lock_is_told_so(world):
    waiting_world(world)

    refused = world.comment("/idp unlock", sender="alice", number=pr_of(world, FIRST), on_pr=True)
    nothing = world.comment("/idp unlock", sender="mia", number=pr_of(world, SECOND), on_pr=True)

    assert refused == {"unlock": "refused"}
    assert nothing == {"unlock": "answered"}
    assert "holds no namespace lock" in world.replies(pr_of(world, SECOND))[-1]
    assert queued(world) == []
    holder = NamespaceLocks(world.connection, world.settings).holder(NAMESPACE)
    assert holder is not None and holder.holder.session_id == session_id_for(payloads.REPO, FIRST)


# -- the lock API, on Redis -----------------------------------------------------------------


def owner(session: str, who: str = "mia") -> LockOwner:
    return LockOwner(session, "acme/payments", 12, who, 4242)


def test_a_lock_is_its_owners_renewed_by_it_and_freed_only_by_it(settings, redis_conn):
    locks = NamespaceLocks(redis_conn, settings)

    assert locks.acquire("ns-a", owner("acme/payments#1")) is None
    assert locks.acquire("ns-a", owner("acme/payments#1", who="root")) is None  # renewed
    held = locks.acquire("ns-a", owner("acme/other#2"))

    assert held is not None and held.holder.session_id == "acme/payments#1"
    assert held.holder.who == "root" and held.holder.where == "acme/payments#12"
    assert locks.release("ns-a", "acme/other#2") is False
    assert locks.holder("ns-a") is not None
    assert locks.held_by("acme/payments#1") == ["ns-a"]
    freed = locks.release_session("acme/payments#1")
    assert list(freed) == ["ns-a"]
    assert [w.session_id for w in freed["ns-a"]] == ["acme/other#2"]
    assert locks.holder("ns-a") is None
    assert locks.acquire("ns-a", owner("acme/other#2")) is None


def test_a_lock_lives_at_most_its_ttl(settings, redis_conn):
    settings = settings.model_copy(update={"namespace_lock_ttl": 120})
    locks = NamespaceLocks(redis_conn, settings)

    locks.acquire("ns-b", owner("acme/payments#1"))

    assert 0 < redis_conn.ttl(settings.key("ns-lock", "ns-b")) <= 120


def test_an_expired_lock_is_free_for_the_next_session(settings, redis_conn):
    locks = NamespaceLocks(redis_conn, settings)
    locks.acquire("ns-c", owner("acme/payments#1"))

    assert locks.acquire("ns-c", owner("acme/other#2")) is not None  # waits in line
    redis_conn.delete(settings.key("ns-lock", "ns-c"))  # what its TTL does

    assert locks.acquire("ns-c", owner("acme/other#2")) is None
    assert locks.release_session("acme/other#2") == {"ns-c": []}  # no longer a waiter
    assert locks.held_by("acme/payments#1") == []
    assert locks.release_session("acme/payments#1") == {}


def test_the_namespace_of_a_cluster_tools_approval_target():
    assert target_namespace("namespace `acme-payments-staging`") == "acme-payments-staging"
    assert target_namespace("repository `acme/new`") is None
    assert target_namespace("namespace `a b`") is None
    assert target_namespace("this repository's staging namespace") is None


def test_a_model_driven_run_waits_for_a_held_namespace_and_is_told_why(settings, redis_conn):
    """The model path: an approved call whose namespace another session holds is not run;
    the model hears it waits for the lock (not that it lacked approval), the todo names the
    holder, and the task keeps its approval."""
    import asyncio
    import dataclasses

    from app.agent.loop import Agent
    from app.agent.providers.scripted import ScriptedChatModel
    from app.domain.approval import ApprovalScope
    from app.domain.session import Session
    from app.state import SessionStore
    from tests.fakes import FakeForge, ServiceTools
    from tests.test_loop import approve_waiting, call, turn
    from tools.registry import ToolRegistry

    def scope(args, files, repo, settings):
        return ApprovalScope("namespace `shared-staging`")

    tools = ServiceTools()
    specs = [
        dataclasses.replace(s, approval_scope=scope) if s.name == "deploy_to_staging" else s
        for s in tools.specs()
    ]
    store = SessionStore(redis_conn, settings)
    locks = NamespaceLocks(redis_conn, settings)
    assert locks.acquire("shared-staging", owner("acme/other#3")) is None
    args = {"service": "payments-api"}
    plan = [{"id": "d", "title": "Deploy to staging", "tool": "deploy_to_staging", "args": args}]
    model = ScriptedChatModel(
        [
            turn(call("write_todo", {"tasks": plan}, "c1")),
            turn(text="Waiting for approval."),
            turn(call("deploy_to_staging", args, "c2")),
            turn(text="Waiting for the lock."),
        ]
    )
    session = Session(id="acme/shop#7", repo="acme/shop", number=7, requester="alice")

    def run(s: Session) -> Session:
        agent = Agent(settings, ToolRegistry(specs), FakeForge(), store, chat_model=model)
        return asyncio.run(agent.run(s))

    waiting = run(session)
    approve_waiting(waiting, by="mia")
    after = run(waiting)

    told = model.requests[-1].messages[-1]
    assert told.role == "tool" and told.content.startswith("Not run yet: 🔒 namespace")
    assert "🔒 namespace `shared-staging` is locked by acme/payments#12" in after.rendered_todo
    assert after.todo.task("d").status == "waiting_approval"
    assert after.approvals and after.status == "waiting"
    assert tools.calls["deploy_to_staging"] == 0
