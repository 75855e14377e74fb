"""Every Forge write is audited by a method of its own (no `__getattr__` pass-through that a
new write could slip by), and the operator API and console say who acted: each operator
token has a name, and starts, messages, cancels, agent-system changes and sign-ins are in
the audit log under it."""

from __future__ import annotations

import asyncio
import inspect
import re

import pytest
from starlette.testclient import TestClient

from app.audit import AuditLog
from app.config import Settings
from app.github.forge import Forge, RepoRef
from app.github.local_forge import LocalForge
from app.handling.audited import AuditedForge, AuditScope
from app.server import build_app
from tests.operator_api import operator_settings

REPO = RepoRef("acme", "payments")
# The protocol's reads; every other method writes and must leave an audit entry.
READS = {
    "list_reactions",
    "default_branch",
    "read_file",
    "permission",
    "get_review",
    "granted_permissions",
    "get_branch_protection",
    "list_reviews",
    "list_run_jobs",
    "job_log_tail",
    "pull_request_state",
    "commit_checks",
    "list_files",
    "add_reaction",  # an acknowledgement, deliberately not audited
}


def _protocol_methods() -> set[str]:
    return {
        name
        for name, member in vars(Forge).items()
        if inspect.isfunction(member) and not name.startswith("_")
    }


def test_the_audited_forge_writes_out_every_method_of_the_protocol():
    missing = sorted(m for m in _protocol_methods() if m not in vars(AuditedForge))

    assert missing == [], f"AuditedForge does not audit {missing}: add a method for each"
    assert "__getattr__" not in vars(AuditedForge)


def test_every_write_of_the_protocol_records_an_audit_entry():
    source = inspect.getsource(AuditedForge)
    for name in sorted(_protocol_methods() - READS):
        body = source.split(f"async def {name}(", 1)[1].split("\n    async def ", 1)[0]
        assert "self._logged(" in body or "self.scope.record(" in body, name


def test_creating_a_repository_and_protecting_its_branch_are_audited(
    settings, redis_conn, tmp_path
):
    audit = AuditLog(redis_conn, settings)
    forge = AuditedForge(LocalForge(tmp_path / "forge"), AuditScope(audit, "acme/x#1", "alice"))

    info = asyncio.run(forge.create_repository("acme", "billing", description="Billing"))
    asyncio.run(forge.protect_branch(info.ref, "main", required_checks=["ci"]))
    with pytest.raises(AttributeError):
        forge.comments  # noqa: B018 - the concrete forge's extras live on `inner` only

    entries = list(audit.entries())
    assert [(e["action"], e["target"], e["result"]) for e in entries] == [
        ("repository", "acme/billing", "created"),
        ("branch_protection", "acme/billing@main", "applied"),
    ]
    assert entries[1]["detail"] == {
        "required_reviews": 1,
        "required_checks": ["ci"],
        "enforce_admins": True,
    }
    assert {e["actor"] for e in entries} == {"alice"}


# -- operator names ------------------------------------------------------------------------


def test_operator_tokens_carry_names_and_bare_tokens_keep_working():
    settings = Settings(api_tokens="ops-ann:tok-ann-123456, legacy-token-1, ci:tok-ci-123456,x:y:z")

    assert settings.named_operator_tokens == [
        ("ops-ann", "tok-ann-123456"),
        ("operator", "legacy-token-1"),
        ("ci", "tok-ci-123456"),
        ("x", "y:z"),
    ]


def test_a_bare_token_after_the_first_is_numbered():
    settings = Settings(api_tokens="first-bare-token,second-bare-token")

    assert [n for n, _ in settings.named_operator_tokens] == ["operator", "operator-2"]


def test_two_tokens_with_one_name_are_refused_at_start_up():
    with pytest.raises(ValueError, match="IDP_API_TOKENS names ann more than once"):
        Settings(api_tokens="ann:token-one-1234,ann:token-two-1234")


@pytest.fixture
def named(settings, redis_conn):
    app_settings = operator_settings(settings, api_tokens="ann:ann-token-123,bob:bob-token-123")
    app = build_app(app_settings, redis_conn)
    with TestClient(app, base_url="https://testserver") as client:
        yield client, app_settings


def _audit(redis_conn, settings) -> list[dict]:
    return list(AuditLog(redis_conn, settings).entries())


def test_api_actions_are_audited_under_the_tokens_name(named, redis_conn):
    client, settings = named
    ann = {"Authorization": "Bearer ann-token-123"}
    bob = {"Authorization": "Bearer bob-token-123"}

    assert client.get("/api/me", headers=bob).json()["login"] == "bob"
    started = client.post(
        "/api/sessions",
        headers=ann,
        json={"repo": "acme/web", "number": 4, "text": "/idp create-service web-api"},
    )
    assert started.status_code == 202, started.text
    path = "/api/sessions/acme/web/4"
    assert client.post(path + "/messages", headers=bob, json={"text": "/idp plan"}).status_code
    assert client.post(path + "/cancel", headers=bob).status_code == 200
    system = {"name": "fast", "provider": "rules"}
    assert client.post("/api/agent-systems", headers=ann, json=system).status_code == 201
    assert client.delete("/api/agent-systems/fast", headers=bob).status_code == 204

    entries = _audit(redis_conn, settings)
    assert [(e["action"], e["command"], e["actor"], e["result"]) for e in entries] == [
        ("session", "start", "ann", "queued"),
        ("session", "message", "bob", "queued"),
        ("session", "cancel", "bob", "cancelled"),
        ("agent_system", "create", "ann", "created"),
        ("agent_system", "delete", "bob", "deleted"),
    ]
    assert entries[0]["target"] == "acme/web#4"
    assert entries[0]["detail"]["via"] == "api"
    assert entries[0]["detail"]["commands"] == ["create-service"]


def test_console_sign_in_and_actions_are_audited_under_the_tokens_name(named, redis_conn):
    client, settings = named

    def csrf(page: str) -> str:
        return re.search(r'name="csrf" value="([^"]+)"', client.get(page).text).group(1)

    login = client.post(
        "/console/login",
        data={"csrf": csrf("/console/login"), "token": "bob-token-123"},
        follow_redirects=False,
    )
    assert login.status_code == 303
    chat = client.post(
        "/console/sessions",
        data={
            "csrf": csrf("/console/sessions"),
            "repo": "acme/web",
            "text": "/idp help",
            "dry_run": "on",
        },
        follow_redirects=False,
    )
    assert chat.status_code == 303, chat.text
    client.post("/console/logout", data={"csrf": csrf("/console/sessions")})

    entries = _audit(redis_conn, settings)
    rows = [(e["action"], e["command"], e["actor"], e["result"]) for e in entries]
    assert rows[0] == ("sign_in", "token", "bob", "signed in")
    assert rows[-1] == ("sign_in", "console", "bob", "signed out")
    sessions = [e for e in entries if e["action"] == "session"]
    assert sessions and all(e["actor"] == "bob" for e in sessions)
    assert {e["detail"]["via"] for e in sessions} == {"console"}


def test_a_wrong_token_is_refused_and_leaves_no_entry(named, redis_conn):
    client, settings = named
    page = client.get("/console/login").text
    token = re.search(r'name="csrf" value="([^"]+)"', page).group(1)

    response = client.post("/console/login", data={"csrf": token, "token": "guess"})

    assert response.status_code == 401
    assert _audit(redis_conn, settings) == []
