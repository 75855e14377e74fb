"""GitHubForge against a GitHub stand-in (respx, GitHub-shaped bodies): the installation
token shared through Redis, the todo comment, one commit per change set, one pull request,
permissions, retries, and GitHub Enterprise Server."""

from __future__ import annotations

import json
from datetime import timedelta

import httpx
import pytest

from app.domain.todo import marker
from app.github.errors import ForgeError
from app.github.forge import RepoRef
from app.github.github_forge import GitHubForge
from tests import github_api as gh

REPO = RepoRef(gh.OWNER, gh.NAME, gh.INSTALLATION_ID)
GHES = gh.Where(api="https://ghe.example.com/api/v3")
SECONDARY = {"message": "You have exceeded a secondary rate limit. Please wait a few minutes."}
pytestmark = pytest.mark.anyio
FILES = {
    "services/payments-api/k8s/base/deployment.yaml": "kind: Deployment\n",
    "services/payments-api/k8s/base/service.yaml": "kind: Service\n",
    ".github/workflows/payments-api.yml": "name: payments-api\n",
}


@pytest.fixture
def forge(app_settings, redis_conn):
    return GitHubForge(app_settings, redis_conn)


def todo(session: str, text: str) -> str:
    return f"{marker(session)}\n## Create payments-api\n\n{text}\n"


async def test_two_forges_share_one_installation_token_through_redis(
    github, app_settings, redis_conn
):
    first, second = GitHubForge(app_settings, redis_conn), GitHubForge(app_settings, redis_conn)

    assert await first.default_branch(REPO) == "main"
    assert await second.default_branch(REPO) == "main"

    assert github.token_requests == 1
    # In Redis (not in this process's memory), for a little less than the token's hour.
    keys = redis_conn.keys("idptest:github:auth:*:installation:4242:*")
    [key] = [k for k in keys if not k.endswith(b":grants")]
    assert redis_conn.get(key) == b"ghs_fake0001"
    assert 55 * 60 <= redis_conn.ttl(key) < 60 * 60
    # The permissions the token grants sit beside it, and outlive it a little.
    assert json.loads(redis_conn.get(key + b":grants")) == github.granted
    assert redis_conn.ttl(key + b":grants") > redis_conn.ttl(key)
    repo_gets = [c for c in github.calls if c[:2] == ("GET", "/repos/acme/payments")]
    assert len(repo_gets) == 2


async def test_the_grants_come_with_the_token_and_every_worker_reads_them_from_redis(
    github, app_settings, redis_conn
):
    first, second = GitHubForge(app_settings, redis_conn), GitHubForge(app_settings, redis_conn)

    assert await first.granted_permissions(REPO) == github.granted
    assert await second.granted_permissions(REPO) == github.granted
    assert github.token_requests == 1


async def test_a_token_cached_without_its_grants_is_replaced_by_one_with_them(
    github, app_settings, redis_conn
):
    forge = GitHubForge(app_settings, redis_conn)
    await forge.default_branch(REPO)
    # As an older version left it: the token alone (and the installation changed since).
    redis_conn.delete(*redis_conn.keys("idptest:github:auth:*:grants"))
    github.granted.pop("workflows")

    granted = await GitHubForge(app_settings, redis_conn).granted_permissions(REPO)

    assert granted is not None and "workflows" not in granted and granted["contents"] == "write"
    assert github.token_requests == 2


async def test_requests_carry_the_installation_token(github, forge, no_unmocked_http):
    await forge.post_comment(REPO, 7, "hello")

    sent = [call.request for call in no_unmocked_http.calls if "/comments" in call.request.url.path]
    assert sent[0].headers["Authorization"] == "token ghs_fake0001"


async def test_todo_comment_is_created_once_then_edited(github, forge):
    first = await forge.upsert_todo_comment(REPO, 7, "s1", todo("s1", "- [ ] plan"), None)
    again = await forge.upsert_todo_comment(REPO, 7, "s1", todo("s1", "- [x] plan"), first)

    assert again == first
    assert [c["body"] for c in github.comments.values()] == [todo("s1", "- [x] plan")]
    assert github.writes() == [
        ("POST", "/repos/acme/payments/issues/7/comments"),
        ("PATCH", f"/repos/acme/payments/issues/comments/{first}"),
    ]
    assert forge.writes == {"create_comment": 1, "update_comment": 1}


async def test_a_lost_comment_id_is_found_again_by_the_marker_of_a_bot_comment(github, forge):
    human = gh.user("mallory")
    github.add_comment(7, f"quoting {marker('s1')}", author=human)  # not ours: a User wrote it
    for n in range(120):  # our comment lands on the second page
        github.add_comment(7, f"chatter {n}", author=human)
    ours = github.add_comment(7, todo("s1", "- [ ] plan"))

    found = await forge.upsert_todo_comment(REPO, 7, "s1", todo("s1", "- [x] plan"), None)

    assert found == ours
    assert github.comments[ours]["body"] == todo("s1", "- [x] plan")
    assert github.writes() == [("PATCH", f"/repos/acme/payments/issues/comments/{ours}")]


async def test_an_unchanged_todo_found_by_marker_is_not_rewritten(github, forge):
    ours = github.add_comment(7, todo("s1", "- [x] plan"))

    assert await forge.upsert_todo_comment(REPO, 7, "s1", todo("s1", "- [x] plan"), None) == ours
    assert github.writes() == []


async def test_a_deleted_todo_comment_is_created_again(github, forge):
    first = await forge.upsert_todo_comment(REPO, 7, "s1", todo("s1", "- [ ] plan"), None)
    del github.comments[first]  # someone deleted it on GitHub

    second = await forge.upsert_todo_comment(REPO, 7, "s1", todo("s1", "- [x] plan"), first)

    assert second != first
    assert [c["body"] for c in github.comments.values()] == [todo("s1", "- [x] plan")]


async def test_all_files_land_in_one_commit_on_a_new_branch(github, forge):
    info = await forge.commit_files(REPO, "idp/payments-api", FILES, "Add payments-api")

    assert info.changed and info.branch == "idp/payments-api"
    assert github.writes() == [
        ("POST", "/repos/acme/payments/git/trees"),
        ("POST", "/repos/acme/payments/git/commits"),
        ("POST", "/repos/acme/payments/git/refs"),
    ]
    assert github.refs["idp/payments-api"] == info.sha
    assert github.commits[info.sha]["parents"] == [github.refs["main"]]
    assert github.files("idp/payments-api") == {"README.md": "# payments\n", **FILES}


async def test_committing_the_same_files_again_writes_nothing(github, forge):
    first = await forge.commit_files(REPO, "idp/payments-api", FILES, "Add payments-api")
    github.calls.clear()

    again = await forge.commit_files(REPO, "idp/payments-api", FILES, "Add payments-api")

    assert (again.changed, again.sha) == (False, first.sha)
    assert github.writes() == []


async def test_a_changed_file_updates_the_branch_without_force(github, forge):
    await forge.commit_files(REPO, "idp/payments-api", FILES, "Add payments-api")
    github.calls.clear()
    changed = {**FILES, "services/payments-api/k8s/base/service.yaml": "kind: Service # v2\n"}

    info = await forge.commit_files(REPO, "idp/payments-api", changed, "Re-plan payments-api")

    assert info.changed
    tree_call = next(body for method, path, body in github.calls if path.endswith("/git/trees"))
    assert [entry["path"] for entry in tree_call["tree"]] == [
        "services/payments-api/k8s/base/service.yaml"
    ]
    ref_call = next(body for method, path, body in github.calls if method == "PATCH")
    assert ref_call == {"sha": info.sha, "force": False}


async def test_a_human_commit_on_the_branch_stays_the_parent_of_ours(github, forge):
    await forge.commit_files(REPO, "idp/payments-api", FILES, "Add payments-api")
    human = github.push("idp/payments-api", {"NOTES.md": "reviewed\n"}, "Add notes")
    changed = {**FILES, ".github/workflows/payments-api.yml": "name: payments-api v2\n"}

    info = await forge.commit_files(REPO, "idp/payments-api", changed, "Re-plan")

    assert github.commits[info.sha]["parents"] == [human]
    assert github.files("idp/payments-api")["NOTES.md"] == "reviewed\n"


async def test_a_push_between_our_read_and_our_ref_update_is_kept(github, forge):
    await forge.commit_files(REPO, "idp/payments-api", FILES, "Add payments-api")

    def someone_pushes(request):
        github.push("idp/payments-api", {"NOTES.md": "late push\n"}, "Late push")

    github.fail("PATCH", "/git/refs/heads/", someone_pushes)
    info = await forge.commit_files(REPO, "idp/payments-api", {"a.txt": "a\n"}, "Add a")

    late = github.commits[info.sha]["parents"][0]
    assert github.commits[late]["message"] == "Late push"
    assert github.files("idp/payments-api")["NOTES.md"] == "late push\n"
    assert github.files("idp/payments-api")["a.txt"] == "a\n"


@pytest.mark.parametrize("branch", ["../main", "/idp/x", "idp/x.lock", "idp x", "idp/.hidden"])
async def test_bad_branch_names_are_refused_before_any_call(github, forge, branch):
    with pytest.raises(ForgeError, match="Branch name"):
        await forge.commit_files(REPO, branch, FILES, "x")
    assert github.calls == []


@pytest.mark.parametrize("path", ["../etc/passwd", "/abs.txt", "a//b", ".git/config", "a\\b"])
async def test_bad_file_paths_are_refused_before_any_call(github, forge, path):
    with pytest.raises(ForgeError, match="File path"):
        await forge.commit_files(REPO, "idp/x", {path: "x"}, "x")
    assert github.calls == []


async def test_the_pull_request_is_opened_once_then_found_and_kept_up_to_date(github, forge):
    await forge.commit_files(REPO, "idp/payments-api", FILES, "Add payments-api")

    opened = await forge.ensure_pull_request(REPO, "idp/payments-api", "Add payments-api", "v1")
    same = await forge.ensure_pull_request(REPO, "idp/payments-api", "Add payments-api", "v1")
    edited = await forge.ensure_pull_request(REPO, "idp/payments-api", "Add payments-api", "v2")

    assert opened.created and not same.created and not edited.created
    assert opened.number == same.number == edited.number
    assert opened.url == f"https://github.com/acme/payments/pull/{opened.number}"
    assert opened.head_sha == github.refs["idp/payments-api"]
    assert list(github.pulls.values())[0]["body"] == "v2"
    assert [w for w in github.writes() if "/pulls" in w[1]] == [
        ("POST", "/repos/acme/payments/pulls"),
        ("PATCH", f"/repos/acme/payments/pulls/{opened.number}"),
    ]


async def test_permissions_use_the_finer_role_and_are_cached(github, forge):
    github.permissions |= {
        "alice": ("write", "maintain"),
        "bob": ("read", "triage"),
        "carol": ("admin", "admin"),
        "dave": ("write", "security-reviewer"),  # a custom role: its base permission counts
    }
    seen = {u: await forge.permission(REPO, u) for u in ["alice", "bob", "carol", "dave", "eve"]}

    assert seen == {
        "alice": "maintain",
        "bob": "triage",
        "carol": "admin",
        "dave": "write",
        "eve": "none",  # GitHub answers 404
    }
    github.calls.clear()
    github.permissions["alice"] = ("read", "read")
    assert await forge.permission(REPO, "Alice") == "maintain"  # from the cache
    assert github.calls == []


async def test_read_file_decodes_contents_and_missing_files_are_none(github, forge):
    github.push("main", {"config/app.yml": "replicas: 2\nname: ünïcode\n"}, "config")

    assert await forge.read_file(REPO, "config/app.yml") == "replicas: 2\nname: ünïcode\n"
    assert await forge.read_file(REPO, "config/missing.yml") is None


async def test_a_file_too_large_for_the_contents_api_is_read_from_its_blob(github, forge):
    text = "x" * 64 + "\n"
    github.push("main", {"big.txt": text}, "big file")
    big = {**gh.content_file("big.txt", text), "content": "", "encoding": "none"}
    github.fail("GET", "/contents/big.txt", httpx.Response(200, json=big))

    assert await forge.read_file(REPO, "big.txt") == text


async def test_reactions_check_runs_and_labels(github, forge):
    comment = github.add_comment(7, "/idp create-service payments-api", gh.user())
    await forge.add_reaction(REPO, comment, "eyes")
    check = await forge.create_check_run(
        REPO, github.refs["main"], "idp-copilot", "success", "All valid", "| a | b |"
    )
    await forge.add_labels(REPO, 7, ["idp", "new-service"])

    assert github.reactions == [(comment, "eyes")]
    assert github.check_runs[0]["id"] == check
    assert github.check_runs[0]["output"] == {"title": "All valid", "summary": "| a | b |"}
    assert github.labels[7] == ["idp", "new-service"]
    with pytest.raises(ForgeError, match="not a GitHub reaction"):
        await forge.add_reaction(REPO, comment, "party")


async def test_server_errors_are_retried(github, forge, retry_waits):
    github.fail("GET", r"^/repos/acme/payments$", httpx.Response(502), httpx.Response(503))

    assert await forge.default_branch(REPO) == "main"
    assert len([c for c in github.calls if c[1] == "/repos/acme/payments"]) == 3


async def test_a_secondary_rate_limit_waits_as_long_as_github_asks(github, forge, retry_waits):
    limited = httpx.Response(403, json=SECONDARY, headers={"Retry-After": "7"})
    github.fail("POST", "/comments$", limited)

    assert await forge.post_comment(REPO, 7, "hello") > 0
    assert retry_waits == [7.0]
    assert len(github.comments) == 1


async def test_a_secondary_rate_limit_told_only_in_the_message_is_retried(
    github, forge, retry_waits
):
    github.fail("POST", "/comments$", httpx.Response(403, json=SECONDARY))

    await forge.post_comment(REPO, 7, "hello")

    assert retry_waits == [60.0]  # GitHub's guidance without Retry-After: at least a minute


async def test_a_failed_token_request_is_retried_with_the_call(github, forge, retry_waits):
    github.fail("POST", "/access_tokens$", httpx.Response(502))

    assert await forge.default_branch(REPO) == "main"
    assert github.token_requests == 1  # the second token request succeeded


async def test_rejected_app_credentials_say_what_to_check(github, forge, retry_waits):
    bad = httpx.Response(401, json=gh.error("A JSON web token could not be decoded", 401))
    github.fail("POST", "/access_tokens$", bad)

    with pytest.raises(ForgeError, match="check GITHUB_APP_ID and the private key"):
        await forge.post_comment(REPO, 7, "hello")
    assert retry_waits == [] and github.comments == {}


async def test_timeouts_are_retried(github, forge, retry_waits):
    github.fail("GET", r"^/repos/acme/payments$", httpx.ReadTimeout("slow"))

    assert await forge.default_branch(REPO) == "main"


async def test_after_the_retries_run_out_the_error_says_what_to_do(
    github, app_settings, redis_conn, retry_waits
):
    forge = GitHubForge(app_settings.model_copy(update={"github_max_retries": 2}), redis_conn)
    github.fail("POST", "/comments$", *[httpx.Response(502)] * 3)

    with pytest.raises(ForgeError) as failure:
        await forge.post_comment(REPO, 7, "hello")

    message = str(failure.value)
    assert "kept failing on posting a comment on acme/payments (502) after 3 tries" in message
    assert "/idp retry" in message and "ghs_" not in message
    assert len(retry_waits) == 2 and github.comments == {}


async def test_a_retry_after_longer_than_the_cap_fails_at_once_saying_how_long(
    github, forge, retry_waits
):
    github.fail(
        "POST", "/comments$", httpx.Response(403, json=SECONDARY, headers={"Retry-After": "3600"})
    )

    with pytest.raises(ForgeError, match="asks to wait 3600 s"):
        await forge.post_comment(REPO, 7, "hello")
    assert retry_waits == []


async def test_a_refusal_is_not_retried_and_names_the_missing_permission(
    github, forge, retry_waits
):
    # Either permission lets an App comment; with neither, the stand-in answers 403 as
    # GitHub does, naming both in X-Accepted-GitHub-Permissions.
    github.granted |= {"issues": "read", "pull_requests": "read"}

    with pytest.raises(ForgeError, match=r"lacks the \*\*Issues: Read and write\*\* permission"):
        await forge.post_comment(REPO, 7, "hello")
    assert retry_waits == []
    assert [m for m, p in github.writes() if p.endswith("/comments")] == ["POST"]


async def test_a_refusal_without_github_header_is_named_by_the_endpoint(github, forge):
    # No X-Accepted-GitHub-Permissions header (older GitHub Enterprise Server versions).
    bare = httpx.Response(403, json=gh.error("Resource not accessible by integration", 403))
    github.fail("POST", "/check-runs$", bare)

    with pytest.raises(ForgeError, match=r"\*\*Checks: Read and write\*\*"):
        await forge.create_check_run(REPO, "a" * 40, "idp", "success", "t", "s")


async def test_a_workflow_file_without_the_workflows_permission_is_named_and_not_retried(
    github, forge
):
    github.granted.pop("workflows")

    with pytest.raises(ForgeError, match=r"lacks the \*\*Workflows: Read and write\*\*") as exc:
        await forge.commit_files(REPO, "idp/payments-api", FILES, "Add payments-api")
    assert "refusing to allow a GitHub App to create or update workflow" in str(exc.value)
    assert "idp/payments-api" not in github.refs
    # 422 is also a lost ref race, which is rebuilt; a missing permission is not.
    assert [p for m, p in github.writes() if p.endswith("/git/refs")] == [
        "/repos/acme/payments/git/refs"
    ]


async def test_github_enterprise_server_is_reached_at_its_api_root(
    app_settings, redis_conn, no_unmocked_http
):
    server = gh.FakeGitHub(no_unmocked_http, at=GHES)
    settings = app_settings.model_copy(update={"github_api_url": GHES.api})
    forge = GitHubForge(settings, redis_conn)

    comment = await forge.upsert_todo_comment(REPO, 7, "s1", todo("s1", "- [ ] plan"), None)
    info = await forge.commit_files(REPO, "idp/payments-api", FILES, "Add payments-api")
    pull = await forge.ensure_pull_request(REPO, "idp/payments-api", "Add payments-api", "")

    assert server.token_requests == 1 and comment in server.comments and info.changed
    assert pull.url == f"https://ghe.example.com/acme/payments/pull/{pull.number}"
    requests = [call.request for call in no_unmocked_http.calls]
    assert {r.url.host for r in requests} == {"ghe.example.com"}
    assert all(r.url.path.startswith("/api/v3/") for r in requests)
    assert {r.headers.get("X-GitHub-Api-Version") for r in requests if "/repos/" in r.url.path} == {
        "2022-11-28"
    }


def test_retry_decision_honours_retry_after_and_backs_off():
    from githubkit.exception import SecondaryRateLimitExceeded
    from githubkit.response import Response

    from app.github.auth import RetryPolicy

    request = httpx.Request("POST", "https://api.github.com/repos/acme/payments/pulls")
    raw = httpx.Response(403, json=SECONDARY, headers={"Retry-After": "30"}, request=request)
    limited = SecondaryRateLimitExceeded(Response(raw, dict), timedelta(seconds=30))
    policy = RetryPolicy(max_retries=3, base_delay=2.0, max_delay=60.0)

    assert policy(limited, 0).retry_after == timedelta(seconds=30)
    assert policy(limited, 3).do_retry is False
