"""`LocalForge`: the `Forge` on this machine, for dry runs and the demo. No network.

Under `root`: `repos/OWNER/NAME` is a git repository per target repo (branches and commits
are made with git plumbing and a temporary index, so nothing is checked out);
`comments/OWNER/NAME/NUMBER/ID.md` holds one comment each, with `ID.reactions.json` beside
it (the App's reactions as bare contents, a person's as {"user", "content"}); `pulls/`,
`checks/` and `labels/` hold JSON files per repository, and so do `settings/` (what
`create_repository` was asked for) and `protection/` (each protected branch's rules).
"""

from __future__ import annotations

import asyncio
import json
import re
import tempfile
from pathlib import Path
from typing import Any

from app.domain.ci import CiJob
from app.domain.todo import marker
from app.github.errors import ForgeError
from app.github.forge import (
    CHECK_CONCLUSIONS,
    PERMISSION_RANK,
    REACTIONS,
    CommitCheck,
    CommitInfo,
    Permission,
    PullRequestInfo,
    PullRequestState,
    RepoRef,
    validate_branch,
    validate_path,
)
from app.github.local_git import NO_REF as _NO_REF
from app.github.local_git import git as _git
from app.github.local_git import json_file as _json_file
from app.github.local_git import locked as _locked
from app.github.local_repos import LocalRepositories
from app.github.local_reviews import LocalReviews

_SHA = re.compile(r"^[0-9a-f]{7,40}$")
# Who the App's own reactions are from, as GitHub names an App's bot user.
APP_LOGIN = "idp-copilot[bot]"


class LocalForge(LocalRepositories, LocalReviews):
    """The `Forge` protocol on local files (`LocalFiles` says where they live)."""

    def comments(self, repo: RepoRef, number: int) -> dict[int, str]:
        """The comments on an issue or PR, by id, oldest first."""
        folder = self._area("comments", repo) / str(number)
        return {int(p.stem): p.read_text() for p in _comment_files(folder)}

    def reactions(self, repo: RepoRef, comment_id: int) -> list[str]:
        """The reactions' contents on a comment, oldest first, whoever made them."""
        return [content for _, content in self._reaction_entries(repo, comment_id)]

    def react_as(self, repo: RepoRef, comment_id: int, login: str, content: str) -> None:
        """A person's reaction on a comment (what they would click on GitHub), for the demo
        and tests; not a write of the App."""
        if content not in REACTIONS:
            raise ForgeError(f"{content!r} is not a reaction: use one of {sorted(REACTIONS)}.")
        with _json_file(self._reactions_file(repo, comment_id), []) as reactions:
            reactions.append({"user": login, "content": content})

    def _reaction_entries(self, repo: RepoRef, comment_id: int) -> list[tuple[str, str]]:
        path = self._reactions_file(repo, comment_id)
        entries = json.loads(path.read_text()) if path.exists() else []
        # The App's own reactions are stored as bare contents; a person's name their user.
        return [
            (APP_LOGIN, e) if isinstance(e, str) else (e["user"], e["content"]) for e in entries
        ]

    def pull_requests(self, repo: RepoRef) -> list[dict[str, Any]]:
        path = self._area("pulls", repo).with_suffix(".json")
        return json.loads(path.read_text()) if path.exists() else []

    def check_runs(self, repo: RepoRef) -> list[dict[str, Any]]:
        path = self._area("checks", repo).with_suffix(".json")
        return json.loads(path.read_text()) if path.exists() else []

    def labels(self, repo: RepoRef, number: int) -> list[str]:
        path = self._area("labels", repo).with_suffix(".json")
        return json.loads(path.read_text()).get(str(number), []) if path.exists() else []

    # -- comments and reactions -------------------------------------------------------------

    async def upsert_todo_comment(
        self, repo: RepoRef, number: int, session_id: str, body: str, comment_id: int | None
    ) -> int:
        tag = marker(session_id)
        body = body if tag in body else f"{tag}\n{body}"
        return await asyncio.to_thread(self._upsert, repo, number, tag, body, comment_id)

    def _upsert(
        self, repo: RepoRef, number: int, tag: str, body: str, comment_id: int | None
    ) -> int:
        with _locked(self._area("comments", repo) / ".lock"):
            path = self._comment_file(repo, comment_id) if comment_id is not None else None
            if path is None:
                folder = self._area("comments", repo) / str(number)
                path = next((p for p in _comment_files(folder) if tag in p.read_text()), None)
            if path is None:
                return self._new_comment(repo, number, body)
            if path.read_text() != body:
                self.writes["update_comment"] += 1
                path.write_text(body)
            return int(path.stem)

    async def post_comment(self, repo: RepoRef, number: int, body: str) -> int:
        def post() -> int:
            with _locked(self._area("comments", repo) / ".lock"):
                return self._new_comment(repo, number, body)

        return await asyncio.to_thread(post)

    def _new_comment(self, repo: RepoRef, number: int, body: str) -> int:
        area = self._area("comments", repo)
        ids = [int(p.stem) for p in area.glob("*/*.md") if p.stem.isdigit()]
        comment_id = max(ids, default=0) + 1
        (area / str(number)).mkdir(parents=True, exist_ok=True)
        (area / str(number) / f"{comment_id}.md").write_text(body)
        self.writes["create_comment"] += 1
        return comment_id

    def _comment_file(self, repo: RepoRef, comment_id: int) -> Path | None:
        return next(iter(self._area("comments", repo).glob(f"*/{int(comment_id)}.md")), None)

    def _reactions_file(self, repo: RepoRef, comment_id: int) -> Path:
        found = self._comment_file(repo, comment_id)
        # Reactions on comments we did not write (the requester's) go in a folder of their own.
        folder = found.parent if found else self._area("comments", repo) / "others"
        return folder / f"{int(comment_id)}.reactions.json"

    async def add_reaction(self, repo: RepoRef, comment_id: int, content: str) -> None:
        if content not in REACTIONS:
            raise ForgeError(f"{content!r} is not a reaction: use one of {sorted(REACTIONS)}.")

        def react() -> None:
            with _json_file(self._reactions_file(repo, comment_id), []) as reactions:
                reactions.append(content)
            self.writes["create_reaction"] += 1

        await asyncio.to_thread(react)

    async def list_reactions(self, repo: RepoRef, comment_id: int) -> list[tuple[str, str]]:
        return await asyncio.to_thread(self._reaction_entries, repo, comment_id)

    # -- repository contents ----------------------------------------------------------------

    async def default_branch(self, repo: RepoRef) -> str:
        return "main"

    async def read_file(self, repo: RepoRef, path: str, ref: str | None = None) -> str | None:
        validate_path(path)
        ref = ref or "main"
        if not _SHA.fullmatch(ref):
            validate_branch(ref)  # also keeps a ref that looks like an option away from git

        def read() -> str | None:
            cwd = self._ensure_repo(repo)
            if _git(cwd, "cat-file", "-t", f"{ref}:{path}", check=False) != "blob":
                return None
            return _git(cwd, "cat-file", "blob", f"{ref}:{path}", strip=False)

        return await asyncio.to_thread(read)

    async def commit_files(
        self, repo: RepoRef, branch: str, files: dict[str, str], message: str
    ) -> CommitInfo:
        """One commit with every changed file on `branch` (from main when new); none when
        nothing changes."""
        validate_branch(branch)
        for path in files:
            validate_path(path)
        return await asyncio.to_thread(self._commit, repo, branch, files, message)

    def _commit(
        self, repo: RepoRef, branch: str, files: dict[str, str], message: str
    ) -> CommitInfo:
        cwd = self._ensure_repo(repo)
        head = _git(cwd, "rev-parse", "--verify", "-q", f"refs/heads/{branch}", check=False)
        base = head or _git(cwd, "rev-parse", "--verify", "refs/heads/main")
        with tempfile.TemporaryDirectory() as scratch:
            env = {"GIT_INDEX_FILE": str(Path(scratch) / "index")}
            _git(cwd, "read-tree", base, env=env)
            listing = _git(cwd, "ls-tree", "-r", "-z", base, "--", *files, strip=False)
            modes = {
                line.split("\t", 1)[1]: line.split(" ", 1)[0]
                for line in listing.split("\0")
                if "\t" in line
            }
            entries = []
            for path, text in sorted(files.items()):
                blob = _git(cwd, "hash-object", "-w", "--stdin", stdin=text)
                mode = "100755" if modes.get(path) == "100755" else "100644"
                entries.append(f"{mode} {blob}\t{path}\n")
            _git(cwd, "update-index", "--add", "--index-info", stdin="".join(entries), env=env)
            tree = _git(cwd, "write-tree", env=env)
        if tree == _git(cwd, "rev-parse", f"{base}^{{tree}}"):
            return CommitInfo(sha=base, branch=branch, changed=False)
        sha = _git(cwd, "commit-tree", tree, "-p", base, "--no-gpg-sign", "-F", "-", stdin=message)
        # Compare-and-swap: fails if the branch moved (or appeared) since we read it.
        _git(cwd, "update-ref", "-m", "idp-copilot", f"refs/heads/{branch}", sha, head or _NO_REF)
        self.writes["create_commit"] += 1
        return CommitInfo(sha=sha, branch=branch, changed=True)

    # -- pull requests, checks, labels, permissions -----------------------------------------

    async def ensure_pull_request(
        self, repo: RepoRef, branch: str, title: str, body: str, draft: bool = False
    ) -> PullRequestInfo:
        validate_branch(branch)
        return await asyncio.to_thread(self._ensure_pull, repo, branch, title, body, draft)

    def _ensure_pull(
        self, repo: RepoRef, branch: str, title: str, body: str, draft: bool
    ) -> PullRequestInfo:
        cwd = self._ensure_repo(repo)
        head = _git(cwd, "rev-parse", "--verify", "-q", f"refs/heads/{branch}", check=False)
        if head is None:
            raise ForgeError(f"Branch {branch} does not exist in {cwd}: commit files first.")
        with _json_file(self._area("pulls", repo).with_suffix(".json"), []) as pulls:
            pull = next((p for p in pulls if p["branch"] == branch and p["state"] == "open"), None)
            created = pull is None
            if pull is None:
                issues = [int(p.name) for p in self._area("comments", repo).glob("[0-9]*")]
                # Issues and pull requests share numbers on GitHub; so they do here.
                number = max([p["number"] for p in pulls] + issues, default=0) + 1
                pull = {"number": number, "branch": branch, "state": "open", "draft": draft}
                pull["url"] = f"{cwd.as_uri()}#pull-{number}"
                pulls.append(pull)
                self.writes["create_pull"] += 1
            elif (pull["title"], pull["body"]) != (title, body):
                self.writes["update_pull"] += 1
            pull |= {"title": title, "body": body, "head_sha": head}
        return PullRequestInfo(pull["number"], pull["url"], branch, head, created)

    # -- upkeep: the tree, a pull request's state, the dashboard issue ----------------------

    async def list_files(self, repo: RepoRef, ref: str) -> list[str]:
        validate_branch(ref)

        def listing() -> list[str]:
            out = _git(self._ensure_repo(repo), "ls-tree", "-r", "-z", "--name-only", ref)
            return sorted(path for path in (out or "").split("\0") if path)

        return await asyncio.to_thread(listing)

    def _read_area(self, kind: str, repo: RepoRef) -> str | None:
        path = self._area(kind, repo).with_suffix(".json")
        return path.read_text() if path.is_file() else None

    async def upsert_issue(
        self, repo: RepoRef, number: int | None, title: str, body: str, marker: str
    ) -> int:
        def upsert() -> int:
            with _json_file(self._area("issues", repo).with_suffix(".json"), []) as issues:
                found = next(
                    (i for i in issues if i["number"] == number and i["state"] == "open"), None
                ) or next((i for i in issues if i["state"] == "open" and marker in i["body"]), None)
                if found is None:
                    pulls = json.loads(self._read_area("pulls", repo) or "[]")
                    taken = [i["number"] for i in issues] + [p["number"] for p in pulls]
                    found = {"number": max(taken, default=0) + 1, "state": "open"}
                    issues.append(found)
                    self.writes["create_issue"] += 1
                elif (found["title"], found["body"]) != (title, body):
                    self.writes["update_issue"] += 1
                found |= {"title": title, "body": body}
                return int(found["number"])

        return await asyncio.to_thread(upsert)

    async def pin_issue(self, repo: RepoRef, number: int) -> None:
        def pin() -> None:
            with _json_file(self._area("issues", repo).with_suffix(".json"), []) as issues:
                found = next((i for i in issues if i["number"] == number), None)
                if found is None:
                    raise ForgeError(f"Could not resolve to an Issue with the number of {number}.")
                found["pinned"] = True

        await asyncio.to_thread(pin)

    async def create_check_run(
        self, repo: RepoRef, head_sha: str, name: str, conclusion: str, title: str, summary: str
    ) -> int:
        if conclusion not in CHECK_CONCLUSIONS:
            raise ForgeError(
                f"{conclusion!r} is not a check conclusion: use one of {sorted(CHECK_CONCLUSIONS)}."
            )

        def record() -> int:
            with _json_file(self._area("checks", repo).with_suffix(".json"), []) as runs:
                runs.append(
                    {
                        "id": len(runs) + 1,
                        "head_sha": head_sha,
                        "name": name,
                        "conclusion": conclusion,
                        "title": title,
                        "summary": summary,
                    }
                )
                self.writes["create_check_run"] += 1
                return len(runs)

        return await asyncio.to_thread(record)

    async def add_labels(self, repo: RepoRef, number: int, labels: list[str]) -> None:
        def record() -> None:
            with _json_file(self._area("labels", repo).with_suffix(".json"), {}) as by_number:
                names = by_number.setdefault(str(number), [])
                names += [label for label in labels if label not in names]
            self.writes["add_labels"] += 1

        if labels:
            await asyncio.to_thread(record)

    # A local repository has no CI: no run reaches a LocalForge session, and a re-run says so.
    async def list_run_jobs(self, repo: RepoRef, run_id: int) -> list[CiJob]:
        return []

    async def job_log_tail(self, repo: RepoRef, job_id: int, limit: int) -> str:
        return ""

    async def rerun_failed_jobs(self, repo: RepoRef, run_id: int) -> None:
        raise ForgeError("A local repository has no GitHub Actions runs to re-run.")

    async def granted_permissions(self, repo: RepoRef) -> dict[str, str] | None:
        return dict(self.granted)

    async def pull_request_state(self, repo: RepoRef, number: int) -> PullRequestState | None:
        """A local pull request: nothing computes merges here, so an open one is mergeable."""

        def read() -> PullRequestState | None:
            with _json_file(self._area("pulls", repo).with_suffix(".json"), []) as pulls:
                pull = next((p for p in pulls if p["number"] == number), None)
            if pull is None:
                return None
            return PullRequestState(
                number=number,
                state=pull["state"],
                merged=bool(pull.get("merged")),
                draft=bool(pull.get("draft")),
                mergeable=pull.get("mergeable", True),
                mergeable_state=pull.get("mergeable_state", "clean"),
                head_sha=pull.get("head_sha", ""),
                base_ref=pull.get("base", "main"),
            )

        return await asyncio.to_thread(read)

    async def commit_checks(self, repo: RepoRef, sha: str) -> list[CommitCheck]:
        """The check runs recorded on `sha` (the newest of each name)."""

        def read() -> list[CommitCheck]:
            with _json_file(self._area("checks", repo).with_suffix(".json"), []) as runs:
                latest = {r["name"]: r for r in runs if r["head_sha"] == sha}
            return [CommitCheck(n, "completed", r["conclusion"]) for n, r in latest.items()]

        return await asyncio.to_thread(read)

    async def permission(self, repo: RepoRef, username: str) -> Permission:
        level = self._permissions.get(username.lower(), "admin")
        return level if level in PERMISSION_RANK else "none"  # type: ignore[return-value]


def _comment_files(folder: Path) -> list[Path]:
    return sorted((p for p in folder.glob("*.md") if p.stem.isdigit()), key=lambda p: int(p.stem))
