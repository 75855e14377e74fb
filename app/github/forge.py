"""The `Forge`: everything the agent and the publisher do on GitHub, behind one protocol.

`GitHubForge` (githubkit, App auth) talks to GitHub; `LocalForge` writes to a local git repo
and markdown files (dry runs, the demo). Every write is idempotent: re-running a workflow
edits the same comment, updates the same branch and finds the same pull request.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

from app.domain.ci import CiJob
from app.github.errors import ForgeError
from app.untrusted import linear

if TYPE_CHECKING:
    from app.github.protection import BranchRules

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


@dataclass(frozen=True)
class RepoInfo:
    """A repository `create_repository` made, or found already there (`created` False)."""

    owner: str
    name: str
    url: str
    default_branch: str
    private: bool
    created: bool
    installation_id: int | None = None

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"

    @property
    def ref(self) -> RepoRef:
        """The repository as a `RepoRef` the other forge methods take."""
        return RepoRef(self.owner, self.name, self.installation_id)


@dataclass(frozen=True)
class ReviewComment:
    """One line comment of a review: where it points and what it says. `line` is the line
    of the file on the pull request's head (None when the comment is on the whole file)."""

    id: int
    path: str
    line: int | None
    diff_hunk: str
    body: str
    author: str
    in_reply_to: int | None = None


@dataclass(frozen=True)
class Review:
    """A submitted pull request review with its line comments. `state` is lower case:
    approved, changes_requested, commented, dismissed or pending."""

    id: int
    author: str
    state: str
    body: str
    comments: tuple[ReviewComment, ...] = ()


@dataclass(frozen=True)
class PullRequestState:
    """What `/idp apply`'s requirements read of a pull request (GET …/pulls/{n}).
    `mergeable` is None while GitHub still computes it (it does so lazily, after a read)."""

    number: int
    state: str
    merged: bool
    draft: bool
    mergeable: bool | None
    mergeable_state: str
    head_sha: str
    base_ref: str

    @property
    def status(self) -> str:
        """`open`, `closed` or `merged`."""
        return "merged" if self.merged else self.state


@dataclass(frozen=True)
class CommitCheck:
    """One check on a commit: a check run (`status` queued, in_progress or completed, with
    its `conclusion`) or a commit status context (`status` completed; `conclusion` success,
    failure, error, or None while pending)."""

    name: str
    status: str
    conclusion: str | None

    @property
    def green(self) -> bool:
        # GitHub's branch protection counts these conclusions as passing.
        return self.status == "completed" and self.conclusion in ("success", "neutral", "skipped")


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


# GitHub's rules: logins are letters, digits and single inner hyphens (39 at most);
# repository names are letters, digits, '.', '_' and '-' (100 at most), never '.' or '..'.
# RE2 (linear, and `$` is the end of the text); the 39-character limit is checked by length
# because RE2 has no look-ahead.
_LOGIN_RE = linear(r"^[A-Za-z0-9](?:-?[A-Za-z0-9])*$")
_REPO_NAME_RE = linear(r"^[A-Za-z0-9._-]{1,100}$")


def is_login(value: str) -> bool:
    """True when `value` follows GitHub's rule for account names."""
    return len(value) <= 39 and _LOGIN_RE.fullmatch(value) is not None


def validate_repo_name(owner: str, name: str) -> RepoRef:
    """`owner/name` as a RepoRef if both follow GitHub's naming rules, else ForgeError saying
    which rule is broken (also keeps them from reaching a URL path unchecked)."""
    if not is_login(owner):
        raise ForgeError(
            f"{owner[:60]!r} is not a GitHub account name: use 1 to 39 letters, digits and "
            "single hyphens, not starting or ending with a hyphen."
        )
    if not _REPO_NAME_RE.fullmatch(name) or name in (".", ".."):
        raise ForgeError(
            f"{name[:120]!r} is not a GitHub repository name: use 1 to 100 letters, digits, "
            "'.', '_' and '-'."
        )
    return RepoRef(owner, name)


def template_ref(template: str | None) -> RepoRef | None:
    """The template repository named OWNER/REPO, None for none, else ForgeError."""
    if not template or not template.strip():
        return None
    owner, _, name = template.strip().partition("/")
    if not name or "/" in name:
        raise ForgeError(f"A template is named OWNER/REPO, not {template[:120]!r}.")
    return validate_repo_name(owner, name)


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

    async def granted_permissions(self, repo: RepoRef) -> dict[str, str] | None:
        """The App permissions the installation on `repo` granted (`{"contents": "write",
        …}`, as GitHub's installation token lists them), or None when unknown."""
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

    async def get_review(self, repo: RepoRef, number: int, review_id: int) -> Review:
        """Review `review_id` of pull request `number` with all its line comments."""
        ...

    async def list_reviews(self, repo: RepoRef, number: int) -> list[Review]:
        """Every submitted review of pull request `number`, oldest first, without their
        line comments (who approved, who asked for changes)."""
        ...

    async def pull_request_state(self, repo: RepoRef, number: int) -> PullRequestState | None:
        """Pull request `number` as `/idp apply`'s requirements and upkeep read it; None when
        there is none."""
        ...

    async def commit_checks(self, repo: RepoRef, sha: str) -> list[CommitCheck]:
        """Every check run and commit status on commit `sha` (the latest of each name)."""
        ...

    async def reply_to_review_comment(
        self, repo: RepoRef, number: int, comment_id: int, body: str
    ) -> int:
        """A reply in the thread of line comment `comment_id`. Returns the reply's id."""
        ...

    async def list_run_jobs(self, repo: RepoRef, run_id: int) -> list[CiJob]:
        """The jobs of workflow run `run_id` (its latest attempt) with their steps."""
        ...

    async def job_log_tail(self, repo: RepoRef, job_id: int, limit: int) -> str:
        """The last `limit` bytes of job `job_id`'s log as text ("" when it has none)."""
        ...

    async def rerun_failed_jobs(self, repo: RepoRef, run_id: int) -> None:
        """Re-run the failed jobs of workflow run `run_id` (and the jobs that need them)."""
        ...

    async def create_repository(
        self,
        owner: str,
        name: str,
        *,
        private: bool = True,
        description: str = "",
        template: str | None = None,
    ) -> RepoInfo:
        """A new repository `owner/name`, empty but for a README, or generated from the
        template repository `template` (OWNER/REPO). A repository of that name that exists
        already is returned as it is (`created` False). On GitHub the owner must be an
        organization the App is installed on: installation tokens cannot create repositories
        in personal accounts."""
        ...

    async def get_branch_protection(self, repo: RepoRef, branch: str) -> BranchRules | None:
        """The branch's current protection, or None when it has none."""
        ...

    async def protect_branch(
        self,
        repo: RepoRef,
        branch: str,
        *,
        required_reviews: int = 1,
        required_checks: list[str] = (),  # type: ignore[assignment]
        enforce_admins: bool = True,
        rules: BranchRules | None = None,
    ) -> None:
        """Protect `branch`: changes only through pull requests with `required_reviews`
        approvals (stale ones dismissed on new pushes), the `required_checks` passing on an
        up-to-date branch, and administrators bound too when `enforce_admins`; or exactly
        `rules` when given. Replaces any protection the branch had."""
        ...

    # -- upkeep (app/handling/upgrade.py, app/handling/sweep.py) ----------------------------

    async def list_files(self, repo: RepoRef, ref: str) -> list[str]:
        """Every file path at `ref` (the whole tree, one call), sorted; how the sweep finds
        the `catalog-info.yaml` of each generated service."""
        ...

    async def upsert_issue(
        self, repo: RepoRef, number: int | None, title: str, body: str, marker: str
    ) -> int:
        """Edit issue `number`; without one (or when it is gone or closed), find the App's
        open issue whose body holds `marker`, else create it. Returns the issue number."""
        ...

    async def pin_issue(self, repo: RepoRef, number: int) -> None:
        """Pin the issue to the repository (GraphQL `pinIssue`; REST has no such call).
        ForgeError when GitHub refuses (three issues pinned already, no permission)."""
        ...
