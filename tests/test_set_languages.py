"""`--lang` takes the languages of the template set the repository's settings choose: the
grammar passes any language word, the job, the rules planner and the validating tool check
it against the set, and an unknown one is answered with the set's languages."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from app.agent.planner import answer_question, language_question
from app.domain.plan_render import CHECK_NAME as PLAN_CHECK
from app.domain.service import ServiceRequest
from app.domain.session import Session
from app.domain.todo import Todo
from app.repo_config import CONFIG_PATH
from tests.job_world import World
from tools.builtin.generate import TOOLS
from tools.registry import ToolRegistry
from tools.spec import ToolContext

ROOT = Path(__file__).resolve().parents[1]
ACME = ROOT / "examples" / "template-sets" / "acme"
SOURCE = "acme=acme/idp-templates/sets/acme@main"


def acme_files() -> dict[str, str]:
    """The example set as the repository acme/idp-templates holds it, under sets/acme."""
    return {
        f"sets/acme/{p.relative_to(ACME)}": p.read_text() for p in ACME.rglob("*") if p.is_file()
    }


@pytest.fixture
def world(settings, redis_conn, no_unmocked_http, monkeypatch) -> World:
    world = World(
        settings.model_copy(update={"template_sets": SOURCE}),
        redis_conn,
        no_unmocked_http,
        monkeypatch,
        real_tools=True,
    )
    world.github.repo_files["acme/idp-templates"] = acme_files()
    return world


def test_create_service_in_rust_with_the_set_the_config_chooses(world):
    world.config("templates:\n  set: acme\n")

    world.comment("/idp create-service ledger --lang rust")

    assert [r for r in world.replies() if "not valid" in r or "no template" in r] == []
    files = world.github.files(world.session.branch)
    assert "services/ledger/src/main.rs" in files
    assert "services/ledger/Cargo.toml" in files
    assert world.session.request.language == "rust"
    (check,) = [c for c in world.github.check_runs if c["name"] != PLAN_CHECK]
    assert check["conclusion"] == "success"


def test_a_language_the_chosen_set_lacks_is_answered_with_the_sets_languages(world):
    world.config("templates:\n  set: acme\n")

    world.comment("/idp create-service ledger --lang pyton")

    (reply,) = world.replies()
    assert reply.startswith(
        "`--lang pyton`: the template set acme 1.1.0, which this repository's settings choose, "
        "has no template for pyton; it has rust."
    )
    assert world.github.pulls == {} and world.todo_comments() == []


def test_the_built_in_set_refuses_rust_and_names_its_languages(world):
    world.comment("/idp create-service ledger --lang rust")

    (reply,) = world.replies()
    assert "the template set builtin" in reply
    assert "has no template for rust; it has python, go, node, java." in reply
    assert world.github.pulls == {}


def test_a_default_language_the_set_lacks_is_named_as_the_settings_key(world):
    world.config("templates:\n  set: acme\ndefaults:\n  language: python\n")

    world.comment("/idp create-service ledger")

    (reply,) = world.replies()
    assert reply.startswith("`defaults.language python`: the template set acme 1.1.0")


def test_the_question_and_the_answer_take_the_sets_languages():
    session = Session(id="acme/payments#7", repo="acme/payments", number=7)
    session.request = ServiceRequest(name="ledger")
    session.todo = Todo(title="New service", open_questions=[language_question(["rust"])])

    answer_question(session, "Rust", "alice", ("rust",))

    assert language_question(["rust"]) == "Which language: rust? Answer with `/idp answer rust`"
    assert language_question(["rust", "zig"]).startswith("Which language: rust or zig?")
    assert session.request.language == "rust"


def test_the_validating_tool_takes_the_languages_of_the_set(settings):
    from app.github.forge import RepoRef
    from tests.fakes import FakeForge

    forge = FakeForge(base_files={**acme_files(), CONFIG_PATH: "templates:\n  set: acme\n"})
    ctx = ToolContext(
        settings=settings.model_copy(update={"template_sets": SOURCE}),
        forge=forge,
        repo=RepoRef("acme", "payments", 42),
    )
    registry = ToolRegistry(TOOLS)

    def call(**args):
        return asyncio.run(registry.call("validate_project_name_and_type", args, ctx))

    rust = call(name="ledger", language="rust", template_set="acme")
    java = call(name="ledger", language="java", template_set="acme")
    builtin = call(name="ledger", language="rust")

    assert rust.ok and rust.output["language"] == "rust"
    assert not java.ok and "has no template in the template set acme 1.1.0; choose rust" in (
        java.error
    )
    assert not builtin.ok and "choose python, go, node, java" in builtin.error
