"""The GitHub stand-in's Actions endpoints (tests/fake_github_actions.py) behave like GitHub's
where the CI handling depends on them. Each test names the docs.github.com page it follows
and drives the stand-in over HTTP, with an installation token it minted first.
"""

from __future__ import annotations

import importlib

import httpx
import pytest
from githubkit.compat import type_validate_python

from app.github.auth import ENTERPRISE_API_VERSION, LATEST_API_VERSION
from app.github.forge import RepoRef
from app.github.github_forge import GitHubForge
from tests import github_api as gh
from tests.fake_github import FakeGitHub
from tests.fake_github_actions import LOGS_HOST
from tests.test_github_standin_contract import REPO, installation

BRANCH = "idp/acme-payments-7"
STEPS = [("Set up job", "success"), ("Validate manifests", "failure")]


@pytest.fixture
def run(github: FakeGitHub) -> dict:
    github.push(BRANCH, {"README.md": "# x\n"}, "Add service")
    return github.fail_run(BRANCH, "ci", [("validate", "failure", STEPS, "line 1\nerror: bad\n")])


def test_list_jobs_answers_total_count_and_jobs_with_their_steps(github, run):
    """https://docs.github.com/en/rest/actions/workflow-jobs#list-jobs-for-a-workflow-run:
    `{"total_count": N, "jobs": [...]}`, each job with its steps' conclusions."""
    answer = installation(github).get(f"{REPO}/actions/runs/{run['id']}/jobs")

    assert answer.status_code == 200
    body = answer.json()
    assert body["total_count"] == 1
    (job,) = body["jobs"]
    assert (job["run_id"], job["conclusion"], job["head_sha"]) == (
        run["id"],
        "failure",
        run["head_sha"],
    )
    assert [(s["number"], s["name"], s["conclusion"]) for s in job["steps"]] == [
        (1, "Set up job", "success"),
        (2, "Validate manifests", "failure"),
    ]


@pytest.mark.parametrize("version", [LATEST_API_VERSION, ENTERPRISE_API_VERSION])
def test_the_jobs_body_is_what_githubkit_parses(github, run, version):
    """The body validates against the schema of the API versions the App speaks."""
    body = installation(github).get(f"{REPO}/actions/runs/{run['id']}/jobs").json()
    models = importlib.import_module(f"githubkit_schemas.v{version.replace('-', '_')}.models")

    type_validate_python(models.ReposOwnerRepoActionsRunsRunIdJobsGetResponse200, body)


def test_job_logs_answer_302_to_a_download_url_on_another_host(github, run):
    """https://docs.github.com/en/rest/actions/workflow-jobs#download-job-logs-for-a-workflow-run:
    "Gets a redirect URL to download a plain text file of logs … This link expires after 1
    minute. Look for `Location:` in the response header"."""
    (job_id,) = run["jobs"]
    answer = installation(github).get(f"{REPO}/actions/jobs/{job_id}/logs")

    assert answer.status_code == 302
    location = httpx.URL(answer.headers["location"])
    assert location.scheme == "https" and location.host == LOGS_HOST
    # The signed URL needs no token; a suffix range gets the last bytes (206).
    whole = httpx.get(location)
    tail = httpx.get(location, headers={"Range": "bytes=-4"})
    assert whole.status_code == 200 and whole.text == "line 1\nerror: bad\n"
    assert tail.status_code == 206 and tail.text == "bad\n"
    assert tail.headers["content-range"] == "bytes 14-17/18"


def test_actions_endpoints_need_the_actions_permission(github, run):
    """https://docs.github.com/en/rest/authentication/permissions-required-for-github-apps#repository-permissions-for-actions:
    listing jobs and downloading logs need Actions read, re-running needs Actions write."""
    github.granted["actions"] = "read"
    client = installation(github)
    (job_id,) = run["jobs"]

    assert client.get(f"{REPO}/actions/runs/{run['id']}/jobs").status_code == 200
    assert client.get(f"{REPO}/actions/jobs/{job_id}/logs").status_code == 302
    refused = client.post(f"{REPO}/actions/runs/{run['id']}/rerun-failed-jobs")
    assert refused.status_code == 403
    assert refused.headers["X-Accepted-GitHub-Permissions"] == "actions=write"
    github.granted.pop("actions")
    assert installation(github).get(f"{REPO}/actions/runs/{run['id']}/jobs").status_code == 403


def test_re_run_failed_jobs_answers_201_and_starts_a_new_attempt(github, run):
    """https://docs.github.com/en/rest/actions/workflow-runs#re-run-failed-jobs-from-a-workflow-run:
    201 Created; the run starts again as its next attempt, and a run not yet completed cannot
    be re-run."""
    client = installation(github)

    first = client.post(f"{REPO}/actions/runs/{run['id']}/rerun-failed-jobs")
    again = client.post(f"{REPO}/actions/runs/{run['id']}/rerun-failed-jobs")

    assert first.status_code == 201
    assert github.runs[run["id"]]["run_attempt"] == 2
    assert again.status_code == 403
    assert client.post(f"{REPO}/actions/runs/999999/rerun-failed-jobs").status_code == 404


@pytest.mark.anyio
async def test_the_forge_reads_only_the_logs_tail_and_never_sends_its_token_there(
    github, run, app_settings, redis_conn
):
    """The forge follows the 302 itself: the installation token stays with GitHub."""
    forge = GitHubForge(app_settings, redis_conn)
    repo = RepoRef.parse("acme/payments", gh.INSTALLATION_ID)
    (job_id,) = run["jobs"]

    jobs = await forge.list_run_jobs(repo, run["id"])
    tail = await forge.job_log_tail(repo, job_id, 4)

    assert [(j.name, j.failed, [s.name for s in j.failed_steps()]) for j in jobs] == [
        ("validate", True, ["Validate manifests"])
    ]
    assert tail == "bad\n"
    (download,) = github.log_downloads
    assert "authorization" not in download.headers


@pytest.mark.anyio
async def test_a_log_host_that_ignores_the_range_still_yields_only_the_tail(
    github, run, app_settings, redis_conn
):
    """A server may ignore Range and answer 200 with everything (RFC 9110 §14.2): the forge
    keeps the last bytes only."""
    github.log_ranges = False
    repo = RepoRef.parse("acme/payments", gh.INSTALLATION_ID)
    (job_id,) = run["jobs"]

    tail = await GitHubForge(app_settings, redis_conn).job_log_tail(repo, job_id, 4)

    assert tail == "bad\n"
