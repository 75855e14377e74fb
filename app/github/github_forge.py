"""`GitHubForge`: the `Forge` on GitHub (or GitHub Enterprise Server) through githubkit,
acting as the App's installation on each repository.

Writes are idempotent: the todo comment is found again by its marker, all files go into one
commit on top of the branch's current head (never a force push), and the pull request from a
branch is found before one is created. `writes` counts the write calls for budget checks.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from typing import Any
from urllib.parse import quote

from githubkit.exception import RequestFailed

from app.github.auth import (
    is_status,
    lacking_permission,
)
from app.github.errors import ForgeError
from app.github.forge import (
    CHECK_CONCLUSIONS,
    CommitInfo,
    PullRequestInfo,
    RepoRef,
    git_blob_sha,
    validate_branch,
    validate_path,
)
from app.github.github_access import GitHubAccess
from app.github.github_actions import GitHubActions
from app.github.github_checks import GitHubChecks
from app.github.github_comments import GitHubComments
from app.github.github_repos import GitHubRepositories
from app.github.github_reviews import GitHubReviews
from app.github.github_upkeep import GitHubUpkeep

CHECK_SUMMARY_LIMIT = 65_535  # GitHub rejects longer check-run summaries
REF_RACE_ATTEMPTS = 3


class GitHubForge(
    GitHubComments,
    GitHubAccess,
    GitHubRepositories,
    GitHubReviews,
    GitHubActions,
    GitHubChecks,
    GitHubUpkeep,
):
    """The `Forge` protocol on GitHub. One instance per job is fine: tokens live in Redis.
    Its plumbing is `GitHubClient`'s; its parts are the classes it is built from."""

    # -- repository contents ----------------------------------------------------------------

    async def default_branch(self, repo: RepoRef) -> str:
        cached = self._default_branches.get(repo.full_name)
        if cached is None:
            async with self._errors("reading the repository", repo):
                resp = await self._rest(repo).repos.async_get(repo.owner, repo.name)
                cached = resp.parsed_data.default_branch
            self._default_branches[repo.full_name] = cached
        return cached

    async def read_file(self, repo: RepoRef, path: str, ref: str | None = None) -> str | None:
        validate_path(path)
        rest = self._rest(repo)
        async with self._errors(f"reading {path}", repo):
            try:
                kwargs = {"ref": ref} if ref else {}
                resp = await rest.repos.async_get_content(
                    repo.owner, repo.name, quote(path), **kwargs
                )
            except RequestFailed as exc:
                if exc.response.status_code == 404:
                    return None
                raise
            data = resp.parsed_data
            if getattr(data, "type", None) != "file":
                return None  # a directory, symlink or submodule is not a file we can read
            content, encoding = data.content, data.encoding
            if encoding != "base64":  # files over 1 MB come without content: read the blob
                blob = await rest.git.async_get_blob(repo.owner, repo.name, data.sha)
                content, encoding = blob.parsed_data.content, blob.parsed_data.encoding
        return _decode(content, encoding, path)

    async def commit_files(
        self, repo: RepoRef, branch: str, files: dict[str, str], message: str
    ) -> CommitInfo:
        """One commit holding every changed file, on top of the branch head (or the default
        branch's head for a new branch). Nothing is written when no file differs; in that case
        a branch that does not exist yet is not created either."""
        validate_branch(branch)
        for path in files:
            validate_path(path)
        rest = self._rest(repo)
        o, r = repo.owner, repo.name
        async with self._errors(f"committing to branch {branch}", repo):
            for attempt in range(REF_RACE_ATTEMPTS):
                head_sha, exists = await self._branch_head(repo, branch)
                head = await rest.git.async_get_commit(o, r, head_sha)
                base_tree = head.parsed_data.tree.sha
                tree = await rest.git.async_get_tree(o, r, base_tree, recursive="1")
                current = {
                    e.path: (e.mode, e.sha) for e in tree.parsed_data.tree if e.type == "blob"
                }
                # Inline `content` in the tree entries: GitHub writes the blobs itself, so one
                # request replaces one blob request per file.
                entries = [
                    {
                        "path": path,
                        "mode": "100755" if current.get(path, ("",))[0] == "100755" else "100644",
                        "type": "blob",
                        "content": text,
                    }
                    for path, text in sorted(files.items())
                    if current.get(path, ("", ""))[1] != git_blob_sha(text)
                ]
                if not entries:
                    return CommitInfo(sha=head_sha, branch=branch, changed=False)
                self._count("create_tree")
                new_tree = await rest.git.async_create_tree(o, r, base_tree=base_tree, tree=entries)
                if new_tree.parsed_data.sha == base_tree:  # a truncated tree listing misled us
                    return CommitInfo(sha=head_sha, branch=branch, changed=False)
                self._count("create_commit")
                commit = await rest.git.async_create_commit(
                    o, r, message=message, tree=new_tree.parsed_data.sha, parents=[head_sha]
                )
                sha = commit.parsed_data.sha
                try:
                    if exists:
                        # force=False: if someone pushed since we read the head, GitHub refuses
                        # (422) and we rebuild on the new head instead of dropping their work.
                        self._count("update_ref")
                        await rest.git.async_update_ref(
                            o, r, f"heads/{quote(branch)}", sha=sha, force=False
                        )
                    else:
                        self._count("create_ref")
                        await rest.git.async_create_ref(o, r, ref=f"refs/heads/{branch}", sha=sha)
                        self._created_branches.add((repo.full_name.lower(), branch))
                except RequestFailed as exc:
                    # 422 is also how GitHub refuses a workflow file without `workflows`:
                    # a rebuild cannot help there.
                    race = is_status(exc, 422) and lacking_permission(exc) is None
                    if race and attempt + 1 < REF_RACE_ATTEMPTS:
                        continue
                    raise
                return CommitInfo(sha=sha, branch=branch, changed=True)
        raise AssertionError("unreachable: the loop returns or raises")

    async def _branch_head(self, repo: RepoRef, branch: str) -> tuple[str, bool]:
        """The branch's head commit and whether the branch exists (else the default branch's).
        The default branch is read alongside: a new branch needs it now, and the pull
        request from it needs it next."""
        rest = self._rest(repo)
        branch_ref, default = await asyncio.gather(
            rest.git.async_get_ref(repo.owner, repo.name, f"heads/{quote(branch)}"),
            self.default_branch(repo),
            return_exceptions=True,
        )
        if not isinstance(branch_ref, BaseException):
            return branch_ref.parsed_data.object_.sha, True
        if not (isinstance(branch_ref, RequestFailed) and branch_ref.response.status_code == 404):
            raise branch_ref
        if isinstance(default, BaseException):
            raise default
        ref = await rest.git.async_get_ref(repo.owner, repo.name, f"heads/{quote(default)}")
        return ref.parsed_data.object_.sha, False

    # -- pull requests, checks, labels ------------------------------------------------------

    async def ensure_pull_request(
        self, repo: RepoRef, branch: str, title: str, body: str, draft: bool = False
    ) -> PullRequestInfo:
        validate_branch(branch)
        rest = self._rest(repo)
        o, r = repo.owner, repo.name
        async with self._errors(f"opening the pull request from {branch}", repo):
            # A branch this forge has just created has no pull request yet: no need to ask
            # (once; a pull request opened from it since is looked up as any other).
            key = (repo.full_name.lower(), branch)
            new = key in self._created_branches
            self._created_branches.discard(key)
            existing = None if new else await self._open_pull(repo, branch)
            if existing is not None:
                changes = {}
                if existing.title != title:
                    changes["title"] = title
                if (existing.body or "") != body:
                    changes["body"] = body
                if changes:
                    self._count("update_pull")
                    await rest.pulls.async_update(o, r, existing.number, **changes)
                return _pull_info(existing, branch, created=False)
            base = await self.default_branch(repo)
            try:
                self._count("create_pull")
                resp = await rest.pulls.async_create(
                    o, r, title=title, head=branch, base=base, body=body, draft=draft
                )
            except RequestFailed as exc:
                # 422 when another worker opened it a moment ago: return that one.
                existing = await self._open_pull(repo, branch) if is_status(exc, 422) else None
                if existing is None:
                    raise
                return _pull_info(existing, branch, created=False)
            return _pull_info(resp.parsed_data, branch, created=True)

    async def _open_pull(self, repo: RepoRef, branch: str) -> Any | None:
        resp = await self._rest(repo).pulls.async_list(
            repo.owner, repo.name, state="open", head=f"{repo.owner}:{branch}"
        )
        return next((p for p in resp.parsed_data if p.head.ref == branch), None)

    async def create_check_run(
        self, repo: RepoRef, head_sha: str, name: str, conclusion: str, title: str, summary: str
    ) -> int:
        if conclusion not in CHECK_CONCLUSIONS:
            raise ForgeError(
                f"{conclusion!r} is not a check conclusion: use one of {sorted(CHECK_CONCLUSIONS)}."
            )
        async with self._errors("creating a check run", repo):
            self._count("create_check_run")
            resp = await self._rest(repo).checks.async_create(
                repo.owner,
                repo.name,
                name=name,
                head_sha=head_sha,
                status="completed",
                conclusion=conclusion,
                output={"title": title, "summary": summary[:CHECK_SUMMARY_LIMIT]},
            )
            return resp.parsed_data.id

    async def add_labels(self, repo: RepoRef, number: int, labels: list[str]) -> None:
        if not labels:
            return
        async with self._errors("adding labels", repo):
            self._count("add_labels")
            await self._rest(repo).issues.async_add_labels(
                repo.owner, repo.name, number, labels=labels
            )


def _pull_info(pull: Any, branch: str, *, created: bool) -> PullRequestInfo:
    return PullRequestInfo(
        number=pull.number,
        url=pull.html_url,
        branch=branch,
        head_sha=pull.head.sha,
        created=created,
    )


def _decode(content: str, encoding: str, path: str) -> str:
    if encoding != "base64":
        return content
    try:
        return base64.b64decode(content).decode("utf-8", errors="replace")
    except (binascii.Error, ValueError) as exc:
        raise ForgeError(f"GitHub sent {path} in an encoding the App cannot read.") from exc
