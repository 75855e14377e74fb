"""The operator JSON API: every endpoint, who may call it, what it validates, and that a
signed-in GitHub user never sees anything of a repository they cannot read."""

from __future__ import annotations

import json
import logging
import time

import pytest
import redis
from starlette.testclient import TestClient

from app.domain.service import ServiceRequest
from app.domain.session import Session, StepRecord
from app.domain.todo import Task, Todo
from app.server import build_app
from app.state import SessionStore
from tests.operator_api import (
    AUTH,
    TOKEN,
    operator_settings,
    queued,
    sign_in_with_github,
    worker_process,
)
from tests.processes import wait_for
from tools.registry import default_registry

SECRET_REPO = "acme/payments"


def save(store: SessionStore, repo: str, number: int, **fields) -> Session:
    session = Session(id=f"{repo}#{number}", repo=repo, number=number, **fields)
    store.save(session)
    return session


@pytest.fixture
def user_client(client, store, no_unmocked_http):
    """Mona, signed in with GitHub: reads acme/web, writes acme/tools, cannot see payments."""
    save(store, SECRET_REPO, 7, requester="secret-requester", request_text="payroll rewrite")
    save(store, "acme/web", 1, status="done")
    save(store, "acme/tools", 2, status="running")
    sign_in_with_github(
        client, no_unmocked_http, "mona", {"acme/web": "read", "acme/tools": "write"}
    )
    return client


# -- who may call ------------------------------------------------------------------------

EVERY_ENDPOINT = [
    ("GET", "/api/me"),
    ("GET", "/api/tools"),
    ("GET", "/api/agent-systems"),
    ("POST", "/api/agent-systems"),
    ("GET", "/api/agent-systems/default"),
    ("PUT", "/api/agent-systems/fast"),
    ("DELETE", "/api/agent-systems/fast"),
    ("GET", "/api/sessions"),
    ("POST", "/api/sessions"),
    ("GET", "/api/sessions/acme/payments/7"),
    ("POST", "/api/sessions/acme/payments/7/messages"),
    ("POST", "/api/sessions/acme/payments/7/cancel"),
    ("GET", "/api/sessions/acme/payments/7/events"),
    ("GET", "/api/sessions/acme/payments/7/files"),
    ("GET", "/api/events"),
    ("GET", "/api/feedback"),
    ("GET", "/api/openapi.json"),
]


@pytest.mark.parametrize(("method", "path"), EVERY_ENDPOINT)
def test_every_endpoint_answers_401_without_a_token(client, store, method, path):
    save(store, SECRET_REPO, 7, request_text="payroll rewrite")
    body = {"repo": SECRET_REPO, "text": "/idp plan", "number": 7}

    response = client.request(method, path, json=body if method != "GET" else None)

    assert response.status_code == 401
    assert response.json()["status"] == 401
    assert "Bearer" in response.json()["error"]
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert "payroll" not in response.text


@pytest.mark.parametrize("header", [f"Bearer {TOKEN}x", f"Basic {TOKEN}", "Bearer ", TOKEN])
def test_a_wrong_or_malformed_token_is_401_and_never_logged(client, caplog, header):
    caplog.set_level(logging.DEBUG)

    response = client.get("/api/sessions", headers={"Authorization": header})

    assert response.status_code == 401
    assert TOKEN not in caplog.text
    assert TOKEN not in response.text


def test_an_operator_token_sees_who_it_is(client):
    assert client.get("/api/me", headers=AUTH).json() == {
        "login": "operator",
        "operator": True,
        "repositories": 0,
    }


def test_unknown_api_paths_are_a_json_404(client):
    response = client.get("/api/nothing-here", headers=AUTH)

    assert response.status_code == 404
    assert response.json() == {"error": "not found", "status": 404}


# -- tools and agent systems ----------------------------------------------------------------


def test_tools_lists_plugin_tools_and_the_plugins_that_were_not_loaded(
    api_settings, redis_conn, monkeypatch
):
    from importlib.metadata import EntryPoint, entry_points

    from tools import registry as registry_module

    group = registry_module.ENTRY_POINT_GROUP
    broken = EntryPoint("broken", "tests.no_such_plugin_module:TOOLS", group)
    real = list(entry_points(group=group))
    monkeypatch.setattr(registry_module, "entry_points", lambda group: [*real, broken])

    with TestClient(build_app(api_settings, redis_conn)) as client:
        body = client.get("/api/tools", headers=AUTH).json()

    cost = next(t for t in body["tools"] if t["name"] == "cost_estimate")
    assert cost["source"] == "plugin:cost" and cost["input_schema"]["required"] == [
        "replicas",
        "cpu_millicores",
        "memory_mib",
    ]
    (skipped,) = body["not_loaded"]
    assert skipped["plugin"] == "broken"
    assert skipped["entry_point"] == "tests.no_such_plugin_module:TOOLS"
    assert skipped["reason"].startswith("ModuleNotFoundError: No module named 'tests.no_such")


def test_tools_lists_the_registry_with_aliases_and_schemas(client, api_settings):
    registry = default_registry(api_settings)

    tools = client.get("/api/tools", headers=AUTH).json()["tools"]

    assert [t["name"] for t in tools] == registry.names
    for tool in tools:
        spec = registry.get(tool["name"])
        assert tool["aliases"] == list(spec.aliases)
        assert tool["input_schema"]["type"] == "object"
        assert tool["requires_approval"] == spec.requires_approval


def test_the_default_agent_system_is_the_rules_planner_and_comes_first(client):
    systems = client.get("/api/agent-systems", headers=AUTH).json()["agent_systems"]

    assert systems[0]["name"] == "default"
    assert systems[0]["provider"] == "rules" and systems[0]["builtin"] is True


def test_an_agent_system_is_created_read_replaced_and_deleted(client, api_settings):
    registry = default_registry(api_settings)
    spec = next(s for s in registry.specs() if s.aliases)
    body = {"name": "careful", "provider": "openai", "model": "gpt-4o", "tools": [spec.aliases[0]]}

    created = client.post("/api/agent-systems", headers=AUTH, json={**body, "max_steps": 12})
    assert created.status_code == 201
    assert created.json()["tools"] == [spec.name]  # the alias is stored as the tool's name
    assert client.get("/api/agent-systems/careful", headers=AUTH).json()["max_steps"] == 12
    again = client.post("/api/agent-systems", headers=AUTH, json=body)
    assert again.status_code == 409

    replaced = client.put("/api/agent-systems/careful", headers=AUTH, json={"provider": "rules"})
    assert replaced.status_code == 200
    listed = client.get("/api/agent-systems", headers=AUTH).json()["agent_systems"]
    assert [(s["name"], s["provider"]) for s in listed] == [
        ("default", "rules"),
        ("careful", "rules"),
    ]

    assert client.delete("/api/agent-systems/careful", headers=AUTH).status_code == 204
    assert client.get("/api/agent-systems/careful", headers=AUTH).status_code == 404
    assert client.delete("/api/agent-systems/careful", headers=AUTH).status_code == 404


def test_put_creates_a_missing_agent_system(client):
    response = client.put("/api/agent-systems/quick", headers=AUTH, json={"max_seconds": 60})

    assert response.status_code == 201
    assert response.json()["name"] == "quick" and response.json()["max_seconds"] == 60


@pytest.mark.parametrize("method", ["PUT", "DELETE"])
def test_the_default_agent_system_can_neither_change_nor_go(client, method):
    response = client.request(method, "/api/agent-systems/default", headers=AUTH, json={})

    assert response.status_code == 409
    assert "built-in" in response.json()["error"]
    assert client.get("/api/agent-systems/default", headers=AUTH).status_code == 200


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"name": "x", "tools": ["teleport"]}, "unknown teleport"),
        ({"name": "x", "provider": "rules", "model": "gpt-4o"}, "uses no model"),
        ({"name": "x", "max_steps": 0}, "max_steps"),
        ({"name": "Bad Name"}, "name"),
        ({"name": "x", "provider": "llama"}, "provider"),
        ({"name": "x", "temperature": 2}, "temperature"),
        ({"provider": "rules"}, "name"),
    ],
)
def test_an_invalid_agent_system_is_a_422_naming_the_field(client, body, words):
    response = client.post("/api/agent-systems", headers=AUTH, json=body)

    assert response.status_code == 422
    assert words in response.json()["error"]
    assert len(client.get("/api/agent-systems", headers=AUTH).json()["agent_systems"]) == 1


def test_a_body_that_is_not_json_is_a_400(client):
    response = client.post(
        "/api/agent-systems", headers={**AUTH, "Content-Type": "application/json"}, content="{"
    )

    assert response.status_code == 400
    assert response.json() == {"error": "body is not valid JSON; send a JSON object", "status": 400}


def test_put_with_a_body_naming_another_system_is_a_422(client):
    response = client.put("/api/agent-systems/one", headers=AUTH, json={"name": "two"})

    assert response.status_code == 422


# -- starting and listing sessions ------------------------------------------------------------


def test_a_dry_run_from_the_chat_queues_a_trigger_for_the_local_forge(
    client, api_settings, redis_conn
):
    text = "/idp create-service payments-api --lang python"

    response = client.post(
        "/api/sessions", headers=AUTH, json={"repo": "acme/demo", "text": text, "dry_run": True}
    )

    assert response.status_code == 202
    assert response.json()["session"] == "acme/demo#1"
    assert response.json()["url"] == "/api/sessions/acme/demo/1"
    (trigger,) = queued(api_settings, redis_conn)
    assert trigger.delivery_id.startswith("api-")
    assert (trigger.repo, trigger.number, trigger.dry_run) == ("acme/demo", 1, True)
    assert trigger.commands[0].verb == "create-service"
    assert trigger.commands[0].service.name == "payments-api"
    assert trigger.sender == "operator" and trigger.authorized_permission == "admin"
    detail = client.get("/api/sessions/acme/demo/1", headers=AUTH).json()
    assert (detail["status"], detail["dry_run"], detail["title"]) == (
        "new",
        True,
        "New service payments-api",
    )


def test_each_dry_run_without_a_number_gets_the_next_free_one(client, store):
    save(store, "acme/demo", 2)
    body = {"repo": "acme/demo", "text": "/idp create-service a-b", "dry_run": True}

    numbers = [client.post("/api/sessions", headers=AUTH, json=body).json()["number"] for _ in "xy"]

    assert numbers == [1, 3]


def test_dry_runs_of_an_app_on_github_are_numbered_far_from_real_issues(settings, redis_conn):
    app = build_app(operator_settings(settings, forge="github"), redis_conn)
    body = {"repo": "acme/web", "text": "/idp create-service a-b", "dry_run": True}

    with TestClient(app) as client:
        response = client.post("/api/sessions", headers=AUTH, json=body)

    assert response.json()["session"] == "acme/web#900000"


def test_a_github_session_answers_on_the_given_issue(client, api_settings, redis_conn):
    body = {"repo": "acme/web", "number": 12, "text": "please add a worker for emails"}

    response = client.post("/api/sessions", headers=AUTH, json=body)

    assert response.status_code == 202
    (trigger,) = queued(api_settings, redis_conn)
    assert (trigger.repo, trigger.number, trigger.dry_run) == ("acme/web", 12, False)
    assert trigger.commands[0].verb == "request"
    assert trigger.commands[0].text == "please add a worker for emails"


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"repo": "acme/web", "text": "/idp plan"}, "number"),
        (
            {"repo": "acme/web", "number": 3, "text": "/idp create-service Bad_Name"},
            "Try `bad-name`",
        ),
        ({"repo": "acme/web", "number": 3, "text": "/idp teleport"}, "is not a command"),
        ({"repo": "not a repo", "number": 3, "text": "/idp plan"}, "repo"),
        ({"repo": "acme/web", "number": 0, "text": "/idp plan"}, "number"),
        ({"repo": "acme/web", "number": 3, "text": ""}, "text"),
        ({"repo": "acme/web", "number": 3, "text": "x", "urgent": True}, "urgent"),
    ],
)
def test_an_invalid_start_is_a_422_and_queues_nothing(
    client, api_settings, redis_conn, body, words
):
    response = client.post("/api/sessions", headers=AUTH, json=body)

    assert response.status_code == 422
    assert words in response.json()["error"]
    assert queued(api_settings, redis_conn) == []


def test_sessions_are_listed_newest_first_filtered_and_paginated(client, store):
    for number in range(1, 6):
        save(store, "acme/web", number, status="done" if number % 2 else "failed")
        time.sleep(0.002)  # distinct update times order the list
    save(store, "acme/tools", 1, status="done")

    page = client.get("/api/sessions?repo=acme/web&status=done&per_page=2", headers=AUTH).json()
    assert [s["id"] for s in page["sessions"]] == ["acme/web#5", "acme/web#3"]
    assert (page["total"], page["next_page"]) == (3, 2)
    last = client.get("/api/sessions?repo=acme/web&status=done&per_page=2&page=2", headers=AUTH)
    assert [s["id"] for s in last.json()["sessions"]] == ["acme/web#1"]
    assert last.json()["next_page"] is None
    everything = client.get("/api/sessions", headers=AUTH).json()
    assert everything["total"] == 6 and everything["sessions"][0]["id"] == "acme/tools#1"


@pytest.mark.parametrize("query", ["status=finished", "per_page=0", "per_page=101", "page=0"])
def test_a_bad_list_query_is_a_422(client, query):
    response = client.get(f"/api/sessions?{query}", headers=AUTH)

    assert response.status_code == 422
    assert query.split("=")[0] in response.json()["error"]


def test_one_session_shows_todo_steps_pull_request_timings_and_tokens(client, store):
    todo = Todo(
        title="New service payments-api",
        tasks=[
            Task(id="render", title="Render manifests", status="done"),
            Task(id="pr", title="PR"),
        ],
    )
    step = StepRecord(
        task_id="render",
        tool="generate_k8s_manifests",
        args={"name": "payments-api"},
        idempotency_key="k1",
        ok=True,
        output={"summary": "3 files"},
        started_at=100.0,
        finished_at=101.5,
    )
    save(
        store,
        "acme/web",
        4,
        status="running",
        request=ServiceRequest(name="payments-api"),
        todo=todo,
        steps=[step],
        pr_number=9,
        pr_url="https://github.com/acme/web/pull/9",
        branch="idp/payments-api",
        token_usage={"input": 1200, "output": 300},
    )

    detail = client.get("/api/sessions/acme/web/4", headers=AUTH).json()

    assert [t["status"] for t in detail["todo"]["tasks"]] == ["done", "pending"]
    assert detail["tasks"] == {"done": 1, "total": 2}
    assert detail["steps"][0]["tool"] == "generate_k8s_manifests"
    assert detail["steps"][0]["output"] == {"summary": "3 files"}
    assert detail["steps"][0]["seconds"] == 1.5
    assert detail["pull_request"]["url"] == "https://github.com/acme/web/pull/9"
    assert detail["token_usage"] == {"input": 1200, "output": 300}
    assert detail["timings"]["tool_seconds"] == 1.5
    assert detail["links"]["events"] == "/api/sessions/acme/web/4/events"


def test_a_missing_session_is_a_404(client):
    response = client.get("/api/sessions/acme/web/404", headers=AUTH)

    assert response.status_code == 404
    assert response.json()["error"] == "no session acme/web#404"


# -- continuing and cancelling --------------------------------------------------------------


def test_a_message_answers_the_open_question_of_the_same_issue(
    client, store, api_settings, redis_conn
):
    todo = Todo(title="t", open_questions=["Which team owns it?"])
    save(store, "acme/web", 4, status="waiting", todo=todo)

    response = client.post(
        "/api/sessions/acme/web/4/messages", headers=AUTH, json={"text": "payments"}
    )

    assert response.status_code == 202
    (trigger,) = queued(api_settings, redis_conn)
    assert (trigger.repo, trigger.number) == ("acme/web", 4)
    assert (trigger.commands[0].verb, trigger.commands[0].text) == ("answer", "payments")


def test_a_message_to_a_dry_run_stays_a_dry_run(client, api_settings, redis_conn):
    start = {"repo": "acme/demo", "text": "/idp create-service a-b", "dry_run": True}
    client.post("/api/sessions", headers=AUTH, json=start)

    client.post("/api/sessions/acme/demo/1/messages", headers=AUTH, json={"text": "/idp plan"})

    later = queued(api_settings, redis_conn)[-1]
    assert later.dry_run is True and later.commands[0].verb == "plan"


@pytest.mark.parametrize(
    ("status", "body", "code"),
    [("cancelled", {"text": "go on"}, 409), ("waiting", {"text": ""}, 422), ("waiting", {}, 422)],
)
def test_messages_that_cannot_be_sent(client, store, api_settings, redis_conn, status, body, code):
    save(store, "acme/web", 4, status=status)

    response = client.post("/api/sessions/acme/web/4/messages", headers=AUTH, json=body)

    assert response.status_code == code
    assert queued(api_settings, redis_conn) == []


def test_cancel_marks_the_session_and_drops_its_queued_job(client, api_settings, redis_conn, store):
    body = {"repo": "acme/web", "number": 4, "text": "/idp create-service a-b"}
    job_id = client.post("/api/sessions", headers=AUTH, json=body).json()["job_id"]
    client.post("/api/sessions", headers=AUTH, json={**body, "number": 5})

    response = client.post("/api/sessions/acme/web/4/cancel", headers=AUTH)

    assert response.status_code == 200
    assert response.json()["cancelled_jobs"] == [job_id]
    assert store.get("acme/web#4").status == "cancelled"
    assert [t.number for t in queued(api_settings, redis_conn)] == [5]


def test_a_finished_session_cannot_be_cancelled(client, store):
    save(store, "acme/web", 4, status="done")

    response = client.post("/api/sessions/acme/web/4/cancel", headers=AUTH)

    assert response.status_code == 409
    assert store.get("acme/web#4").status == "done"


def test_openapi_documents_every_route(client):
    from app.api.routes import OperatorApi

    document = client.get("/api/openapi.json", headers=AUTH).json()
    routes = OperatorApi.routes(object.__new__(OperatorApi))

    documented = {
        (path, method)
        for path, ops in document["paths"].items()
        for method in ops
        if method != "parameters"
    }
    for route in routes:
        for method in route.methods - {"HEAD"}:
            assert ("/api" + route.path_format, method.lower()) in documented
    assert len(documented) == sum(len(r.methods - {"HEAD"}) for r in routes)
    session = document["paths"]["/api/sessions/{owner}/{name}/{number}/cancel"]
    assert [(p["name"], p["schema"]["type"]) for p in session["parameters"]] == [
        ("owner", "string"),
        ("name", "string"),
        ("number", "integer"),
    ]
    assert "StartSession" in document["components"]["schemas"]


# -- a signed-in GitHub user ------------------------------------------------------------------


def test_a_user_lists_only_sessions_of_repositories_they_can_read(user_client):
    response = user_client.get("/api/sessions")

    assert sorted(s["id"] for s in response.json()["sessions"]) == ["acme/tools#2", "acme/web#1"]
    assert response.json()["total"] == 2
    assert "payments" not in response.text and "secret-requester" not in response.text


@pytest.mark.parametrize(
    "path",
    [
        "/api/sessions?repo=acme/payments",
        "/api/sessions?repo=ACME/Payments&status=new",
        "/api/sessions/acme/payments/7",
        "/api/sessions/acme/payments/999",
        "/api/sessions/acme/payments/7/events",
    ],
)
def test_a_user_gets_403_and_no_data_for_a_repository_they_cannot_read(user_client, path):
    response = user_client.get(path)

    assert response.status_code == 403
    assert response.json() == {"error": "you cannot read this repository's sessions", "status": 403}


def test_a_user_reads_a_session_of_a_repository_they_can_read(user_client):
    assert user_client.get("/api/sessions/acme/web/1").json()["status"] == "done"


def test_the_console_cookie_cannot_change_anything_through_the_api(
    user_client, api_settings, redis_conn
):
    body = {"repo": "acme/tools", "number": 2, "text": "/idp plan"}

    response = user_client.post("/api/sessions", json=body)

    assert response.status_code == 403
    assert "Bearer" in response.json()["error"]
    assert queued(api_settings, redis_conn) == []


def test_a_users_repositories_are_asked_of_github_once_per_few_minutes(
    user_client, no_unmocked_http
):
    user_client.get("/api/sessions")
    user_client.get("/api/sessions/acme/web/1")

    repo_calls = [c for c in no_unmocked_http.calls if c.request.url.path == "/user/repos"]
    assert len(repo_calls) == 2  # the two pages of the sign-in, none since
    assert all(c.request.headers["authorization"] == "Bearer ghu_user_token" for c in repo_calls)


def test_a_user_whose_github_token_was_revoked_must_sign_in_again(
    user_client, no_unmocked_http, redis_conn, api_settings
):
    for key in redis_conn.scan_iter(api_settings.key("console", "roles", "*")):
        redis_conn.delete(key)  # the cached roles expired
    no_unmocked_http.get("https://api.github.com/user/repos", params={"per_page": "100"}).respond(
        401, json={"message": "Bad credentials", "documentation_url": "https://docs.github.com"}
    )

    response = user_client.get("/api/sessions")

    assert response.status_code == 401
    assert json.loads(user_client.get("/api/me").text)["status"] == 401


def test_cancel_drops_a_start_waiting_behind_the_sessions_run(
    client, api_settings, redis_conn, store
):
    """The test holds the session (a long run); the API's start joins its line in a real
    worker; the cancel drops it, so nothing runs when the long run ends."""
    from rq.job import Job, JobStatus

    from app.session_line import SessionLine

    body = {"repo": "acme/web", "number": 4, "text": "/idp create-service a-b", "dry_run": True}
    line = SessionLine(redis_conn, api_settings)
    with store.lock("acme/web#4"), worker_process(api_settings):
        job_id = client.post("/api/sessions", headers=AUTH, json=body).json()["job_id"]
        waiting = wait_for(lambda: line.waiting("acme/web#4"))

        response = client.post("/api/sessions/acme/web/4/cancel", headers=AUTH)

        assert response.json()["cancelled_jobs"] == waiting
    job = Job.fetch(job_id, connection=redis_conn)
    assert job.return_value() == {"deferred": waiting[0]}
    assert Job.fetch(waiting[0], connection=redis_conn).get_status() == JobStatus.CANCELED
    assert store.get("acme/web#4").status == "cancelled"
    assert queued(api_settings, redis_conn) == []  # the long run's end queued nothing


def test_an_unreachable_redis_is_a_503_sentence_not_a_traceback(api_settings):
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    down = redis.Redis(host="127.0.0.1", port=1, retry=Retry(NoBackoff(), 0))
    client = TestClient(build_app(api_settings, down))

    response = client.get("/api/sessions", headers=AUTH)

    assert response.status_code == 503
    assert response.json() == {
        "error": "Redis is not reachable; try again in a moment",
        "status": 503,
    }
