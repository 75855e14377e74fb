"""Controlling a session from a comment: `/idp cancel` marks it cancelled and stops a job a
real worker is running (RQ's stop-job command); `/idp retry` runs the failed steps only."""

from __future__ import annotations

import asyncio

import pytest
from rq.job import Job, JobStatus

from app.domain.session import Session
from app.state import SessionStore
from jobs.queue import enqueue_trigger, job_id_for, queue_for
from jobs.tasks import run_parsed
from tests.job_world import World, comment_trigger

CREATE = "/idp create-service payments-api --lang go --team checkout"


@pytest.fixture
def world(settings, redis_conn, no_unmocked_http, monkeypatch) -> World:
    return World(settings, redis_conn, no_unmocked_http, monkeypatch)


# -- cancel -------------------------------------------------------------------------------


def test_cancel_marks_the_session_cancelled_and_says_so_in_the_todo(world):
    world.comment(CREATE)

    assert world.comment("/idp cancel") == {"cancel": "cancelled"}

    assert world.session.status == "cancelled"
    assert "Cancelled by alice; nothing more runs until a new command." in world.todo()
    assert "No IDP" not in " ".join(world.replies())  # no extra comment: the todo tells it


def test_a_cancelled_session_runs_nothing_until_a_new_command_resumes_it(world):
    world.comment("/idp create-service payments-api --team checkout")  # asks for a language
    world.comment("/idp cancel")

    assert world.comment("/idp status", sender="bob") == {"status": "answered"}
    assert "**cancelled**" in world.replies()[-1]
    world.comment("/idp answer go")

    assert world.session.status == "waiting"  # on the approval-gated steps only
    assert "Cancelled by" not in world.todo()
    assert world.session.pr_url is not None


def test_cancel_without_a_session_answers_that_there_is_nothing_to_cancel(world):
    assert world.comment("/idp cancel") == {"cancel": "answered"}
    assert "Nothing to cancel: this session is not started." in world.replies()[-1]


def test_cancel_needs_write_permission(world):
    world.comment(CREATE)

    assert world.comment("/idp cancel", sender="bob") == {"cancel": "refused"}
    assert world.session.status == "waiting"


def test_cancel_drops_the_sessions_queued_commands_but_not_other_sessions(settings, redis_conn):
    SessionStore(redis_conn, settings).save(
        Session(id="acme/web#4", repo="acme/web", number=4, status="waiting")
    )
    enqueue_trigger(redis_conn, settings, comment_trigger("d-1", 4, "plan"))
    enqueue_trigger(redis_conn, settings, comment_trigger("d-2", 5, "plan"))

    asyncio.run(run_parsed(comment_trigger("d-3", 4, "cancel"), settings, redis_conn))

    queue = queue_for(redis_conn, settings)
    assert queue.get_job_ids() == [job_id_for("d-2")]
    assert Job.fetch(job_id_for("d-1"), connection=redis_conn).get_status() == JobStatus.CANCELED


# -- retry --------------------------------------------------------------------------------


def test_retry_runs_only_the_failed_steps_and_what_waited_for_them(world):
    world.generators.failures["setup_observability"] = 1
    world.comment(CREATE)

    assert world.session.status == "failed"
    todo = world.todo()
    assert "❌ Set up observability" in todo and "could not reach the template store" in todo
    assert "⛔ Open the pull request" in todo
    before = dict(world.generators.calls)

    assert world.comment("/idp retry") == {"retry": "waiting"}

    ran = {tool: n - before.get(tool, 0) for tool, n in world.generators.calls.items()}
    assert {tool for tool, n in ran.items() if n} == {"setup_observability"}
    assert world.session.pr_url is not None
    assert "❌" not in world.todo() and len(world.todo_comments()) == 1


def test_retry_with_nothing_failed_says_so(world):
    world.comment(CREATE)

    assert world.comment("/idp retry") == {"retry": "answered"}
    assert "Nothing failed here" in world.replies()[-1]
