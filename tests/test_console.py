"""The console's server-rendered pages, read as a browser without JavaScript would: signing
in, the sessions list, the chat box, a session page, its pull request, tools and agent
systems, and what a signed-in GitHub user may see and do."""

from __future__ import annotations

import re

import pytest
from starlette.testclient import TestClient

from app.domain.session import Session, StepRecord
from app.domain.todo import Task, Todo
from app.server import COOKIE, build_app
from app.state import SessionStore
from tests.operator_api import (
    TOKEN,
    chat,
    operator_settings,
    post_form,
    queued,
    sign_in,
    sign_in_with_github,
)
from tools.registry import default_registry


@pytest.fixture
def mona(client, store, no_unmocked_http):
    """A GitHub user who reads acme/web and writes acme/tools; acme/payments is not hers."""
    store.save(
        Session(id="acme/payments#7", repo="acme/payments", number=7, request_text="payroll")
    )
    store.save(Session(id="acme/web#1", repo="acme/web", number=1, status="done"))
    sign_in_with_github(
        client, no_unmocked_http, "mona", {"acme/web": "read", "acme/tools": "write"}
    )
    return client


# -- signing in -----------------------------------------------------------------------------


def test_an_anonymous_visitor_is_sent_to_the_sign_in_page(client):
    response = client.get("/console/sessions?status=done", follow_redirects=False)

    assert response.status_code == 303
    assert response.headers["location"] == "/console/login?next=/console/sessions%3Fstatus%3Ddone"


def test_the_operator_token_signs_in_and_goes_where_the_visitor_was_heading(client):
    response = sign_in(client, next_page="/console/tools")

    assert response.status_code == 303 and response.headers["location"] == "/console/tools"
    assert "operator (operator)" in client.get("/console/tools").text


def test_a_wrong_token_does_not_sign_in(client):
    response = sign_in(client, token="guess")

    assert response.status_code == 401
    assert "not one of IDP_API_TOKENS" in response.text
    assert client.get("/console/sessions", follow_redirects=False).status_code == 303


def test_sign_in_never_leads_to_another_site(client):
    response = sign_in(client, next_page="https://evil.example/console")

    assert response.headers["location"] == "/console/sessions"


def test_a_form_without_its_csrf_token_is_refused(operator, api_settings, redis_conn):
    response = operator.post(
        "/console/sessions", data={"repo": "acme/demo", "text": "/idp create-service a-b"}
    )

    assert response.status_code == 400
    assert "reload the page" in response.text
    assert queued(api_settings, redis_conn) == []


def test_signing_out_ends_the_console_session(operator):
    response = post_form(operator, "/console/sessions", "/console/logout")

    assert response.headers["location"] == "/console/login"
    assert operator.get("/console/sessions", follow_redirects=False).status_code == 303


def test_the_cookie_is_signed_http_only_and_same_site(client):
    response = sign_in(client)

    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=") and "httponly" in cookie and "samesite=lax" in cookie
    assert TOKEN not in cookie


def test_pages_allow_only_their_own_nonced_script(operator):
    page = operator.get("/console/sessions")

    nonce = re.search(r"script-src 'nonce-([^']+)'", page.headers["content-security-policy"])[1]
    assert f'<script nonce="{nonce}">' in page.text
    assert page.headers["x-frame-options"] == "DENY"


def test_github_sign_in_with_a_forged_state_is_refused(client):
    client.get("/console/login/github", follow_redirects=False)

    response = client.get("/console/login/github/callback?code=c&state=forged")

    assert response.status_code == 400
    assert "try again" in response.text


def test_github_refusing_the_code_is_shown_as_a_sentence(client, no_unmocked_http):
    start = client.get("/console/login/github", follow_redirects=False)
    state = re.search(r"state=([^&]+)", start.headers["location"])[1]
    no_unmocked_http.post("https://github.com/login/oauth/access_token").respond(
        200,
        json={
            "error": "bad_verification_code",
            "error_description": "The code passed is incorrect or expired.",
            "error_uri": "https://docs.github.com/apps/troubleshooting",
        },
    )

    response = client.get(f"/console/login/github/callback?code=old&state={state}")

    assert response.status_code == 400
    assert "The code passed is incorrect or expired." in response.text


def test_github_sign_in_is_off_without_the_apps_oauth_client(settings, redis_conn):
    app = build_app(operator_settings(settings, github_client_id=None), redis_conn)
    client = TestClient(app, base_url="https://testserver")

    assert "Sign in with GitHub" not in client.get("/console/login").text
    assert client.get("/console/login/github").status_code == 404


# -- sessions list and the chat box -----------------------------------------------------------


def test_the_sessions_list_is_readable_without_javascript(operator, store):
    todo = Todo(title="New service payments-api", tasks=[Task(id="a", title="A", status="done")])
    store.save(Session(id="acme/web#3", repo="acme/web", number=3, status="running", todo=todo))

    page = operator.get("/console/sessions").text

    row = re.search(r'<tr data-session="acme/web#3">(.*?)</tr>', page, re.S)[1]
    assert "New service payments-api" in row and "running" in row and "1/1" in row


def test_the_chat_box_starts_a_dry_run_and_opens_its_page(operator, api_settings, redis_conn):
    response = chat(
        operator,
        repo="acme/demo",
        text="/idp create-service payments-api --lang python",
        dry_run="on",
    )

    assert response.headers["location"] == "/console/sessions/acme/demo/1"
    (trigger,) = queued(api_settings, redis_conn)
    assert trigger.dry_run and trigger.commands[0].service.language == "python"
    page = operator.get("/console/sessions/acme/demo/1").text
    assert "New service payments-api" in page and "dry run on the local forge" in page


def test_a_bad_command_in_the_chat_box_shows_the_fix_and_keeps_the_text(operator):
    response = chat(
        operator,
        repo="acme/demo",
        text="/idp create-service Payments_API",
        dry_run="on",
    )

    assert response.status_code == 422
    assert "Try `payments-api`" in response.text
    assert "/idp create-service Payments_API</textarea>" in response.text


# -- one session --------------------------------------------------------------------------


def local_pr_session(store: SessionStore) -> None:
    todo = Todo(
        title="New service payments-api",
        tasks=[
            Task(id="render", title="Render manifests", status="done"),
            Task(id="pr", title="Open the pull request", status="running"),
        ],
        open_questions=["Which team owns it?"],
    )
    step = StepRecord(
        task_id="render",
        tool="generate_k8s_manifests",
        args={"name": "payments-api"},
        idempotency_key="k",
        ok=False,
        error="the cluster said no",
        started_at=1.0,
        finished_at=2.0,
    )
    store.save(
        Session(
            id="acme/demo#1",
            repo="acme/demo",
            number=1,
            status="waiting",
            todo=todo,
            steps=[step],
            files={"k8s/deployment.yaml": "kind: Deployment\n"},
            pr_number=1,
            pr_url="file:///srv/forge/acme/demo#pull-1",
            branch="idp/payments-api",
        )
    )


def test_a_session_page_shows_the_todo_tool_calls_and_pull_request(operator, store):
    local_pr_session(store)

    page = operator.get("/console/sessions/acme/demo/1").text

    done = re.search(r'<li class="done" data-task="render">(.*?)</li>', page, re.S)[1]
    assert "checked" in done and "Render manifests" in done
    running = re.search(r'<li class="running" data-task="pr">(.*?)</li>', page, re.S)[1]
    assert "checked" not in running
    assert "Which team owns it?" in page and "the cluster said no" in page
    assert 'href="/console/sessions/acme/demo/1/pull"' in page


def test_a_local_pull_request_shows_its_branch_and_files(operator, store):
    local_pr_session(store)

    page = operator.get("/console/sessions/acme/demo/1/pull").text

    assert "idp/payments-api" in page
    assert "k8s/deployment.yaml" in page and "kind: Deployment" in page


def test_a_github_pull_request_links_to_github(operator, store):
    store.save(
        Session(
            id="acme/web#2",
            repo="acme/web",
            number=2,
            pr_number=5,
            pr_url="https://github.com/acme/web/pull/5",
        )
    )

    page = operator.get("/console/sessions/acme/web/2").text

    assert 'id="pr-link" href="https://github.com/acme/web/pull/5"' in page


def test_the_message_box_answers_and_the_cancel_button_stops(
    operator, store, api_settings, redis_conn
):
    local_pr_session(store)
    page = "/console/sessions/acme/demo/1"

    answered = post_form(operator, page, f"{page}/messages", text="team payments")
    (trigger,) = queued(api_settings, redis_conn)
    assert (trigger.commands[0].verb, trigger.commands[0].text) == ("answer", "team payments")
    cancelled = post_form(operator, page, f"{page}/cancel")

    assert answered.headers["location"] == cancelled.headers["location"] == page
    assert queued(api_settings, redis_conn) == []  # the queued answer will not run
    assert store.get("acme/demo#1").status == "cancelled"
    assert "Cancel session" not in operator.get(page).text


# -- tools and agent systems -----------------------------------------------------------------


def test_the_tools_page_lists_every_tool(operator, api_settings):
    page = operator.get("/console/tools").text

    for name in default_registry(api_settings).names:
        assert f"<code>{name}</code>" in page


def test_an_operator_creates_and_deletes_an_agent_system_from_the_page(operator):
    page = "/console/agent-systems"

    saved = post_form(operator, page, page, name="quick", provider="rules", max_steps="5")
    assert saved.status_code == 303
    assert "5 steps" in operator.get(page).text
    post_form(operator, page, f"{page}/quick/delete")
    assert "quick" not in operator.get(page).text
    refused = post_form(operator, page, f"{page}/default/delete")
    assert refused.status_code == 409 and "built-in" in refused.text


# -- a signed-in GitHub user ------------------------------------------------------------------


def test_a_user_sees_only_sessions_of_repositories_they_can_read(mona):
    page = mona.get("/console/sessions").text

    assert "acme/web#1" in page
    assert "acme/payments" not in page and "payroll" not in page


def test_a_user_opening_an_unreadable_session_gets_403_without_its_data(mona):
    response = mona.get("/console/sessions/acme/payments/7")

    assert response.status_code == 403
    assert "payroll" not in response.text


def test_a_user_with_read_only_access_cannot_start_a_session(mona, api_settings, redis_conn):
    response = chat(
        mona,
        repo="acme/web",
        number="4",
        text="/idp plan",
    )

    assert response.status_code == 403
    assert "needs write permission on acme/web; you have read" in response.text
    assert queued(api_settings, redis_conn) == []


def test_a_user_with_write_access_starts_a_session_as_themselves(mona, api_settings, redis_conn):
    response = chat(
        mona,
        repo="acme/tools",
        number="8",
        text="/idp create-service tools-api",
    )

    assert response.headers["location"] == "/console/sessions/acme/tools/8"
    (trigger,) = queued(api_settings, redis_conn)
    assert trigger.sender == "mona" and trigger.authorized_permission is None


def test_a_user_may_not_run_what_needs_more_than_write(mona, api_settings, redis_conn):
    response = chat(
        mona,
        repo="acme/tools",
        number="8",
        text="/idp apply",
    )

    assert response.status_code == 403
    assert "needs maintain permission" in response.text


def test_a_user_sees_agent_systems_but_cannot_change_them(mona):
    page = mona.get("/console/agent-systems")

    assert "default" in page.text and "Create or replace" not in page.text
    refused = post_form(mona, "/console/agent-systems", "/console/agent-systems", name="x")
    assert refused.status_code == 403


def test_a_reader_may_answer_only_their_own_sessions_question(
    mona, store, api_settings, redis_conn
):
    question = Todo(title="t", open_questions=["Which language?"])
    for number, requester in ((5, "mona"), (6, "hubot")):
        store.save(
            Session(
                id=f"acme/web#{number}",
                repo="acme/web",
                number=number,
                status="waiting",
                todo=question,
                requester=requester,
            )
        )

    own = post_form(
        mona, "/console/sessions/acme/web/5", "/console/sessions/acme/web/5/messages", text="go"
    )
    other = post_form(
        mona, "/console/sessions/acme/web/6", "/console/sessions/acme/web/6/messages", text="go"
    )

    assert own.status_code == 303 and other.status_code == 403
    assert [(t.number, t.commands[0].verb) for t in queued(api_settings, redis_conn)] == [
        (5, "answer")
    ]
