"""`idp-copilot init-repo OWNER/REPO`: one pull request adding the issue form and a commented
`.github/idp-copilot.yml`, through GitHubForge against a GitHub stand-in (respx); a second
run finds the same pull request and commits nothing; files the repo has are left alone."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from app.cli import main
from app.config import ConfigError
from app.github.forge import RepoRef
from app.github.local_forge import LocalForge
from app.init_repo import BRANCH, ISSUE_FORM_PATH, issue_form_text, run_init_repo
from app.repo_config import CONFIG_PATH, parse_repo_config
from tests import github_api as gh

ROOT = Path(__file__).resolve().parent.parent
INSTALLATION_URL = f"{gh.API}/repos/{gh.OWNER}/{gh.NAME}/installation"


def installation(installation_id: int = gh.INSTALLATION_ID) -> dict:
    """GET /repos/{owner}/{repo}/installation."""
    return {
        "id": installation_id,
        "account": gh.user(gh.OWNER, id=77, type="Organization"),
        "repository_selection": "selected",
        "access_tokens_url": f"{gh.API}/app/installations/{installation_id}/access_tokens",
        "repositories_url": f"{gh.API}/installation/repositories",
        "html_url": f"https://github.com/organizations/{gh.OWNER}/settings/installations/"
        f"{installation_id}",
        "app_id": int(gh.APP_ID),
        "app_slug": "idp-copilot",
        "target_id": 77,
        "target_type": "Organization",
        "permissions": {"issues": "write", "contents": "write", "pull_requests": "write"},
        "events": ["issues", "issue_comment", "pull_request"],
        "created_at": "2026-01-01T00:00:00Z",
        "updated_at": "2026-01-01T00:00:00Z",
        "single_file_name": None,
        "has_multiple_single_files": False,
        "single_file_paths": [],
        "suspended_by": None,
        "suspended_at": None,
    }


@pytest.fixture
def github(no_unmocked_http):
    fake = gh.FakeGitHub(no_unmocked_http)
    fake.installation_lookup = no_unmocked_http.get(INSTALLATION_URL).respond(
        200, json=installation()
    )
    return fake


def commits_by_app(github) -> int:
    return sum(1 for method, path in github.writes() if path.endswith("/git/commits"))


def test_one_pull_request_adds_the_issue_form_and_the_config(
    github, app_settings, redis_conn, capsys
):
    assert run_init_repo(app_settings, redis_conn, f"{gh.OWNER}/{gh.NAME}") == 0

    (pull,) = github.pulls.values()
    assert (pull["branch"], pull["base"], pull["title"]) == (BRANCH, "main", "Set up IDP Copilot")
    files = github.files(BRANCH)
    assert files[ISSUE_FORM_PATH] == (ROOT / ".github/ISSUE_TEMPLATE/new-service.yml").read_text()
    config, error = parse_repo_config(files[CONFIG_PATH])
    assert error is None and config is not None
    assert config.manifests_path == "services/{name}"
    assert config.auto_deploy_on_merge is False
    assert github.files("main").get(CONFIG_PATH) is None  # nothing lands before the merge
    assert commits_by_app(github) == 1
    assert github.installation_lookup.call_count == 1
    out = capsys.readouterr().out
    assert out.startswith("Opened ") and ISSUE_FORM_PATH in out and CONFIG_PATH in out


def test_running_it_twice_gives_the_same_pull_request_and_no_second_commit(
    github, app_settings, redis_conn, capsys
):
    run_init_repo(app_settings, redis_conn, f"{gh.OWNER}/{gh.NAME}")
    head = github.refs[BRANCH]
    capsys.readouterr()

    run_init_repo(app_settings, redis_conn, f"{gh.OWNER}/{gh.NAME}")

    assert len(github.pulls) == 1
    assert github.refs[BRANCH] == head
    assert commits_by_app(github) == 1
    assert capsys.readouterr().out.startswith("Already open: ")


def test_a_config_the_repo_has_is_left_alone(github, app_settings, redis_conn, capsys):
    own = "manifests_path: apps/{name}\n"
    github.push("main", {CONFIG_PATH: own}, "Our own settings")

    run_init_repo(app_settings, redis_conn, f"{gh.OWNER}/{gh.NAME}")

    files = github.files(BRANCH)
    assert files[CONFIG_PATH] == own
    assert ISSUE_FORM_PATH in files
    (pull,) = github.pulls.values()
    assert f"left as they are:\n- `{CONFIG_PATH}`" in pull["body"]
    assert "Left as they are: .github/idp-copilot.yml" in capsys.readouterr().out


def test_a_repo_that_has_both_files_gets_no_pull_request(github, app_settings, redis_conn, capsys):
    github.push("main", {CONFIG_PATH: "labels: []\n", ISSUE_FORM_PATH: "name: ours\n"}, "setup")

    run_init_repo(app_settings, redis_conn, f"{gh.OWNER}/{gh.NAME}")

    assert github.pulls == {}
    assert github.writes() == []
    assert "nothing to add" in capsys.readouterr().out


def test_a_repo_without_the_app_installed_says_how_to_fix_it(
    no_unmocked_http, app_settings, redis_conn
):
    no_unmocked_http.get(INSTALLATION_URL).respond(
        404, json={"message": "Not Found", "status": "404"}
    )
    with pytest.raises(ConfigError, match="not installed on acme/payments"):
        run_init_repo(app_settings, redis_conn, f"{gh.OWNER}/{gh.NAME}")


def test_a_bad_repo_name_is_refused_with_the_expected_form(app_settings, redis_conn):
    with pytest.raises(ConfigError, match="expected OWNER/REPO"):
        run_init_repo(app_settings, redis_conn, "just-a-name")


def test_dry_run_opens_the_pull_request_on_the_local_forge_once(tmp_path, monkeypatch, capsys):
    root = tmp_path / "forge"
    monkeypatch.setenv("IDP_LOCAL_FORGE_ROOT", str(root))
    monkeypatch.delenv("GITHUB_APP_ID", raising=False)

    assert main(["init-repo", "acme/shop", "--dry-run"]) == 0
    assert main(["init-repo", "acme/shop", "--dry-run"]) == 0

    forge = LocalForge(root)
    repo = RepoRef("acme", "shop")
    (pull,) = forge.pull_requests(repo)
    assert pull["branch"] == BRANCH and pull["title"] == "Set up IDP Copilot"
    count = subprocess.run(
        ["git", "rev-list", "--count", f"main..{BRANCH}"],
        cwd=forge.repo_path(repo),
        capture_output=True,
        text=True,
        check=True,
    )
    assert count.stdout.strip() == "1"
    out = capsys.readouterr().out
    assert out.count("Opened ") == 1 and out.count("Already open: ") == 1


def test_without_app_credentials_it_asks_for_them_instead_of_going_local(monkeypatch, capsys):
    for name in ("GITHUB_APP_ID", "IDP_FORGE"):
        monkeypatch.delenv(name, raising=False)
    assert main(["init-repo", "acme/shop"]) == 2
    assert "set GITHUB_APP_ID and GITHUB_APP_PRIVATE_KEY" in capsys.readouterr().err


def test_the_shipped_issue_form_is_this_repositorys_own():
    assert issue_form_text() == (ROOT / ".github/ISSUE_TEMPLATE/new-service.yml").read_text()
