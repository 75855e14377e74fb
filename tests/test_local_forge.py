"""LocalForge on a tmp_path: a real git repository per target repo, comment files found by
their marker, one pull request per branch, and no commit when nothing changed."""

from __future__ import annotations

import subprocess

import pytest

from app.domain.todo import marker
from app.github.errors import ForgeError
from app.github.forge import RepoRef, git_blob_sha
from app.github.local_forge import LocalForge
from tests.test_github_forge import FILES

pytestmark = pytest.mark.anyio
REPO = RepoRef("acme", "payments", 4242)


@pytest.fixture
def forge(tmp_path, monkeypatch):
    # No git identity anywhere: the forge must bring its own.
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for name in ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "EMAIL"):
        monkeypatch.delenv(name, raising=False)
    return LocalForge(tmp_path / "forge")


def git(forge: LocalForge, *args: str) -> str:
    cwd = forge.repo_path(REPO)
    return subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, check=True
    ).stdout


def todo(session: str, text: str) -> str:
    return f"{marker(session)}\n## Create payments-api\n\n{text}\n"


async def test_all_files_land_in_one_commit_on_a_branch_from_main(forge):
    info = await forge.commit_files(REPO, "idp/payments-api", FILES, "Add payments-api")

    assert info.changed and info.branch == "idp/payments-api"
    log = git(forge, "log", "--format=%s|%an", "idp/payments-api").splitlines()
    assert log == ["Add payments-api|IDP Copilot", "Initial commit|IDP Copilot"]
    listed = git(forge, "ls-tree", "-r", "--name-only", "idp/payments-api").split()
    assert sorted(listed) == sorted(["README.md", *FILES])
    for path, text in FILES.items():
        assert git(forge, "show", f"idp/payments-api:{path}") == text
    assert git(forge, "rev-parse", "idp/payments-api").strip() == info.sha
    assert git(forge, "status", "--porcelain") == ""  # nothing checked out or left behind


async def test_the_same_files_again_make_no_second_commit(forge):
    first = await forge.commit_files(REPO, "idp/payments-api", FILES, "Add payments-api")
    again = await forge.commit_files(REPO, "idp/payments-api", FILES, "Add payments-api")

    assert (again.changed, again.sha) == (False, first.sha)
    assert git(forge, "rev-list", "--count", "idp/payments-api").strip() == "2"


async def test_a_changed_file_is_committed_on_top_of_a_human_commit(forge):
    await forge.commit_files(REPO, "idp/payments-api", FILES, "Add payments-api")
    human = await forge.commit_files(REPO, "idp/payments-api", {"NOTES.md": "ok\n"}, "Notes")
    changed = {**FILES, "services/payments-api/k8s/base/service.yaml": "kind: Service # v2\n"}

    info = await forge.commit_files(REPO, "idp/payments-api", changed, "Re-plan")

    assert git(forge, "rev-parse", f"{info.sha}^").strip() == human.sha
    diff = git(forge, "diff", "--name-only", human.sha, info.sha).split()
    assert diff == ["services/payments-api/k8s/base/service.yaml"]
    assert await forge.read_file(REPO, "NOTES.md", "idp/payments-api") == "ok\n"


async def test_read_file_gives_text_or_none(forge):
    await forge.commit_files(REPO, "main", {"config/app.yml": "name: ünïcode\n"}, "config")

    assert await forge.read_file(REPO, "config/app.yml") == "name: ünïcode\n"
    assert await forge.read_file(REPO, "config/missing.yml") is None
    assert await forge.read_file(REPO, "config") is None  # a folder is not a file
    assert await forge.read_file(REPO, "config/app.yml", "no-such-branch") is None


@pytest.mark.parametrize("branch", ["../main", "-x", "idp/x.lock", "idp x", "a..b"])
async def test_bad_branch_names_are_refused(forge, branch):
    with pytest.raises(ForgeError, match="Branch name"):
        await forge.commit_files(REPO, branch, FILES, "x")


@pytest.mark.parametrize("path", ["../escape.txt", "/abs.txt", ".git/hooks/pre-commit"])
async def test_bad_paths_are_refused_and_nothing_is_written_outside(forge, tmp_path, path):
    with pytest.raises(ForgeError, match="File path"):
        await forge.commit_files(REPO, "idp/x", {path: "x"}, "x")
    assert not (tmp_path / "escape.txt").exists()


async def test_a_repo_name_cannot_leave_the_forge_folder(forge):
    with pytest.raises(ForgeError, match="not a valid GitHub owner or repository name"):
        await forge.commit_files(RepoRef("acme", ".."), "idp/x", FILES, "x")


async def test_an_orgs_github_repository_is_a_repository_like_any_other(forge):
    org = RepoRef("acme", ".github")
    assert await forge.read_file(org, ".github/idp-copilot.yml") is None
    await forge.commit_files(org, "main", {".github/idp-copilot.yml": "labels: [org]\n"}, "x")
    assert await forge.read_file(org, ".github/idp-copilot.yml") == "labels: [org]\n"


async def test_the_pull_request_file_is_written_once_then_kept_up_to_date(forge):
    await forge.commit_files(REPO, "idp/payments-api", FILES, "Add payments-api")

    opened = await forge.ensure_pull_request(REPO, "idp/payments-api", "Add payments-api", "v1")
    again = await forge.ensure_pull_request(REPO, "idp/payments-api", "Add payments-api", "v2")

    assert opened.created and not again.created and again.number == opened.number
    assert opened.url.startswith("file://")
    [pull] = forge.pull_requests(REPO)
    assert (pull["branch"], pull["body"], pull["head_sha"]) == (
        "idp/payments-api",
        "v2",
        git(forge, "rev-parse", "idp/payments-api").strip(),
    )


async def test_a_pull_request_needs_its_branch(forge):
    with pytest.raises(ForgeError, match="does not exist"):
        await forge.ensure_pull_request(REPO, "idp/never-committed", "t", "b")


async def test_the_todo_comment_is_created_once_then_edited_in_place(forge):
    first = await forge.upsert_todo_comment(REPO, 7, "s1", todo("s1", "- [ ] plan"), None)
    again = await forge.upsert_todo_comment(REPO, 7, "s1", todo("s1", "- [x] plan"), first)

    assert again == first
    assert forge.comments(REPO, 7) == {first: todo("s1", "- [x] plan")}


async def test_a_lost_comment_id_is_found_again_by_the_marker(forge):
    await forge.post_comment(REPO, 7, "Thanks!")
    ours = await forge.upsert_todo_comment(REPO, 7, "s1", todo("s1", "- [ ] plan"), None)
    other = await forge.upsert_todo_comment(REPO, 7, "s2", todo("s2", "- [ ] other"), None)

    found = await forge.upsert_todo_comment(REPO, 7, "s1", todo("s1", "- [x] plan"), None)

    assert found == ours and other != ours
    assert forge.comments(REPO, 7)[ours] == todo("s1", "- [x] plan")
    assert len(forge.comments(REPO, 7)) == 3


async def test_reactions_checks_labels_and_permissions_are_recorded(tmp_path):
    forge = LocalForge(tmp_path / "forge", permissions={"Mallory": "read"})
    comment = await forge.post_comment(REPO, 7, "/idp create-service payments-api")
    await forge.add_reaction(REPO, comment, "eyes")
    await forge.add_reaction(REPO, 99, "rocket")  # a comment the forge did not write
    check = await forge.create_check_run(REPO, "abc1234", "idp-copilot", "success", "ok", "all")
    await forge.add_labels(REPO, 7, ["idp", "new-service"])
    await forge.add_labels(REPO, 7, ["idp"])

    assert forge.reactions(REPO, comment) == ["eyes"]
    assert forge.reactions(REPO, 99) == ["rocket"]
    assert forge.check_runs(REPO) == [
        {
            "id": check,
            "head_sha": "abc1234",
            "name": "idp-copilot",
            "conclusion": "success",
            "title": "ok",
            "summary": "all",
        }
    ]
    assert forge.labels(REPO, 7) == ["idp", "new-service"]
    assert await forge.permission(REPO, "mallory") == "read"
    assert await forge.permission(REPO, "octocat") == "admin"


def test_git_blob_sha_matches_git(tmp_path):
    for text in ["", "hello\n", "ünïcode ✓\n" * 100]:
        out = subprocess.run(
            ["git", "hash-object", "--stdin"], input=text.encode(), capture_output=True, check=True
        )
        assert git_blob_sha(text) == out.stdout.decode().strip()


async def test_a_local_pull_request_is_mergeable_and_its_checks_are_the_recorded_ones(forge):
    info = await forge.commit_files(REPO, "idp/payments-api", FILES, "Add payments-api")
    opened = await forge.ensure_pull_request(REPO, "idp/payments-api", "Add payments-api", "v1")
    await forge.create_check_run(REPO, info.sha, "idp-copilot", "failure", "bad", "x")
    await forge.create_check_run(REPO, info.sha, "idp-copilot", "success", "ok", "all")

    state = await forge.pull_request_state(REPO, opened.number)
    checks = await forge.commit_checks(REPO, info.sha)

    assert (state.mergeable, state.mergeable_state, state.head_sha) == (True, "clean", info.sha)
    assert [(c.name, c.green) for c in checks] == [("idp-copilot", True)]
    assert await forge.pull_request_state(REPO, 999) is None


async def test_upkeep_reads_the_tree_and_keeps_one_dashboard_issue(forge):
    await forge.commit_files(REPO, "main", FILES, "Add payments-api")
    await forge.commit_files(REPO, "idp/payments-api", {"x.txt": "x\n"}, "x")
    pull = await forge.ensure_pull_request(REPO, "idp/payments-api", "t", "b")

    files = await forge.list_files(REPO, "main")
    first = await forge.upsert_issue(
        REPO, None, "IDP Copilot dashboard", "<!-- m -->\none", "<!-- m -->"
    )
    lost = await forge.upsert_issue(
        REPO, None, "IDP Copilot dashboard", "<!-- m -->\ntwo", "<!-- m -->"
    )
    await forge.pin_issue(REPO, first)

    assert files == sorted([*FILES, "README.md"])  # main starts with a README
    assert (await forge.pull_request_state(REPO, pull.number)).status == "open"
    assert await forge.pull_request_state(REPO, 999) is None
    assert first == lost != pull.number  # found again by its marker; numbers are shared
    with pytest.raises(ForgeError, match="Could not resolve"):
        await forge.pin_issue(REPO, 999)
