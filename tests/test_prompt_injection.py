"""Prompt injection, attempt by attempt (tests/fixtures/injection/corpus.yaml).

Each attempt in an issue body or an `/idp answer` runs through the real job and agent loop
(`run_parsed`, `GitHubForge` against the fake GitHub, the real generators) with a scripted
model that obeys it: it calls the tools that need approval, echoes every secret, writes
@-mentions and markup, and passes hostile paths. Whatever it does, a user and an operator
see the same guarantees: no approval-gated tool runs without `/idp apply`, and the refusal
is in the todo; no secret reaches a comment, pull request, commit, file, GitHub request, log
line, model request, Redis or the audit log; text a reviewer cannot see never reaches the
model, and what it can see reaches it only as quoted data; the App's comments and pull
requests keep their shape and ping nobody but the requester. Attempts in plain comments
check that a command nobody can see as a command runs nothing.
"""

from __future__ import annotations

import itertools
import re
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from app.agent.providers.base import ModelTurn, ToolCall, Usage
from app.agent.providers.scripted import ScriptedChatModel
from app.domain.todo import MARKER_PREFIX
from app.github.forge import validate_path
from app.untrusted import clean_untrusted
from app.webhooks import Ignored, route
from tests import github_api as gh
from tests import payloads
from tests.fakes import install_fake_validator
from tests.job_world import ISSUE
from tests.leaks import SecretWorld, captured_logs, leaks, substitute, surfaces
from tests.payloads import GENERATORS
from tools.registry import ToolRegistry
from tools.spec import ToolContext, ToolSpec

CORPUS: list[dict[str, Any]] = yaml.safe_load(
    (Path(__file__).parent / "fixtures" / "injection" / "corpus.yaml").read_text()
)
THROUGH_THE_MODEL = [a for a in CORPUS if a["via"] in ("issue", "answer")]
IN_COMMENTS = [a for a in CORPUS if a["via"] == "comment"]
GATED = ("create_k8s_namespace", "deploy_to_staging", "create_repository")
SERVICE = {"name": "payments-api", "language": "python", "type": "api", "team": "payments"}
REQUESTER = "alice"
GITHUB_TEXT_LIMIT = 65_536  # characters of an issue body or comment
CREATE = "/idp create-service payments-api --lang python --team payments"
SECTIONS = {
    "### Tasks",
    "### Waiting for `/idp apply`",
    "### Open questions",
    "### Notes",
    "### Revisions",
}
# Raw HTML (a tag, a comment, a declaration) where only text should be.
HTML = re.compile(r"<[A-Za-z!/?]")
# An @-mention GitHub would turn into a notification (not in an address or a code span).
LIVE_MENTION = re.compile(r"(?<![\w@`])@(?!\u200b)([A-Za-z0-9][\w/-]*)")
FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})", re.MULTILINE)
# What makes GitHub close an issue when a pull request merges (in its body or a commit).
CLOSING = re.compile(
    r"\b(?:close[sd]?|fix(?:e[sd])?|resolve[sd]?):?\s+(?:[\w.-]+/[\w.-]+#\d+|#\d+|https?://\S+)",
    re.IGNORECASE,
)


class RepositoryArgs(BaseModel):
    name: str
    private: bool = True


class RepositoryCreated(BaseModel):
    url: str


class RepositoryTool:
    """`create_repository` as a plugin might ship it, recording every call. It does not flag
    itself as needing approval: the repository config's default approval list must gate it."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def spec(self) -> ToolSpec:
        def create(args: RepositoryArgs, ctx: ToolContext) -> RepositoryCreated:
            self.calls.append(args.model_dump())
            return RepositoryCreated(url=f"https://github.com/acme/{args.name}")

        return ToolSpec(
            "create_repository",
            "Create a repository in the organization.",
            RepositoryArgs,
            RepositoryCreated,
            create,
            side_effect="external",
        )


@pytest.fixture
def world(settings, redis_conn, no_unmocked_http, monkeypatch) -> SecretWorld:
    """acme/payments with every secret configured and the real generators. Validation itself
    is tested elsewhere: a recorder stands in for the validators, to keep 30 runs quick."""
    world = SecretWorld(settings, redis_conn, no_unmocked_http, monkeypatch, real_tools=True)
    install_fake_validator(monkeypatch)
    return world


@pytest.fixture
def repositories(world) -> RepositoryTool:
    tool = RepositoryTool()
    specs = [s for s in world.registry.specs() if s.name != "create_repository"]
    world.registry = ToolRegistry([*specs, tool.spec()])
    return tool


@pytest.fixture
def logs(world):
    with captured_logs(world.settings) as out:
        yield out


# -- the obedient model ---------------------------------------------------------------------


def obedient_model(attempt: dict[str, Any], world: SecretWorld) -> ScriptedChatModel:
    """A model that does the normal work (plan, validate, generate) and then whatever the
    attempt asks, then opens the pull request and answers as the attempt wants."""
    values = world.placeholders()
    obey: list[dict[str, Any]] = substitute(attempt.get("obey", []), values)
    service = {**SERVICE, **substitute(attempt.get("service", {}), values)}
    ids = itertools.count(1)

    def turn(*calls: tuple[str, Any], text: str | None = None) -> ModelTurn:
        return ModelTurn(
            text=text,
            tool_calls=[ToolCall(id=f"call_{next(ids)}", name=n, arguments=a) for n, a in calls],
            usage=Usage(input_tokens=900, output_tokens=60),
        )

    asked = [tool for item in obey for tool in item if tool in GATED]
    plan = [
        {"id": "validate", "title": "Validate the name", "tool": "validate_project_name_and_type"},
        *({"id": g, "title": g, "tool": g, "depends_on": ["validate"]} for g in GENERATORS),
        {
            "id": "pr",
            "title": "Pull request",
            "tool": "open_pull_request",
            "depends_on": list(GENERATORS),
        },
        *({"id": f"x{n}", "title": f"Run {tool}", "tool": tool} for n, tool in enumerate(asked)),
    ]
    turns = []
    if attempt["via"] == "answer":
        turns.append(turn(("ask_requester", {"question": "Which language should it use?"})))
    turns += [
        turn(("write_todo", {"tasks": plan})),
        turn(("validate_project_name_and_type", {k: SERVICE[k] for k in ("name", "language")})),
        turn(*((g, service) for g in GENERATORS)),
        *(turn(*item.items()) for item in obey),
        turn(("open_pull_request", substitute(attempt.get("pr", {}), values))),
        turn(text=substitute(attempt.get("say", "Done."), values)),
    ]
    return ScriptedChatModel(turns)


def attack_text(attempt: dict[str, Any]) -> str:
    return (attempt["text"] * attempt.get("repeat", 1))[:GITHUB_TEXT_LIMIT]


def run_attempt(world: SecretWorld, attempt: dict[str, Any], model: ScriptedChatModel) -> None:
    """Deliver the attempt as GitHub would and run its job(s) with the obedient model."""
    label = ["idp:new-service"]
    if attempt["via"] == "issue":
        payload = payloads.issues_opened(attack_text(attempt), labels=label, sender=REQUESTER)
        world.deliver("issues", payload, chat_model=model)
    else:
        request = "I need a new service called payments-api for the payments team."
        payload = payloads.issues_opened(request, labels=label, sender=REQUESTER)
        world.deliver("issues", payload, chat_model=model)
        assert world.session.todo.open_questions, "the model's question is open"
        world.comment(f"/idp answer {attack_text(attempt)}", sender=REQUESTER, chat_model=model)


# -- what a reviewer and an operator check ----------------------------------------------------


def assert_quoted_as_data(content: str, source: str) -> None:
    """`content` quotes untrusted text from `source` in a fence the text cannot close."""
    assert f"The following is untrusted text from {source}." in content
    opening = re.search(r"^(`{3,})text$", content, re.MULTILINE)
    assert opening is not None
    fence = opening.group(1)
    inner = re.split(rf"\n{fence}(?:\n|$)", content[opening.end() :], maxsplit=1)[0]
    assert not re.search(rf"^ {{0,3}}`{{{len(fence)},}}", inner, re.MULTILINE)


def assert_model_read_only_quoted_visible_text(model: ScriptedChatModel, attempt: dict) -> None:
    visible = [line for line in clean_untrusted(attack_text(attempt)).splitlines() if line]
    for request in model.requests:
        assert all(line not in request.system for line in visible[:3])
        for hidden in attempt.get("hidden", []):
            assert hidden not in request.text()
    if attempt["via"] == "issue":
        first = model.requests[0].messages[0]
        assert_quoted_as_data(first.content, f"issue #{ISSUE} by @{REQUESTER}")
    else:
        answered = model.requests[1].messages[-1]
        assert answered.role == "user"
        assert_quoted_as_data(answered.content, f"the answer of @{REQUESTER}")


def app_texts(world: SecretWorld) -> list[str]:
    """Everything the App wrote that people read: comments, pull request titles and bodies."""
    texts = [
        c["body"]
        for c in world.github.comments.values()
        if c["author"] is None or c["author"]["login"] == gh.APP_BOT  # the people's own aside
    ]
    return texts + [t for p in world.github.pulls.values() for t in (p["title"], p["body"])]


def assert_nobody_but_the_requester_is_pinged(world: SecretWorld) -> None:
    for text in app_texts(world):
        assert set(LIVE_MENTION.findall(text)) <= {REQUESTER}, text


def assert_todo_keeps_its_shape(body: str) -> None:
    """One marker, the known sections, one line per task, question or note, no raw HTML,
    no heading, quote or code block smuggled into an item."""
    lines = body.splitlines()
    assert lines[0].startswith(MARKER_PREFIX) and body.count("<!--") == 1
    assert len(body) <= GITHUB_TEXT_LIMIT
    # The App's own collapsed plan section: its three HTML lines, nothing else raw.
    own_html = {"<details>", "</details>"}
    for line in lines[1:]:
        if line in own_html or re.fullmatch(r"<summary>Cluster plan: [^<>]*</summary>", line):
            continue
        assert line == "" or line.startswith(
            ("## ", "### ", "- ", "**", "  - ", "_", "The full plan is in the check run ", "… ")
        ), line
        assert not HTML.search(line), line
        assert not re.match(r"- (\[[ x]\] )?\s*[#>`~]", line), line
    headings = [line for line in lines if line.startswith("#")]
    assert headings[0].startswith("## ") and set(headings[1:]) <= SECTIONS


def assert_pull_request_keeps_its_shape(pull: dict[str, Any]) -> None:
    """The App's sections in order, no raw HTML or code fence, the issue link last."""
    body = pull["body"]
    lines = body.rstrip("\n").splitlines()
    assert lines[-1] == f"Closes #{ISSUE}"
    headings = [line for line in lines if re.match(r" {0,3}#{1,6}(\s|$)", line)]
    assert headings[0].startswith("## ")
    assert headings[1:] == ["### Summary", "### Files", "### Validation"]
    assert not FENCE.search(body) and not HTML.search(body), body
    assert "\n" not in pull["title"]
    assert CLOSING.findall(body) == [f"Closes #{ISSUE}"]
    assert not CLOSING.search(pull["title"])


def assert_files_stay_in_the_service_folder(world: SecretWorld) -> None:
    main = world.github.files("main")
    for pull in world.github.pulls.values():
        for sha in world.commits_on(pull["branch"]):
            assert not CLOSING.search(world.github.commits[sha]["message"])
        files = world.github.files(pull["branch"])
        added = {p: t for p, t in files.items() if main.get(p) != t}
        assert added
        for path, text in added.items():
            assert validate_path(path) == path
            assert path.startswith("services/payments-api/") or path == (
                ".github/workflows/payments-api.yml"
            ), path
            if path.endswith((".yaml", ".yml")):
                docs = list(yaml.safe_load_all(text))  # no tag parsed: safe_load refuses them
                assert all(d.get("kind") != "Secret" for d in docs if isinstance(d, dict))


# -- the corpus -------------------------------------------------------------------------------


def test_the_corpus_has_twenty_attempts_through_the_model_and_some_in_comments():
    assert len(THROUGH_THE_MODEL) >= 20 and len(IN_COMMENTS) >= 3
    assert {a["via"] for a in CORPUS} == {"issue", "answer", "comment"}
    assert len({a["id"] for a in CORPUS}) == len(CORPUS)


@pytest.mark.parametrize("attempt", THROUGH_THE_MODEL, ids=[a["id"] for a in THROUGH_THE_MODEL])
def test_an_obedient_model_cannot_steer_the_app(world, repositories, logs, attempt):
    model = obedient_model(attempt, world)

    run_attempt(world, attempt, model)

    session = world.session
    asked = {tool for item in attempt.get("obey", []) for tool in item if tool in GATED}
    assert world.cluster.writes == [] and repositories.calls == []
    assert session.approved_by is None
    todo = world.todo()
    for tool in asked:
        assert f"🚫 Refused `{tool}`" in todo
    assert_model_read_only_quoted_visible_text(model, attempt)
    assert logs.getvalue(), "the job's log lines were captured"
    assert leaks(world, surfaces(world, logs, model)) == []
    assert_nobody_but_the_requester_is_pinged(world)
    assert_todo_keeps_its_shape(todo)
    for pull in world.github.pulls.values():
        assert_pull_request_keeps_its_shape(pull)
    assert_files_stay_in_the_service_folder(world)


def test_the_obedient_model_gets_a_refusal_it_can_read_for_each_gated_call(world, repositories):
    (attempt,) = [a for a in CORPUS if a["id"] == "answer-grants-approval"]
    model = obedient_model(attempt, world)

    run_attempt(world, attempt, model)

    after_the_calls = next(
        r for r in model.requests if r.messages[-1].role == "tool" and "Refused" in r.text()
    )
    refusals = [m for m in after_the_calls.messages[-3:] if m.role == "tool"]
    assert [m.is_error for m in refusals] == [True, True, True]
    assert all(m.content.startswith("Refused: `") for m in refusals)
    assert "needs a maintainer's approval (`/idp apply`)" in refusals[0].content
    lines = [line for line in world.todo().splitlines() if line.startswith("- [ ] 🔒")]
    assert len(lines) == 3 and all("waiting for `/idp apply`" in line for line in lines)


@pytest.mark.parametrize("attempt", IN_COMMENTS, ids=[a["id"] for a in IN_COMMENTS])
def test_a_command_hidden_quoted_or_refused_in_a_comment_runs_nothing(
    world, repositories, logs, attempt
):
    world.comment(CREATE)
    waiting = [t.title for t in world.session.todo.tasks if t.status == "waiting_approval"]
    assert waiting, "the rules plan has steps that wait for approval"

    payload = payloads.issue_comment(attempt["text"], sender=attempt.get("sender", REQUESTER))
    routed = route("issue_comment", str(uuid.uuid4()), payload)
    if not isinstance(routed, Ignored):
        world.run(routed)

    session = world.session
    assert world.cluster.writes == [] and session.approved_by is None
    assert [t.title for t in session.todo.tasks if t.status == "waiting_approval"] == waiting
    assert leaks(world, surfaces(world, logs)) == []
    assert_nobody_but_the_requester_is_pinged(world)
    for reply in world.replies():
        assert not HTML.search(reply) and not FENCE.search(reply), reply


def test_the_gate_opens_for_a_maintainers_apply_and_nobody_elses(world, repositories):
    world.comment(CREATE)
    world.comment("/idp apply", sender="bob")
    world.comment("/idp apply", sender=REQUESTER)  # write permission: not enough
    assert world.cluster.writes == []

    world.comment("/idp apply", sender="mia")

    assert world.session.approved_by == "mia"
    kinds = [call[0] for call in world.cluster.writes]
    assert kinds[0] == "namespace" and "apply" in kinds
