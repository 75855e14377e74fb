"""GitHub Actions on `FakeGitHub`: workflow runs a test makes fail on a branch, their jobs
and steps, the job logs (served the way GitHub serves them: a 302 to a short-lived download
URL on another host, which honours a Range header), and re-runs of the failed jobs; plus the
`workflow_run` and `check_suite` webhook payloads GitHub sends when a run or suite completes.

GitHub's pages, which tests/test_github_standin_contract_ci.py holds this to:
- https://docs.github.com/en/rest/actions/workflow-jobs#list-jobs-for-a-workflow-run
  (`{total_count, jobs}`, paged; `filter=latest` by default; permission `actions: read`)
- https://docs.github.com/en/rest/actions/workflow-jobs#download-job-logs-for-a-workflow-run
  (302, `Location` of a URL that expires after a minute; `actions: read`)
- https://docs.github.com/en/rest/actions/workflow-runs#re-run-failed-jobs-from-a-workflow-run
  (201; `actions: write`)
- https://docs.github.com/en/webhooks/webhook-events-and-payloads#workflow_run and
  #check_suite (`pull_requests` is empty when the head branch is in a fork)
"""

from __future__ import annotations

import itertools
from typing import Any

import httpx

from tests import github_rules as rules
from tests import payloads
from tests.github_api import WHEN, Where, app_user

LOGS_HOST = "results-receiver.actions.githubusercontent.com"
JOBS_DOC = f"{rules.DOCS}/actions/workflow-jobs#list-jobs-for-a-workflow-run"
LOGS_DOC = f"{rules.DOCS}/actions/workflow-jobs#download-job-logs-for-a-workflow-run"
RERUN_DOC = f"{rules.DOCS}/actions/workflow-runs#re-run-failed-jobs-from-a-workflow-run"
Steps = list[tuple[str, str]]  # (step name, conclusion)


def workflow_job(job_id: int, run: dict, name: str, conclusion: str, steps: Steps, at: Where):
    """A job as "List jobs for a workflow run" returns it."""
    return {
        "id": job_id,
        "run_id": run["id"],
        "run_url": f"{at.url}/actions/runs/{run['id']}",
        "run_attempt": run["run_attempt"],
        "node_id": f"CR_kwDO{job_id}",
        "head_sha": run["head_sha"],
        "url": f"{at.url}/actions/jobs/{job_id}",
        "html_url": f"{at.html}/actions/runs/{run['id']}/job/{job_id}",
        "status": "completed",
        "conclusion": conclusion,
        "created_at": WHEN,
        "started_at": WHEN,
        "completed_at": WHEN,
        "name": name,
        "steps": [
            {
                "name": step,
                "status": "completed",
                "conclusion": outcome,
                "number": number,
                "started_at": WHEN,
                "completed_at": WHEN,
            }
            for number, (step, outcome) in enumerate(steps, 1)
        ],
        "check_run_url": f"{at.url}/check-runs/{job_id}",
        "labels": ["ubuntu-latest"],
        "runner_id": 1,
        "runner_name": "GitHub Actions 1",
        "runner_group_id": 2,
        "runner_group_name": "GitHub Actions",
        "workflow_name": run["name"],
        "head_branch": run["head_branch"],
    }


class FakeActions:
    """Workflow runs, jobs, logs and re-runs of the FakeGitHub (mixed into it)."""

    at: Where
    refs: dict[str, str]
    pulls: dict[int, dict[str, Any]]
    _ids: itertools.count

    def _init_actions(self) -> None:
        self.runs: dict[int, dict[str, Any]] = {}
        self.jobs: dict[int, dict[str, Any]] = {}
        self.logs: dict[int, str] = {}
        self.reruns: list[int] = []
        self.log_downloads: list[httpx.Request] = []
        self.log_ranges = True  # False: the storage host sends the whole log, as some do

    # -- what a test does -------------------------------------------------------------------

    def fail_run(
        self,
        branch: str,
        name: str = "ci",
        jobs: list[tuple[str, str, Steps, str]] = (),  # type: ignore[assignment]
    ) -> dict[str, Any]:
        """A completed workflow run on `branch`'s head with jobs (name, conclusion, steps,
        log); its conclusion is `failure` when a job failed."""
        run_id = next(self._ids)
        failed = any(conclusion == "failure" for _, conclusion, _, _ in jobs)
        run = {
            "id": run_id,
            "name": name,
            "head_branch": branch,
            "head_sha": self.refs[branch],
            "run_attempt": 1,
            "status": "completed",
            "conclusion": "failure" if failed else "success",
            "jobs": [],
        }
        self.runs[run_id] = run
        for job_name, conclusion, steps, log in jobs:
            job_id = next(self._ids)
            self.jobs[job_id] = workflow_job(job_id, run, job_name, conclusion, steps, self.at)
            self.logs[job_id] = log
            run["jobs"].append(job_id)
        return run

    def workflow_run_completed(self, run: dict[str, Any], *, fork: bool = False) -> dict:
        """The `workflow_run.completed` delivery for `run` (sender: the App's bot, whose push
        started it); a fork's run has an empty `pull_requests`."""
        at = self.at
        branch = run["head_branch"]
        pulls = [
            {
                "url": f"{at.url}/pulls/{number}",
                "id": 900 + number,
                "number": number,
                "head": {"ref": branch, "sha": run["head_sha"], "repo": _repo_ref(at)},
                "base": {"ref": "main", "sha": self.refs["main"], "repo": _repo_ref(at)},
            }
            for number, p in sorted(self.pulls.items())
            if p["branch"] == branch and not fork
        ]
        body = {
            "id": run["id"],
            "name": run["name"],
            "node_id": f"WFR_kwLO{run['id']}",
            "head_branch": branch,
            "head_sha": run["head_sha"],
            "path": f".github/workflows/{run['name']}.yml",
            "display_title": "Add service",
            "run_number": 12,
            "event": "push",
            "status": "completed",
            "conclusion": run["conclusion"],
            "workflow_id": 161335,
            "check_suite_id": 414944374,
            "check_suite_node_id": "MDEwOkNoZWNrU3VpdGU0MTQ5NDQzNzQ=",
            "url": f"{at.url}/actions/runs/{run['id']}",
            "html_url": f"{at.html}/actions/runs/{run['id']}",
            "pull_requests": pulls,
            "created_at": WHEN,
            "updated_at": WHEN,
            "actor": app_user(at),
            "triggering_actor": app_user(at),
            "run_attempt": run["run_attempt"],
            "run_started_at": WHEN,
            "jobs_url": f"{at.url}/actions/runs/{run['id']}/jobs",
            "logs_url": f"{at.url}/actions/runs/{run['id']}/logs",
            "check_suite_url": f"{at.url}/check-suites/414944374",
            "artifacts_url": f"{at.url}/actions/runs/{run['id']}/artifacts",
            "cancel_url": f"{at.url}/actions/runs/{run['id']}/cancel",
            "rerun_url": f"{at.url}/actions/runs/{run['id']}/rerun",
            "previous_attempt_url": None,
            "workflow_url": f"{at.url}/actions/workflows/161335",
            "head_commit": {"id": run["head_sha"], "message": "Add service", "timestamp": WHEN},
            "repository": _repo_ref(at),
            "head_repository": _repo_ref(at),
        }
        return _delivery("completed", {"workflow_run": body}, app_user(at))

    def check_suite_completed(
        self, branch: str, app_slug: str, conclusion: str = "failure", app_id: int = 29310
    ) -> dict:
        """The `check_suite.completed` delivery of app `app_slug` on `branch`'s head."""
        at, sha = self.at, self.refs[branch]
        pulls = [
            {
                "url": f"{at.url}/pulls/{number}",
                "id": 900 + number,
                "number": number,
                "head": {"ref": branch, "sha": sha, "repo": _repo_ref(at)},
                "base": {"ref": "main", "sha": self.refs["main"], "repo": _repo_ref(at)},
            }
            for number, p in sorted(self.pulls.items())
            if p["branch"] == branch
        ]
        suite = {
            "id": next(self._ids),
            "node_id": "MDEwOkNoZWNrU3VpdGUxMTg1Nzg4MzQ=",
            "head_branch": branch,
            "head_sha": sha,
            "status": "completed",
            "conclusion": conclusion,
            "url": f"{at.url}/check-suites/118578834",
            "before": "0" * 40,
            "after": sha,
            "pull_requests": pulls,
            "app": {"id": app_id, "slug": app_slug, "name": app_slug.title()},
            "created_at": WHEN,
            "updated_at": WHEN,
            "latest_check_runs_count": 1,
            "check_runs_url": f"{at.url}/check-suites/118578834/check-runs",
            "head_commit": {"id": sha, "message": "Add service", "timestamp": WHEN},
        }
        return _delivery("completed", {"check_suite": suite}, payloads.user("octocat"))

    # -- routes -----------------------------------------------------------------------------

    def _actions_routes(self, repo: str) -> list[tuple[str, str, Any, rules.Needs]]:
        return [
            (
                "GET",
                repo + r"/actions/runs/(?P<run_id>\d+)/jobs",
                self._list_jobs,
                rules.read("actions"),
            ),
            (
                "GET",
                repo + r"/actions/jobs/(?P<job_id>\d+)/logs",
                self._job_logs,
                rules.read("actions"),
            ),
            (
                "POST",
                repo + r"/actions/runs/(?P<run_id>\d+)/rerun-failed-jobs",
                self._rerun_failed,
                rules.write("actions"),
            ),
        ]

    def _install_log_host(self, router: Any) -> None:
        route = router.route(method="GET", host=LOGS_HOST, path__regex=r"^/logs/(?P<job_id>\d+)$")
        route.mock(side_effect=self._download_log)

    def _list_jobs(self, request: httpx.Request, body: Any, run_id: str) -> httpx.Response:
        run = self.runs.get(int(run_id))
        if run is None:
            return rules.not_found(JOBS_DOC)
        jobs = [self.jobs[j] for j in run["jobs"]]
        chunk, headers = rules.page(request, jobs, f"{self.at.url}/actions/runs/{run_id}/jobs")
        return rules.answer({"total_count": len(jobs), "jobs": list(chunk)}, headers=headers)

    def _job_logs(self, request: httpx.Request, body: Any, job_id: str) -> httpx.Response:
        if int(job_id) not in self.logs:
            return rules.not_found(LOGS_DOC)
        location = f"https://{LOGS_HOST}/logs/{job_id}?sig=fake-{next(self._ids)}&se=60s"
        return httpx.Response(302, headers={"Location": location})

    def _download_log(self, request: httpx.Request, job_id: str) -> httpx.Response:
        """The storage host: no GitHub token needed (the URL is signed); a suffix Range
        (`bytes=-N`) gets the last N bytes with 206, as HTTP range requests work."""
        self.log_downloads.append(request)
        data = self.logs[int(job_id)].encode()
        wanted = request.headers.get("range", "")
        if self.log_ranges and wanted.startswith("bytes=-") and wanted[7:].isdigit():
            if not data:
                return httpx.Response(416, headers={"Content-Range": "bytes */0"})
            part = data[-int(wanted[7:]) :]
            first = len(data) - len(part)
            content_range = f"bytes {first}-{len(data) - 1}/{len(data)}"
            return httpx.Response(206, content=part, headers={"Content-Range": content_range})
        return httpx.Response(200, content=data, headers={"Content-Type": "text/plain"})

    def _rerun_failed(self, request: httpx.Request, body: Any, run_id: str) -> httpx.Response:
        run = self.runs.get(int(run_id))
        if run is None:
            return rules.not_found(RERUN_DOC)
        if run["status"] != "completed":
            return rules.answer(
                rules.error_body("This workflow is already running", 403, RERUN_DOC), 403
            )
        self.reruns.append(int(run_id))
        run.update(status="queued", conclusion=None, run_attempt=run["run_attempt"] + 1)
        return rules.answer({}, 201)


def _repo_ref(at: Where) -> dict:
    return {"id": 1296269, "url": at.url, "name": at.name}


def _delivery(action: str, objects: dict, sender: dict) -> dict:
    return {
        "action": action,
        **objects,
        "repository": payloads.repository(),
        "organization": {"login": "acme", "id": 9919},
        "sender": sender,
        "installation": {"id": payloads.INSTALLATION_ID, "node_id": "MDIzOkludGVncmF0aW9u"},
    }
