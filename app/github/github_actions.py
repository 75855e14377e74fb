"""GitHub Actions for `GitHubForge`: the jobs of a failed workflow run, the tail of a job's
log, and a re-run of the failed jobs (CI on the App's pull request, app/handling/ci.py).

GitHub's pages: https://docs.github.com/en/rest/actions/workflow-jobs#list-jobs-for-a-workflow-run,
https://docs.github.com/en/rest/actions/workflow-jobs#download-job-logs-for-a-workflow-run
(302 to a download URL that expires after a minute) and
https://docs.github.com/en/rest/actions/workflow-runs#re-run-failed-jobs-from-a-workflow-run.
"""

from __future__ import annotations

from typing import Any

import httpx
from githubkit import GitHub

from app.domain.ci import CiJob, CiStep
from app.github.auth import app_client, ssl_context
from app.github.errors import ForgeError
from app.github.forge import RepoRef
from app.github.github_client import GitHubClient

JOBS_PER_PAGE = 100
# A run with more jobs than this is not one the App generated; the first pages are enough.
MAX_JOB_PAGES = 5
# Read at most this much of a log whose host ignored the Range header (then the tail kept
# is that of what was read, and says so).
MAX_LOG_READ = 8 * 1024 * 1024


class GitHubActions(GitHubClient):
    """`list_run_jobs`, `job_log_tail` and `rerun_failed_jobs` of the Forge protocol; part
    of `GitHubForge`."""

    _no_redirect: dict[int, GitHub]

    async def list_run_jobs(self, repo: RepoRef, run_id: int) -> list[CiJob]:
        """GET …/actions/runs/{id}/jobs?filter=latest, page by page ({total_count, jobs})."""
        rest = self._rest(repo)
        jobs: list[CiJob] = []
        async with self._errors(f"listing the jobs of workflow run {run_id}", repo):
            for page in range(1, MAX_JOB_PAGES + 1):
                resp = await rest.actions.async_list_jobs_for_workflow_run(
                    repo.owner,
                    repo.name,
                    run_id,
                    filter_="latest",
                    per_page=JOBS_PER_PAGE,
                    page=page,
                )
                data = resp.parsed_data
                jobs += [_job(item) for item in data.jobs]
                if not data.jobs or len(jobs) >= data.total_count:
                    break
        return jobs

    def _redirect_client(self, repo: RepoRef) -> GitHub:
        """The installation's client that hands back a 302 instead of following it: the log's
        download URL is signed, and the installation token must not travel there."""
        cache = self.__dict__.setdefault("_no_redirect", {})
        self._client(repo)  # the installation id check and its sentence
        installation = repo.installation_id or 0
        if installation not in cache:
            cache[installation] = app_client(
                self._settings,
                self._redis,
                installation,
                transport=self._transport,
                throttler=self._throttler,
                retry=self._retry,
                follow_redirects=False,
            )
        return cache[installation]

    async def job_log_tail(self, repo: RepoRef, job_id: int, limit: int) -> str:
        """GET …/actions/jobs/{id}/logs → 302 Location; the last `limit` bytes from there."""
        rest = self._redirect_client(repo).rest(self._version)  # type: ignore[call-overload]
        async with self._errors(f"reading the log of job {job_id}", repo):
            resp = await rest.actions.async_download_job_logs_for_workflow_run(
                repo.owner, repo.name, job_id
            )
        raw = resp.raw_response
        if raw.status_code == 200:  # served directly (no redirect): keep the tail
            return _text(raw.content[-limit:], cut=False)
        location = raw.headers.get("location", "")
        if raw.status_code not in (301, 302, 303, 307) or not location.startswith("https://"):
            raise ForgeError(
                f"GitHub gave no download link for the log of job {job_id} on {repo.full_name}."
            )
        return await self._download_tail(location, limit, job_id)

    async def _download_tail(self, url: str, limit: int, job_id: int) -> str:
        # A suffix range asks the storage host for the last `limit` bytes only (RFC 9110
        # §14.1.2); a host that ignores it sends everything, read up to MAX_LOG_READ.
        timeout = httpx.Timeout(self._settings.github_timeout)
        headers = {"Range": f"bytes=-{limit}", "User-Agent": "idp-copilot"}
        tail, read = bytearray(), 0
        try:
            async with (
                httpx.AsyncClient(
                    transport=self._transport, timeout=timeout, verify=ssl_context()
                ) as http,
                http.stream("GET", url, headers=headers) as got,
            ):
                if got.status_code == 416:  # an empty log has no last bytes
                    return ""
                if got.status_code not in (200, 206):
                    raise ForgeError(
                        f"Downloading the log of job {job_id} failed (HTTP {got.status_code})."
                    )
                async for chunk in got.aiter_bytes():
                    read += len(chunk)
                    tail += chunk
                    del tail[:-limit]
                    if read >= MAX_LOG_READ:
                        break
        except httpx.HTTPError as exc:
            raise ForgeError(f"Downloading the log of job {job_id} failed: {exc}") from exc
        return _text(bytes(tail), cut=read >= MAX_LOG_READ)

    async def rerun_failed_jobs(self, repo: RepoRef, run_id: int) -> None:
        """POST …/actions/runs/{id}/rerun-failed-jobs (201, empty body)."""
        async with self._errors(f"re-running the failed jobs of workflow run {run_id}", repo):
            self._count("rerun_failed_jobs")
            await self._rest(repo).actions.async_re_run_workflow_failed_jobs(
                repo.owner, repo.name, run_id
            )


def _text(data: bytes, *, cut: bool) -> str:
    text = data.decode("utf-8", errors="replace")
    return f"{text}\n… (the log is longer; only its start was read)" if cut else text


def _job(item: Any) -> CiJob:
    steps = tuple(
        CiStep(number=s.number, name=s.name, conclusion=s.conclusion) for s in item.steps or ()
    )
    return CiJob(
        id=item.id,
        name=item.name,
        conclusion=item.conclusion,
        html_url=item.html_url or "",
        steps=steps,
    )
