"""The repository tools through the registry, as the agent calls them: on GitHub (a
FakeGitHub with organizations, templates and branch protection) the exact API calls and
bodies; on the LocalForge the repository on disk and the recorded protection; and no call
at all before `/idp apply`."""

from __future__ import annotations

import json
import subprocess

import httpx
import pytest

from app.domain.session import Session
from app.github.errors import ForgeError
from app.github.forge import RepoRef
from app.github.github_forge import GitHubForge
from app.github.local_forge import LocalForge
from app.github.protection import BranchRules
from tests import github_api as gh
from tests.github_repos_api import FakeRepoAdmin
from tools.registry import ToolRegistry, ToolResult, default_registry
from tools.spec import ToolContext, to_anthropic_tool, to_openai_tool

pytestmark = pytest.mark.anyio
HOME = RepoRef(gh.OWNER, gh.NAME, gh.INSTALLATION_ID)
CREATE = "create_repository"
PROTECTED = "create_git_repository_with_branch_protection"
# What GitHub is asked to enforce on the default branch by default: one review, stale
# reviews dismissed, the generated workflow's pull-request jobs, admins included.
DEFAULT_PROTECTION = {
    "required_status_checks": {
        "strict": True,
        "checks": [{"context": "Lint"}, {"context": "Test"}],
    },
    "enforce_admins": True,
    "required_pull_request_reviews": {
        "dismiss_stale_reviews": True,
        "required_approving_review_count": 1,
    },
    "restrictions": None,
}


@pytest.fixture(scope="module")
def registry() -> ToolRegistry:
    return default_registry()


@pytest.fixture
def admin(github, no_unmocked_http):
    return FakeRepoAdmin(github, no_unmocked_http)


@pytest.fixture
def app_ctx(settings, redis_conn, admin):
    app_settings = gh.as_app(settings)
    forge = GitHubForge(app_settings, redis_conn)
    return ToolContext(
        settings=app_settings, session=session(), forge=forge, repo=HOME, approved=True
    )


@pytest.fixture
def local(tmp_path, settings):
    forge = LocalForge(tmp_path / "forge")
    return ToolContext(settings=settings, session=session(), forge=forge, repo=HOME, approved=True)


def session() -> Session:
    return Session(id="acme/payments#7", repo="acme/payments", number=7)


def ok(result: ToolResult) -> dict:
    assert result.ok, result.error
    return result.output


def api_calls(github: gh.FakeGitHub) -> list[tuple]:
    """Every request but the installation-token ones, with its JSON body."""
    return [c for c in github.calls if "/access_tokens" not in c[1]]


async def test_the_repository_tools_are_registered_and_wait_for_approval(registry):
    for name in (CREATE, PROTECTED):
        spec = registry.get(name)
        assert spec.requires_approval and spec.side_effect == "repo"
        assert to_openai_tool(spec)["function"]["parameters"] == spec.input_schema
        assert to_anthropic_tool(spec)["input_schema"]["properties"]["template"]
    assert registry.get("create-repo").name == CREATE
    assert registry.get("create protected repository").name == PROTECTED


async def test_without_approval_the_registry_refuses_and_github_hears_nothing(
    registry, app_ctx, github
):
    app_ctx.approved = False
    for name in (CREATE, PROTECTED):
        result = await registry.call(name, {"name": "billing-api"}, app_ctx)
        assert not result.ok and "/idp apply" in result.error
    assert github.calls == []


async def test_an_org_repository_is_created_private_with_a_readme(registry, app_ctx, github):
    out = ok(
        await registry.call(CREATE, {"name": "billing-api", "description": "Billing\nAPI"}, app_ctx)
    )
    assert api_calls(github) == [
        ("GET", "/orgs/acme/installation", None),
        ("GET", "/repos/acme/billing-api", None),
        (
            "POST",
            "/orgs/acme/repos",
            {
                "name": "billing-api",
                "description": "Billing API",
                "private": True,
                "auto_init": True,
            },
        ),
    ]
    assert (out["full_name"], out["created"], out["private"]) == ("acme/billing-api", True, True)
    assert out["url"] == "https://github.com/acme/billing-api"
    assert out["summary"].startswith("Created the private repository acme/billing-api")


async def test_a_template_repository_is_generated_and_its_default_branch_protected(
    registry, app_ctx, github, admin
):
    admin.add_repo("acme/service-template", is_template=True, default_branch="trunk")
    args = {"name": "billing-api", "template": "acme/service-template", "private": False}
    out = ok(await registry.call(PROTECTED, args, app_ctx))
    generate = {
        "owner": "acme",
        "name": "billing-api",
        "description": "",
        "private": False,
        "include_all_branches": False,
    }
    assert api_calls(github)[2:] == [
        ("POST", "/repos/acme/service-template/generate", generate),
        ("GET", "/repos/acme/billing-api/branches/trunk/protection", None),
        ("PUT", "/repos/acme/billing-api/branches/trunk/protection", DEFAULT_PROTECTION),
    ]
    assert admin.repos["acme/billing-api"]["template"] == "acme/service-template"
    assert (out["protected_branch"], out["required_checks"]) == ("trunk", ["Lint", "Test"])
    assert "from template acme/service-template" in out["summary"]
    assert "1 approving review and the checks Lint, Test" in out["summary"]


async def test_an_existing_repository_the_app_did_not_create_is_refused_and_left_alone(
    registry, app_ctx, github, admin
):
    admin.add_repo("acme/billing-api", private=False)
    for name in (CREATE, PROTECTED):
        result = await registry.call(name, {"name": "billing-api"}, app_ctx)
        assert not result.ok
        assert result.error.startswith(
            "acme/billing-api already exists and the App did not create it for this request"
        )
    assert [c for c in api_calls(github) if c[0] != "GET"] == []
    assert ("acme/billing-api", "main") not in admin.protection
    assert app_ctx.session.created_repos == []


async def test_a_repository_created_by_a_concurrent_run_is_not_this_sessions(
    registry, app_ctx, github, admin
):
    # Between our look-up and our create, another run creates it: GitHub answers 422.
    github.fail(
        "POST", r"^/orgs/acme/repos$", lambda request: admin.add_repo("acme/billing-api") and None
    )
    result = await registry.call(PROTECTED, {"name": "billing-api"}, app_ctx)
    assert not result.ok and "the App did not create it for this request" in result.error
    assert [c[:2] for c in api_calls(github)][-2:] == [
        ("POST", "/orgs/acme/repos"),
        ("GET", "/repos/acme/billing-api"),
    ]


async def test_the_sessions_own_repository_is_recorded_and_reused_by_a_retry(
    registry, app_ctx, github, admin
):
    first = ok(await registry.call(PROTECTED, {"name": "billing-api"}, app_ctx))
    again = ok(await registry.call(PROTECTED, {"name": "billing-api"}, app_ctx))

    assert (first["created"], again["created"]) == (True, False)
    assert app_ctx.session.created_repos == ["acme/billing-api"]
    assert admin.protection[("acme/billing-api", "main")] == DEFAULT_PROTECTION


async def test_protection_only_gets_stricter_and_keeps_what_a_human_tightened(
    registry, app_ctx, github, admin
):
    ok(await registry.call(PROTECTED, {"name": "billing-api"}, app_ctx))
    # An admin tightens the branch by hand after the App protected it.
    tightened = {
        "required_status_checks": {"strict": True, "checks": [{"context": "Security scan"}]},
        "enforce_admins": True,
        "required_pull_request_reviews": {
            "dismiss_stale_reviews": True,
            "require_code_owner_reviews": True,
            "required_approving_review_count": 3,
        },
        "restrictions": {"users": ["lead"], "teams": ["platform"], "apps": []},
        "required_linear_history": True,
    }
    admin.protection[("acme/billing-api", "main")] = dict(tightened)
    weaker = {
        "name": "billing-api",
        "required_reviews": 1,
        "required_checks": ["Test"],
        "enforce_admins": False,
    }

    out = ok(await registry.call(PROTECTED, weaker, app_ctx))

    both = [{"context": "Security scan"}, {"context": "Test"}]
    assert admin.protection[("acme/billing-api", "main")] == {
        **tightened,
        "required_status_checks": {"strict": True, "checks": both},
    }
    assert (out["required_reviews"], out["enforce_admins"]) == (3, True)
    assert "3 approving reviews and the checks Security scan, Test" in out["summary"]
    assert "Where the branch's protection was already stricter, it was kept." in out["summary"]


async def test_the_stand_in_answers_branch_protection_as_github_documents(app_ctx, admin):
    """https://docs.github.com/rest/branches/branch-protection#get-branch-protection: 404
    "Branch not protected" for an unprotected branch; the rules otherwise, with
    `enforce_admins` and the switches as `{"enabled": …}` and people as objects."""
    forge: GitHubForge = app_ctx.forge
    admin.add_repo("acme/billing-api")
    repo = RepoRef("acme", "billing-api", gh.INSTALLATION_ID)

    assert await forge.get_branch_protection(repo, "main") is None

    asked = BranchRules(
        required_reviews=2,
        required_checks=("Test",),
        strict=True,
        enforce_admins=True,
        review_flags=frozenset({"dismiss_stale_reviews"}),
        flags=frozenset({"lock_branch"}),
        restrictions={"users": ["lead"], "teams": [], "apps": ["deployer"]},
    )
    await forge.protect_branch(repo, "main", rules=asked)

    assert await forge.get_branch_protection(repo, "main") == asked


async def test_another_organization_is_served_by_its_own_installation(
    registry, app_ctx, github, admin
):
    admin.add_account("platform", 777)
    out = ok(await registry.call(CREATE, {"name": "billing-api", "owner": "platform"}, app_ctx))
    assert out["full_name"] == "platform/billing-api"
    tokens = [c[1] for c in github.calls if c[1].endswith("/access_tokens")]
    assert tokens == ["/app/installations/777/access_tokens"]
    assert ("POST", "/orgs/platform/repos") in github.writes()


async def test_a_template_the_app_cannot_read_is_named_with_the_fix(registry, app_ctx, github):
    args = {"name": "billing-api", "template": "acme/secret-template"}
    result = await registry.call(CREATE, args, app_ctx)
    assert not result.ok
    assert "no template repository acme/secret-template the App can read" in result.error
    assert "mark it as a template repository" in result.error


async def test_a_personal_account_is_refused_with_what_to_do_instead(
    registry, app_ctx, github, admin
):
    admin.add_account("octocat", 99, type="User")
    result = await registry.call(CREATE, {"name": "billing-api", "owner": "octocat"}, app_ctx)
    assert not result.ok
    assert "octocat is a personal account" in result.error
    assert "Create octocat/billing-api on GitHub yourself" in result.error
    assert github.writes() == []


async def test_an_owner_without_the_app_installed_is_told_to_install_it(registry, app_ctx, github):
    result = await registry.call(CREATE, {"name": "billing-api", "owner": "elsewhere"}, app_ctx)
    assert not result.ok and "The App is not installed on elsewhere" in result.error
    assert github.writes() == []


async def test_protection_waits_for_the_branch_of_a_freshly_generated_repository(
    registry, app_ctx, github, admin
):
    not_yet = httpx.Response(404, json=gh.error("Branch not found"))
    github.fail("PUT", r"/protection$", not_yet)
    out = ok(
        await registry.call(PROTECTED, {"name": "billing-api", "required_reviews": 2}, app_ctx)
    )
    puts = [c for c in github.calls if c[0] == "PUT"]
    assert len(puts) == 2 and out["required_reviews"] == 2
    rules = admin.protection[("acme/billing-api", "main")]
    assert rules["required_pull_request_reviews"]["required_approving_review_count"] == 2


async def test_a_refused_protection_names_the_permission_and_keeps_the_repository(
    registry, app_ctx, github, admin
):
    refused = httpx.Response(403, json=gh.error("Resource not accessible by integration", 403))
    github.fail("PUT", r"/protection$", refused)
    result = await registry.call(PROTECTED, {"name": "billing-api"}, app_ctx)
    assert not result.ok
    assert "acme/billing-api was created" in result.error
    assert "**Administration: Read and write**" in result.error and "/idp retry" in result.error
    assert "acme/billing-api" in admin.repos  # the retry reuses it


async def test_chosen_checks_replace_the_workflow_jobs_and_none_means_no_status_checks(
    app_ctx, github, admin
):
    forge = app_ctx.forge
    await forge.protect_branch(HOME, "main", required_checks=[], enforce_admins=False)
    await forge.protect_branch(HOME, "main", required_reviews=3, required_checks=["build", "build"])
    first, second = [c[2] for c in github.calls if c[0] == "PUT"]
    assert first["required_status_checks"] is None and first["enforce_admins"] is False
    assert second["required_status_checks"] == {"strict": True, "checks": [{"context": "build"}]}
    with pytest.raises(ForgeError, match="0 to 6"):
        await forge.protect_branch(HOME, "main", required_reviews=7, required_checks=[])


async def test_on_github_enterprise_server_the_same_calls_go_to_its_api(
    registry, settings, redis_conn, no_unmocked_http
):
    ghes = gh.Where(api="https://ghe.example.com/api/v3")
    server = gh.FakeGitHub(no_unmocked_http, at=ghes)
    admin = FakeRepoAdmin(server, no_unmocked_http)
    app_settings = gh.as_app(settings).model_copy(update={"github_api_url": ghes.api})
    forge = GitHubForge(app_settings, redis_conn)
    ctx = ToolContext(settings=app_settings, forge=forge, repo=HOME, approved=True)
    out = ok(await registry.call(PROTECTED, {"name": "billing-api"}, ctx))
    assert out["url"] == "https://ghe.example.com/acme/billing-api"
    assert admin.protection[("acme/billing-api", "main")] == DEFAULT_PROTECTION


async def test_bad_names_are_refused_with_a_suggestion(registry, local):
    result = await registry.call(CREATE, {"name": "Billing_API"}, local)
    assert not result.ok and "try 'billing-api'" in result.error
    result = await registry.call(CREATE, {"name": "billing", "template": "just-a-name"}, local)
    assert not result.ok and "OWNER/REPO" in result.error


# -- LocalForge -----------------------------------------------------------------------------


def git(path, *args: str) -> str:
    run = subprocess.run(["git", *args], cwd=path, capture_output=True, text=True, check=True)
    return run.stdout.strip()


async def test_locally_the_repository_is_a_git_repository_with_its_protection_on_file(
    registry, local
):
    forge: LocalForge = local.forge
    first = ok(
        await registry.call(PROTECTED, {"name": "billing-api", "description": "Bills"}, local)
    )
    again = ok(await registry.call(PROTECTED, {"name": "billing-api"}, local))
    repo = RepoRef("acme", "billing-api")
    assert (first["created"], again["created"]) == (True, False)
    assert await forge.read_file(repo, "README.md") is not None
    assert forge.protection(repo) == {"main": DEFAULT_PROTECTION}
    assert forge.repository_settings(repo) == {
        "private": True,
        "description": "Bills",
        "template": None,
    }
    stored = forge.root / "protection" / "acme" / "billing-api.json"
    assert json.loads(stored.read_text())["main"]["enforce_admins"] is True
    assert forge.writes["create_repository"] == 1 and forge.writes["protect_branch"] == 2


async def test_locally_a_template_gives_its_files_in_one_fresh_commit(registry, local):
    forge: LocalForge = local.forge
    template = RepoRef("acme", "service-template")
    await forge.commit_files(template, "main", {"Makefile": "test:\n\ttrue\n"}, "Add Makefile")
    args = {"name": "billing-api", "template": "acme/service-template"}
    ok(await registry.call(CREATE, args, local))
    repo = RepoRef("acme", "billing-api")
    assert await forge.read_file(repo, "Makefile") == "test:\n\ttrue\n"
    assert git(forge.repo_path(repo), "rev-list", "--count", "main") == "1"


async def test_locally_a_missing_template_or_branch_is_a_clear_error(registry, local):
    args = {"name": "billing-api", "template": "acme/no-such-template"}
    result = await registry.call(CREATE, args, local)
    assert not result.ok and "no template repository acme/no-such-template" in result.error
    assert not (local.forge.repo_path(RepoRef("acme", "billing-api")) / ".git").exists()
    with pytest.raises(ForgeError, match="Branch develop does not exist"):
        await local.forge.protect_branch(HOME, "develop", required_checks=["Test"])


async def test_locally_protection_keeps_the_stricter_rules_on_file(registry, local):
    forge: LocalForge = local.forge
    ok(await registry.call(PROTECTED, {"name": "billing-api"}, local))
    repo = RepoRef("acme", "billing-api")
    stored = forge.root / "protection" / "acme" / "billing-api.json"
    rules = json.loads(stored.read_text())
    rules["main"]["required_pull_request_reviews"]["required_approving_review_count"] = 4
    rules["main"]["required_conversation_resolution"] = True
    stored.write_text(json.dumps(rules))

    ok(await registry.call(PROTECTED, {"name": "billing-api", "enforce_admins": False}, local))

    kept = forge.protection(repo)["main"]
    assert kept["required_pull_request_reviews"]["required_approving_review_count"] == 4
    assert kept["required_conversation_resolution"] is True and kept["enforce_admins"] is True


async def test_another_repository_on_disk_is_refused_locally(registry, local):
    other = ToolContext(
        settings=local.settings, session=session(), forge=local.forge, repo=HOME, approved=True
    )
    ok(await registry.call(CREATE, {"name": "billing-api"}, other))

    result = await registry.call(PROTECTED, {"name": "billing-api"}, local)

    assert not result.ok and "the App did not create it for this request" in result.error
    assert local.forge.protection(RepoRef("acme", "billing-api")) == {}
