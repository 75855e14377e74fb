"""The steps after `create_repository` as tools: `push_service_files` and
`protect_repository_branch` act only on a repository this session created in its own
account, push the workspace in one commit, and protect at least as asked while keeping what
the branch already had, on GitHub (the stand-in) and on the LocalForge."""

from __future__ import annotations

import pytest

from app.domain.service import ServiceRequest
from app.domain.session import Session
from app.github.forge import RepoRef
from app.github.github_forge import GitHubForge
from app.github.local_forge import LocalForge
from tests import github_api as gh
from tests.github_repos_api import FakeRepoAdmin
from tools.registry import ToolRegistry, ToolResult, default_registry
from tools.spec import ToolContext

pytestmark = pytest.mark.anyio
HOME = RepoRef(gh.OWNER, gh.NAME, gh.INSTALLATION_ID)
REPO = "acme/billing-api"
FILES = {
    "services/billing-api/k8s/base/deployment.yaml": "kind: Deployment\n",
    "docs/billing-api.md": "# billing-api\n",
}
PUSH = {"repository": REPO, "service": "billing-api"}


@pytest.fixture(scope="module")
def registry() -> ToolRegistry:
    return default_registry()


def session() -> Session:
    s = Session(id="acme/payments#7", repo="acme/payments", number=7)
    s.request = ServiceRequest(name="billing-api", language="go")
    s.files = dict(FILES)
    return s


@pytest.fixture
def admin(github, no_unmocked_http) -> FakeRepoAdmin:
    return FakeRepoAdmin(github, no_unmocked_http)


@pytest.fixture
def app_ctx(settings, redis_conn, admin) -> ToolContext:
    app_settings = gh.as_app(settings)
    forge = GitHubForge(app_settings, redis_conn)
    s = session()
    return ToolContext(
        settings=app_settings, session=s, forge=forge, repo=HOME, approved=True, files=s.files
    )


def ok(result: ToolResult) -> dict:
    assert result.ok, result.error
    return result.output


async def test_the_push_refuses_a_repository_this_session_did_not_create(registry, app_ctx, admin):
    admin.add_repo(REPO)

    result = await registry.call("push_service_files", PUSH, app_ctx)

    assert not result.ok and "did not create acme/billing-api for this request" in result.error
    protect = await registry.call("protect_repository_branch", {"repository": REPO}, app_ctx)
    assert not protect.ok and "leaves it alone" in protect.error
    assert admin.protection == {}


async def test_another_account_is_refused_even_when_the_session_lists_it(registry, app_ctx):
    app_ctx.session.created_repos.append("other-org/billing-api")

    result = await registry.call(
        "push_service_files", {**PUSH, "repository": "other-org/billing-api"}, app_ctx
    )

    assert not result.ok and "outside acme" in result.error


async def test_the_push_needs_approval(registry, app_ctx, github):
    app_ctx.approved = False

    result = await registry.call("push_service_files", PUSH, app_ctx)

    assert not result.ok and "/idp apply" in result.error and github.calls == []


async def test_files_are_pushed_once_and_protection_keeps_stricter_rules(
    registry, app_ctx, admin, github
):
    ok(await registry.call("create_repository", {"name": "billing-api"}, app_ctx))
    first = ok(await registry.call("push_service_files", PUSH, app_ctx))
    again = ok(await registry.call("push_service_files", PUSH, app_ctx))

    git = admin.git[REPO]
    assert git.files("main") == {"README.md": "# billing-api\n", **FILES}
    assert (first["changed"], again["changed"]) == (True, False)
    assert first["pushed_paths"] == sorted(FILES)

    # Someone tightened the branch by hand: three reviews, a linear history.
    admin.protection[(REPO, "main")] = {
        "required_status_checks": None,
        "enforce_admins": False,
        "required_pull_request_reviews": {"required_approving_review_count": 3},
        "restrictions": None,
        "required_linear_history": True,
    }
    args = {
        "repository": REPO,
        "service": "billing-api",
        "protection": {"required_reviews": 1, "enforce_admins": True, "required_checks": []},
    }
    out = ok(await registry.call("protect_repository_branch", args, app_ctx))

    written = admin.protection[(REPO, "main")]
    assert written["required_pull_request_reviews"]["required_approving_review_count"] == 3
    assert written["required_linear_history"] is True and written["enforce_admins"] is True
    assert out["required_reviews"] == 3
    assert out["summary"].endswith(
        "Where the branch's protection was already stricter, it was kept."
    )


async def test_locally_the_new_repository_gets_the_files_and_its_protection(
    registry, tmp_path, settings
):
    forge = LocalForge(tmp_path / "forge")
    s = session()
    ctx = ToolContext(settings=settings, session=s, forge=forge, repo=HOME, approved=True)
    ctx.files = s.files
    ok(await registry.call("create_repository", {"name": "billing-api"}, ctx))
    ok(await registry.call("push_service_files", PUSH, ctx))
    ok(await registry.call("protect_repository_branch", {"repository": REPO}, ctx))

    repo = RepoRef("acme", "billing-api")
    for path, text in FILES.items():
        assert await forge.read_file(repo, path) == text
    assert forge.protection(repo)["main"]["required_status_checks"] is None
    assert forge.protection(repo)["main"]["enforce_admins"] is True
