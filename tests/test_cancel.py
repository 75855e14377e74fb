"""The one cancel (jobs/cancel.py `cancel_session`), which `/idp cancel`, the operator API and
the console share: it raises the session's cancel flag, drops the session's queued agent
commands wherever they were asked (the issue or the App's pull request), and settles the todo."""

from __future__ import annotations

from rq.job import Job, JobStatus

from app.cancel_flag import CancelFlag
from app.domain.todo import Task, Todo
from app.handling.agent_run import pr_session_key
from app.handling.cancel import cancel_session
from app.state import Session, SessionStore
from jobs.queue import enqueue_trigger, job_id_for, queue_for
from tests.job_world import comment_trigger


def _save(settings, redis_conn, **fields) -> SessionStore:
    store = SessionStore(redis_conn, settings)
    store.save(Session(id="acme/web#4", repo="acme/web", number=4, **fields))
    return store


def test_cancel_drops_a_command_queued_on_the_sessions_pull_request(settings, redis_conn):
    _save(settings, redis_conn, status="waiting")
    redis_conn.set(pr_session_key(settings, "acme/web", 9), "acme/web#4")
    enqueue_trigger(redis_conn, settings, comment_trigger("d-pr", 9, "apply", pr=True))
    enqueue_trigger(redis_conn, settings, comment_trigger("d-other", 5, "plan"))

    done = cancel_session(redis_conn, settings, "acme/web#4", "octocat")

    assert done.cancelled and done.dropped == [job_id_for("d-pr")]
    assert Job.fetch(job_id_for("d-pr"), connection=redis_conn).get_status() == JobStatus.CANCELED
    assert queue_for(redis_conn, settings).get_job_ids() == [job_id_for("d-other")]


def test_cancel_raises_the_flag_and_settles_the_todo(settings, redis_conn):
    todo = Todo(title="t", tasks=[Task(id="t1", title="Render", tool="x", status="running")])
    store = _save(settings, redis_conn, status="running", todo=todo)

    done = cancel_session(redis_conn, settings, "acme/web#4", "octocat")

    assert done.cancelled and done.state == "running"
    assert CancelFlag(redis_conn, settings).is_set("acme/web#4")
    assert redis_conn.ttl(CancelFlag(redis_conn, settings).key("acme/web#4")) > 0
    stored = store.get("acme/web#4")
    assert stored.status == "cancelled"
    assert stored.todo.tasks[0].status == "pending"
    assert any(n.startswith("Cancelled") and "octocat" in n for n in stored.todo.notes)


def test_a_finished_session_has_nothing_to_cancel(settings, redis_conn):
    store = _save(settings, redis_conn, status="done")

    done = cancel_session(redis_conn, settings, "acme/web#4", "octocat")

    assert not done.cancelled and done.state == "done"
    assert not CancelFlag(redis_conn, settings).is_set("acme/web#4")
    assert store.get("acme/web#4").status == "done"
