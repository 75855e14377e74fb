"""The `Forge`: everything the agent and the publisher do on GitHub, behind one protocol.

`GitHubForge` (githubkit, App auth) talks to GitHub; `LocalForge` writes to a local git repo
and markdown files (dry runs, the demo). Every write is idempotent: re-running a workflow
edits the same comment, updates the same branch and finds the same pull request.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Literal, Protocol

Permission = Literal["admin", "maintain", "write", "triage", "read", "none"]
PERMISSION_RANK: dict[str, int] = {
    "none": 0,
    "read": 1,
    "triage": 2,
    "write": 3,
    "maintain": 4,
    "admin": 5,
}


@dataclass(frozen=True)
class RepoRef:
    """A repository and the App installation that may act on it."""

    owner: str
    name: str
    installation_id: int | None = None

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"

    @classmethod
    def parse(cls, full_name: str, installation_id: int | None = None) -> RepoRef:
        owner, _, name = full_name.partition("/")
        if not owner or not name or "/" in name:
            raise ValueError(f"expected OWNER/REPO, got {full_name!r}")
        return cls(owner, name, installation_id)


@dataclass(frozen=True)
class CommitInfo:
    """The branch head after `commit_files`; `changed` is False when no commit was needed."""

    sha: str
    branch: str
    changed: bool


@dataclass(frozen=True)
class PullRequestInfo:
    number: int
    url: str
    branch: str
    head_sha: str
    created: bool


class ForgeError(Exception):
    """A forge call failed after its retries; the message is safe to show to users."""


REACTIONS = frozenset({"+1", "-1", "laugh", "confused", "heart", "hooray", "rocket", "eyes"})
CHECK_CONCLUSIONS = frozenset(
    {"success", "failure", "neutral", "cancelled", "skipped", "timed_out", "action_required"}
)

# `git check-ref-format`: no control characters, space, ~ ^ : ? * [ \ anywhere.
_BAD_REF_CHARS = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]")


def validate_branch(name: str) -> str:
    """`name` if it is a branch name git and GitHub accept (git's ref-format rules), else
    ForgeError saying which rule it breaks."""
    problem = None
    if not name or len(name) > 200:
        problem = "must be 1 to 200 characters long"
    elif _BAD_REF_CHARS.search(name):
        problem = "must not contain spaces, control characters or any of ~ ^ : ? * [ \\"
    elif ".." in name or "@{" in name or name == "@":
        problem = "must not contain '..' or '@{' or be '@'"
    elif name.startswith(("/", "-")) or name.endswith(("/", ".")) or "//" in name:
        problem = "must not start with '/' or '-', end with '/' or '.', or contain '//'"
    elif any(part.startswith(".") or part.endswith(".lock") for part in name.split("/")):
        problem = "must not have a part that starts with '.' or ends with '.lock'"
    if problem:
        raise ForgeError(f"Branch name {name[:80]!r} is not valid: it {problem}.")
    return name


def validate_path(path: str) -> str:
    """`path` if it is a safe repository-relative file path, else ForgeError: no leading '/',
    no '.', '..' or empty parts, no backslashes or control characters, nothing under .git."""
    parts = path.split("/")
    problem = None
    if not path or len(path) > 1024:
        problem = "must be 1 to 1024 characters long"
    elif path.startswith("/") or "\\" in path or re.search(r"[\x00-\x1f\x7f]", path):
        problem = "must be relative, with '/' separators and no control characters"
    elif any(part in ("", ".", "..") for part in parts):
        problem = "must not contain empty, '.' or '..' parts"
    elif any(part.lower() == ".git" for part in parts):
        problem = "must not point into .git"
    if problem:
        raise ForgeError(f"File path {path[:120]!r} is not valid: it {problem}.")
    return path


def git_blob_sha(content: str) -> str:
    """The git object id of a file with this text: how a forge tells a changed file from an
    unchanged one without reading it."""
    data = content.encode("utf-8")
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


class Forge(Protocol):
    """What the agent may do on a forge. All methods are idempotent where they write."""

    async def upsert_todo_comment(
        self, repo: RepoRef, number: int, session_id: str, body: str, comment_id: int | None
    ) -> int:
        """Edit comment `comment_id`; without one, find our comment by the session marker
        in `body`, else create it. Returns the comment id."""
        ...

    async def post_comment(self, repo: RepoRef, number: int, body: str) -> int:
        """A plain comment (refusals, answers). Returns its id."""
        ...

    async def add_reaction(self, repo: RepoRef, comment_id: int, content: str) -> None:
        """A reaction (`eyes`, `rocket`, `confused`, …) on an issue comment."""
        ...

    async def list_reactions(self, repo: RepoRef, comment_id: int) -> list[tuple[str, str]]:
        """Every reaction on an issue comment as (user login, content), oldest first; empty
        when the comment is gone. GitHub sends no webhook for reactions: read them here."""
        ...

    async def default_branch(self, repo: RepoRef) -> str: ...

    async def read_file(self, repo: RepoRef, path: str, ref: str | None = None) -> str | None:
        """A file's text at `ref` (default branch when None), or None if it does not exist."""
        ...

    async def commit_files(
        self, repo: RepoRef, branch: str, files: dict[str, str], message: str
    ) -> CommitInfo:
        """All `files` in one commit on `branch` (created from the default branch when
        missing), on top of whatever the branch holds. No commit when nothing changes."""
        ...

    async def ensure_pull_request(
        self, repo: RepoRef, branch: str, title: str, body: str, draft: bool = False
    ) -> PullRequestInfo:
        """The open PR from `branch`, created if there is none; its body kept up to date."""
        ...

    async def permission(self, repo: RepoRef, username: str) -> Permission:
        """The user's permission on the repository (collaborator-permission API)."""
        ...

    async def create_check_run(
        self,
        repo: RepoRef,
        head_sha: str,
        name: str,
        conclusion: str,
        title: str,
        summary: str,
    ) -> int:
        """A completed check run on `head_sha` (conclusion: success, failure, neutral, …);
        `summary` is markdown. Returns the check run id."""
        ...

    async def add_labels(self, repo: RepoRef, number: int, labels: list[str]) -> None:
        """Add labels to an issue or pull request (existing labels are kept)."""
        ...
