"""Org defaults as users see them: `/idp help` shows the merged permissions and who set each,
a refusal names the org file, a bad file gets its one comment, and `idp-copilot config show`
prints the settings in force with their origin. GitHubForge against the fake GitHub."""

from __future__ import annotations

import json

import pytest

from app.cli import main
from app.repo_config import CONFIG_PATH
from tests import github_api as gh
from tests.job_world import World
from tests.test_init_repo import INSTALLATION_URL, installation

ORG = f"{gh.OWNER}/.github"
ORG_WHERE = f"{ORG}:{CONFIG_PATH}"
CREATE = "/idp create-service payments-api --lang go"


@pytest.fixture
def world(settings, redis_conn, no_unmocked_http, monkeypatch) -> World:
    return World(settings, redis_conn, no_unmocked_http, monkeypatch)


def org_file(world: World, text: str) -> None:
    world.github.repo_files[ORG] = {CONFIG_PATH: text}


def org_reads(world: World) -> int:
    return sum(1 for m, path, _ in world.github.calls if path.startswith(f"/repos/{ORG}/contents"))


def row(help_text: str, verb: str) -> str:
    (line,) = [line for line in help_text.splitlines() if line.startswith(f"| `{verb}` |")]
    return line


def test_help_shows_the_merged_permissions_and_where_each_came_from(world):
    org_file(world, "permissions:\n  deploy: admin\n  set: maintain\n")
    world.config("_extends: .github\npermissions:\n  apply: admin\n")

    world.comment("/idp help", sender="alice")

    (help_text,) = world.replies()
    assert row(help_text, "deploy") == f"| `deploy` | admin | org .github file `{ORG_WHERE}` |"
    assert row(help_text, "set") == f"| `set` | maintain | org .github file `{ORG_WHERE}` |"
    assert row(help_text, "apply") == (
        f"| `apply` | admin | repository file `{gh.OWNER}/{gh.NAME}:{CONFIG_PATH}` |"
    )
    assert row(help_text, "plan") == "| `plan` | write | built-in default |"
    # alice has write: `set` is no longer hers here
    may_run = help_text.split("You may run:")[1].split("\n")[0]
    assert "`plan`" in may_run and "`set`" not in may_run


def test_a_refusal_names_the_org_file_that_raised_the_permission(world):
    org_file(world, "permissions:\n  create-service: admin\n")

    world.comment(CREATE, sender="alice")

    (refusal,) = world.replies()
    assert "needs **admin** permission" in refusal
    assert f"(`{ORG_WHERE}` asks for it)" in refusal
    assert world.github.pulls == {}


def test_a_weaker_repository_permission_is_refused_once_and_the_org_value_holds(world):
    org_file(world, "permissions:\n  create-service: maintain\n")
    world.config("permissions:\n  create-service: write\n")

    world.comment(CREATE, sender="alice")
    world.comment(CREATE, sender="alice")

    replies = world.replies()
    config_errors = [r for r in replies if "idp-copilot.yml` is not valid" in r]
    assert len(config_errors) == 1
    assert "uses the organization's settings" in config_errors[0]
    assert (
        "`permissions.create-service: 'write' is below maintain, which the organization's file "
        f"{ORG_WHERE} sets`"
    ) in config_errors[0]
    assert any("needs **maintain** permission" in r for r in replies)
    assert world.github.pulls == {}


def test_a_bad_org_file_is_named_in_its_comment(world):
    org_file(world, "defaults:\n  language: 3go\n")

    world.comment("/idp status", sender="alice")

    error = next(r for r in world.replies() if "is not valid" in r)
    assert error.startswith(f"`{ORG_WHERE}` is not valid, so the repositories of acme use")
    assert "line 2: `defaults.language:" in error


def test_the_org_file_is_read_once_for_several_jobs(world):
    org_file(world, "labels: [org-label]\n")

    world.comment("/idp status", sender="alice")
    world.comment("/idp help", sender="alice")

    assert org_reads(world) == 1


def test_a_repository_outside_the_installation_reads_as_no_org_file(world):
    world.config("labels: [mine]\n")

    world.comment("/idp help", sender="alice")

    (help_text,) = world.replies()
    assert org_reads(world) == 1  # GitHub answered 404
    assert row(help_text, "apply") == "| `apply` | maintain | built-in default |"


# -- idp-copilot config show -----------------------------------------------------------------


@pytest.fixture
def github(no_unmocked_http):
    fake = gh.FakeGitHub(no_unmocked_http)
    no_unmocked_http.get(INSTALLATION_URL).respond(200, json=installation())
    return fake


def show(app_settings, monkeypatch, *args: str) -> int:
    for name, value in {
        "GITHUB_APP_ID": app_settings.github_app_id,
        "GITHUB_APP_PRIVATE_KEY": app_settings.private_key(),
        "REDIS_URL": app_settings.redis_url,
        "IDP_REDIS_PREFIX": app_settings.redis_prefix,
        "IDP_FORGE": "github",
    }.items():
        monkeypatch.setenv(name, str(value))
    return main(["config", "show", f"{gh.OWNER}/{gh.NAME}", *args])


def test_config_show_prints_every_setting_with_where_it_came_from(
    github, app_settings, monkeypatch, capsys
):
    github.repo_files[ORG] = {CONFIG_PATH: "permissions:\n  deploy: admin\nlabels: [org]\n"}
    github.push("main", {CONFIG_PATH: "_extends: .github\ndefaults:\n  language: go\n"}, "cfg")

    assert show(app_settings, monkeypatch) == 0

    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == f"# Settings in force for {gh.OWNER}/{gh.NAME}"
    assert f"org .github file {ORG_WHERE} < repository file" in lines[1]
    by_key = {line.split(":")[0]: line for line in lines[2:]}
    assert by_key["permissions.deploy"].endswith(f"# org .github file {ORG_WHERE}")
    assert "permissions.deploy: admin" in by_key["permissions.deploy"]
    assert by_key["labels"].startswith('labels: ["org"]')
    assert by_key["defaults.language"].endswith(
        f"# repository file {gh.OWNER}/{gh.NAME}:{CONFIG_PATH}"
    )
    assert by_key["permissions.apply"].endswith("# built-in default")
    assert by_key["manifests_path"].startswith("manifests_path: services/{name}")


def test_config_show_as_json_and_with_a_refused_file(github, app_settings, monkeypatch, capsys):
    github.repo_files[ORG] = {CONFIG_PATH: "permissions:\n  apply: admin\n"}
    github.push("main", {CONFIG_PATH: "permissions:\n  apply: maintain\n"}, "cfg")

    assert show(app_settings, monkeypatch, "--json") == 1

    captured = capsys.readouterr()
    data = json.loads(captured.out)
    assert data["settings"]["permissions.apply"] == {
        "value": "admin",
        "from": f"org .github file {ORG_WHERE}",
    }
    assert [f["kind"] for f in data["files"]] == ["org"]
    assert "is below admin" in captured.err and "is below admin" in data["error"]
