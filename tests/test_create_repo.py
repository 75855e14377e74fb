"""`/idp create-repo` without a model, seen from GitHub: the App's todo lists the creation
and the push waiting for `/idp apply` (each with its digest) and the protection after them;
`/idp apply` creates the repository in the organization, pushes the service's generated files
in one commit and protects the default branch at least as the repository's config asks. A
repository of another account, a name the App did not create, a writer, and an installation
without `administration: write` are each refused with one comment that says what to do."""

from __future__ import annotations

import pytest

from app.agent.providers.scripted import ScriptedChatModel
from app.domain.approval import approval_digest, short
from app.repo_config import parse_repo_config
from tests.github_repos_api import FakeRepoAdmin
from tests.job_world import World
from tools.builtin import repository, repository_push
from tools.builtin.repository import required_checks_for
from tools.registry import ToolRegistry

CREATE = "/idp create-service payments-api --lang go --team checkout"
REPO = "acme/billing-api"
CREATE_REPO = "/idp create-repo billing-api --from-service payments-api"
POST_REPOS = ("POST", "/orgs/acme/repos")


@pytest.fixture
def world(settings, redis_conn, no_unmocked_http, monkeypatch) -> World:
    world = World(settings, redis_conn, no_unmocked_http, monkeypatch)
    world.registry = ToolRegistry(
        [*world.registry.specs(), *repository.TOOLS, *repository_push.TOOLS]
    )
    world.admin = FakeRepoAdmin(world.github, no_unmocked_http)  # type: ignore[attr-defined]
    return world


def admin(world: World) -> FakeRepoAdmin:
    return world.admin  # type: ignore[attr-defined]


def calls_to(world: World, fragment: str) -> list[tuple]:
    return [c for c in world.github.calls if fragment in c[1]]


def task(world: World, suffix: str):
    (found,) = [t for t in world.session.todo.tasks if t.id == f"repo:billing-api:{suffix}"]
    return found


def test_create_repo_waits_for_apply_then_creates_pushes_and_protects(world):
    world.comment(CREATE)
    files = dict(world.session.files)
    assert files and world.session.branch

    outcome = world.comment(CREATE_REPO, sender="mia")

    assert outcome["create-repo"] == "waiting"
    assert calls_to(world, "/orgs/acme/repos") == [] and REPO not in admin(world).repos
    todo = world.todo()
    create_digest = approval_digest(
        "create_repository",
        {
            "name": "billing-api",
            "owner": "acme",
            "private": True,
            "description": "Service `payments-api`, requested in acme/payments#7",
        },
        {},
        f"repository `{REPO}`",
    )
    assert task(world, "create").digest == create_digest
    assert f"- [ ] 🔒 Create the repository {REPO} — waiting for `/idp apply`" in todo
    assert (
        f"- 🔒 `create_repository` → repository `{REPO}` · digest `{short(create_digest)}`" in todo
    )
    push = task(world, "push")
    assert push.status == "waiting_approval" and push.applies == len(files)
    assert f"`push_service_files` → repository `{REPO}` · {len(files)} files" in todo
    assert f"- [ ] Protect the default branch of {REPO}" in todo

    world.comment("/idp apply", sender="mia")

    created = [c for c in world.github.calls if c[:2] == POST_REPOS]
    assert created == [
        (
            "POST",
            "/orgs/acme/repos",
            {
                "name": "billing-api",
                "description": "Service `payments-api`, requested in acme/payments#7",
                "private": True,
                "auto_init": True,
            },
        )
    ]
    git = admin(world).git[REPO]
    assert git.files("main") == {"README.md": "# billing-api\n", **files}
    head = git.commits[git.refs["main"]]
    assert head["message"].startswith("Add service payments-api\n\n")
    assert len(head["parents"]) == 1  # one commit on top of GitHub's README
    checks = required_checks_for(world.session.request)
    assert admin(world).protection[(REPO, "main")] == {
        "required_status_checks": {"strict": True, "checks": [{"context": c} for c in checks]},
        "enforce_admins": True,
        "required_pull_request_reviews": {
            "dismiss_stale_reviews": True,
            "required_approving_review_count": 1,
        },
        "restrictions": None,
    }
    # The push came before the protection, which would have refused it.
    order = [c[0] + c[1] for c in world.github.calls if "billing-api" in c[1] and c[0] != "GET"]
    assert order[-1] == "PUT/repos/acme/billing-api/branches/main/protection"
    for suffix in ("create", "push", "protect"):
        assert task(world, suffix).status == "done"
    assert world.session.created_repos == [REPO]
    todo = world.todo()  # still one todo comment, edited
    assert f"- [x] Create the repository {REPO} — Created the private repository {REPO}" in todo
    assert f"Pushed {len(files)} files of `payments-api` to {REPO}" in todo
    assert "Branch main is protected: changes need a pull request with 1 approving review" in todo


def test_the_config_sets_the_least_protection_of_an_empty_repository(world):
    world.config(
        "branch_protection:\n"
        "  required_reviews: 2\n"
        "  required_checks: [Build]\n"
        "  require_code_owner_reviews: true\n"
        "  required_linear_history: true\n"
    )

    world.comment("/idp create-repo docs-site", sender="mia")

    assert world.session.todo.title == "New repository `acme/docs-site`"
    assert [t.tool for t in world.session.todo.tasks] == [
        "create_repository",
        "protect_repository_branch",
    ]
    world.comment("/idp apply", sender="mia")

    assert admin(world).git["acme/docs-site"].files("main") == {"README.md": "# docs-site\n"}
    assert calls_to(world, "/repos/acme/docs-site/git/trees") == []
    assert admin(world).protection[("acme/docs-site", "main")] == {
        "required_status_checks": {"strict": True, "checks": [{"context": "Build"}]},
        "enforce_admins": True,
        "required_pull_request_reviews": {
            "dismiss_stale_reviews": True,
            "require_code_owner_reviews": True,
            "required_approving_review_count": 2,
        },
        "restrictions": None,
        "required_linear_history": True,
    }
    assert world.session.status == "done"


def test_a_repository_of_another_account_is_refused_with_one_comment(world):
    outcome = world.comment("/idp create-repo other-org/billing-api", sender="mia")

    assert outcome["create-repo"] == "refused"
    (reply,) = world.replies()
    assert "creates repositories only in **acme**" in reply
    assert "`/idp create-repo billing-api` creates acme/billing-api" in reply
    assert world.todo_comments() == []
    assert [w for w in world.writes() if not w[1].endswith("/reactions")] == [
        ("POST", "/repos/acme/payments/issues/7/comments")
    ]
    assert calls_to(world, "other-org") == []


def test_a_name_the_app_did_not_create_is_left_alone(world):
    admin(world).add_repo(REPO, description="Someone else's")
    world.comment(CREATE)
    world.comment(CREATE_REPO, sender="mia")

    world.comment("/idp apply", sender="mia")

    create = task(world, "create")
    assert create.status == "failed"
    assert "already exists and the App did not create it for this request" in create.detail
    assert task(world, "push").status == "blocked" and task(world, "protect").status == "blocked"
    assert [c for c in world.github.calls if c[0] != "GET" and "billing-api" in c[1]] == []
    assert (REPO, "main") not in admin(world).protection
    assert world.session.created_repos == []


def test_without_administration_write_one_comment_names_the_permission(world):
    world.github.granted.pop("administration")
    world.comment(CREATE)
    before = len(world.github.writes())

    outcome = world.comment(CREATE_REPO, sender="mia")

    assert outcome["create-repo"] == "refused"
    reply = world.replies()[-1]
    assert reply.startswith("`/idp create-repo` needs to create repositories, and the App's")
    assert "**Administration: Read and write**" in reply
    assert f"comment `{CREATE_REPO}` again" in reply
    assert not any(t.tool == "create_repository" for t in world.session.todo.tasks)
    new = world.github.writes()[before:]
    assert all("/comments" in p or "/reactions" in p for _, p in new)
    assert [p for m, p in new if m == "POST" and p.endswith("/comments")] == [
        "/repos/acme/payments/issues/7/comments"
    ]


def test_a_writer_may_not_ask_for_a_repository(world):
    outcome = world.comment("/idp create-repo billing-api", sender="alice")

    assert outcome["create-repo"] == "refused"
    assert "maintain" in world.replies()[-1]
    assert calls_to(world, "/orgs/") == []


def test_from_service_needs_the_services_files_here(world):
    outcome = world.comment(CREATE_REPO, sender="mia")

    assert outcome["create-repo"] == "answered"
    assert "This issue holds no service `payments-api`" in world.replies()[-1]
    assert world.todo_comments() == [] and calls_to(world, "/orgs/") == []


def test_with_a_model_configured_the_app_still_runs_the_repository_todo_itself(world):
    model = ScriptedChatModel([])  # any call to it would fail the run

    world.comment("/idp create-repo docs-site", sender="mia", chat_model=model)
    world.comment("/idp apply", sender="mia", chat_model=model)

    assert model.requests == []
    assert "acme/docs-site" in admin(world).git
    assert world.session.status == "done"
    assert "planner:** rules" in world.todo()


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("branch_protection:\n  required_reviews: 9\n", "less than or equal to 6"),
        ("branch_protection:\n  reviews: 2\n", "did you mean `required_reviews`?"),
        ("permissions:\n  create-repo: write\n", "'write' is below the default maintain"),
    ],
)
def test_the_configs_protection_and_permission_are_checked_like_any_key(text, said):
    config, error = parse_repo_config(text)
    assert config is None and said in error and "line 2" in error
