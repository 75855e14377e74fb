"""GitHub-shaped REST response bodies for tests, complete enough that githubkit's response
validation accepts them (in both REST versions we speak, 2026-03-10 and 2022-11-28), and
`FakeGitHub`: a stateful GitHub for one repository on respx.

Every builder takes `at=Where(...)` to say which GitHub and repository the body belongs to;
`Where(api="https://ghe.example.com/api/v3")` plays GitHub Enterprise Server.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import itertools
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import respx

API = "https://api.github.com"
OWNER, NAME, INSTALLATION_ID = "acme", "payments", 4242
APP_ID = "12345"
APP_BOT = "idp-copilot[bot]"
WHEN = "2026-01-01T00:00:00Z"


@dataclass(frozen=True)
class Where:
    """The GitHub (API root) and repository a body belongs to."""

    api: str = API
    owner: str = OWNER
    name: str = NAME

    @property
    def web(self) -> str:
        """github.com for the public API; the server itself for GitHub Enterprise Server."""
        return "https://github.com" if self.api == API else self.api.removesuffix("/api/v3")

    @property
    def url(self) -> str:
        return f"{self.api}/repos/{self.owner}/{self.name}"

    @property
    def html(self) -> str:
        return f"{self.web}/{self.owner}/{self.name}"


HOME = Where()


@functools.cache
def private_key_pem() -> str:
    """A throwaway RSA key (PEM) for signing the App's JWT in tests."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def as_app(settings: Any) -> Any:
    """The suite's `Settings` as this module's GitHub App: the GitHub forge, the test key,
    and retries without backoff sleeps."""
    from pydantic import SecretStr

    return settings.model_copy(
        update={
            "forge": "github",
            "github_app_id": APP_ID,
            "github_app_private_key": SecretStr(private_key_pem()),
            "github_retry_base_delay": 0.0,
        }
    )


def user(login: str = "octocat", *, id: int = 1, type: str = "User", at: Where = HOME) -> dict:
    """A SimpleUser; `type` is "Bot" for Apps, "Organization" for orgs."""
    url = f"{at.api}/users/{login}"
    return {
        "login": login,
        "id": id,
        "node_id": f"U_{id}",
        "avatar_url": f"https://avatars.githubusercontent.com/u/{id}?v=4",
        "gravatar_id": "",
        "url": url,
        "html_url": f"{at.web}/{login}",
        "followers_url": f"{url}/followers",
        "following_url": f"{url}/following{{/other_user}}",
        "gists_url": f"{url}/gists{{/gist_id}}",
        "starred_url": f"{url}/starred{{/owner}}{{/repo}}",
        "subscriptions_url": f"{url}/subscriptions",
        "organizations_url": f"{url}/orgs",
        "repos_url": f"{url}/repos",
        "events_url": f"{url}/events{{/privacy}}",
        "received_events_url": f"{url}/received_events",
        "type": type,
        "user_view_type": "public",
        "site_admin": False,
    }


def app_user(at: Where = HOME) -> dict:
    return user(APP_BOT, id=9001, type="Bot", at=at)


_REPO_URLS = (
    "archive:{archive_format}{/ref} assignees:assignees{/user} blobs:git/blobs{/sha} "
    "branches:branches{/branch} collaborators:collaborators{/collaborator} "
    "comments:comments{/number} commits:commits{/sha} compare:compare/{base}...{head} "
    "contents:contents/{+path} contributors:contributors deployments:deployments "
    "downloads:downloads events:events forks:forks git_commits:git/commits{/sha} "
    "git_refs:git/refs{/sha} git_tags:git/tags{/sha} hooks:hooks "
    "issue_comment:issues/comments{/number} issue_events:issues/events{/number} "
    "issues:issues{/number} keys:keys{/key_id} labels:labels{/name} languages:languages "
    "merges:merges milestones:milestones{/number} notifications:notifications "
    "pulls:pulls{/number} releases:releases{/id} stargazers:stargazers "
    "statuses:statuses/{sha} subscribers:subscribers subscription:subscription tags:tags "
    "teams:teams trees:git/trees{/sha}"
)


def repository(*, default_branch: str = "main", at: Where = HOME) -> dict:
    """GET /repos/{owner}/{repo} (a full repository); valid where a Repository is nested."""
    host = at.web.removeprefix("https://")
    body: dict[str, Any] = {
        "id": 500,
        "node_id": "R_500",
        "name": at.name,
        "full_name": f"{at.owner}/{at.name}",
        "owner": user(at.owner, id=2, type="Organization", at=at),
        "private": True,
        "visibility": "private",
        "html_url": at.html,
        "description": None,
        "fork": False,
        "url": at.url,
        "git_url": f"git://{host}/{at.owner}/{at.name}.git",
        "ssh_url": f"git@{host}:{at.owner}/{at.name}.git",
        "clone_url": f"{at.html}.git",
        "svn_url": at.html,
        "mirror_url": None,
        "homepage": None,
        "language": "Python",
        "license": None,
        "default_branch": default_branch,
        "topics": [],
        "temp_clone_token": None,
        "pushed_at": WHEN,
        "created_at": WHEN,
        "updated_at": WHEN,
    }
    for key in ("forks_count", "forks", "stargazers_count", "watchers_count", "watchers"):
        body[key] = 0
    for key in ("open_issues_count", "open_issues", "size", "subscribers_count"):
        body[key] = 1
    body["network_count"] = 0
    for key in ("has_issues", "has_downloads"):
        body[key] = True
    for key in ("has_projects", "has_wiki", "has_pages", "has_discussions", "archived"):
        body[key] = False
    for key in ("disabled", "is_template", "allow_forking", "web_commit_signoff_required"):
        body[key] = False
    for pair in _REPO_URLS.split():
        key, _, suffix = pair.partition(":")
        body[f"{key}_url"] = f"{at.url}/{suffix}"
    return body


def issue(
    number: int = 7,
    *,
    title: str = "New service",
    body: str | None = None,
    author: dict | None = None,
    at: Where = HOME,
) -> dict:
    url = f"{at.url}/issues/{number}"
    return {
        "id": 7000 + number,
        "node_id": f"I_{number}",
        "url": url,
        "repository_url": at.url,
        "labels_url": f"{url}/labels{{/name}}",
        "comments_url": f"{url}/comments",
        "events_url": f"{url}/events",
        "html_url": f"{at.html}/issues/{number}",
        "number": number,
        "state": "open",
        "state_reason": None,
        "title": title,
        "body": body,
        "user": author or user(at=at),
        "labels": [],
        "assignee": None,
        "assignees": [],
        "milestone": None,
        "locked": False,
        "active_lock_reason": None,
        "comments": 0,
        "closed_at": None,
        "created_at": WHEN,
        "updated_at": WHEN,
        "author_association": "MEMBER",
    }


def issue_comment(
    comment_id: int, body: str, *, number: int = 7, author: dict | None = None, at: Where = HOME
) -> dict:
    """An issue comment; written by the App's bot user unless `author` says otherwise."""
    return {
        "id": comment_id,
        "node_id": f"IC_{comment_id}",
        "url": f"{at.url}/issues/comments/{comment_id}",
        "html_url": f"{at.html}/issues/{number}#issuecomment-{comment_id}",
        "body": body,
        "user": author or app_user(at),
        "created_at": WHEN,
        "updated_at": WHEN,
        "issue_url": f"{at.url}/issues/{number}",
        "author_association": "NONE",
    }


def reaction(
    reaction_id: int, content: str, *, author: dict | None = None, at: Where = HOME
) -> dict:
    """A reaction; by the App's bot user unless `author` says otherwise."""
    return {
        "id": reaction_id,
        "node_id": f"REA_{reaction_id}",
        "user": app_user(at) if author is None else author,
        "content": content,
        "created_at": WHEN,
    }


def git_ref(branch: str, sha: str, *, at: Where = HOME) -> dict:
    return {
        "ref": f"refs/heads/{branch}",
        "node_id": f"REF_{branch}",
        "url": f"{at.url}/git/refs/heads/{branch}",
        "object": {"type": "commit", "sha": sha, "url": f"{at.url}/git/commits/{sha}"},
    }


def git_commit(
    sha: str, tree_sha: str, parents: list[str], message: str, *, at: Where = HOME
) -> dict:
    person = {"name": APP_BOT, "email": "9001+idp-copilot[bot]@users.noreply.github.com"}
    person["date"] = WHEN
    return {
        "sha": sha,
        "node_id": f"C_{sha[:8]}",
        "url": f"{at.url}/git/commits/{sha}",
        "html_url": f"{at.html}/commit/{sha}",
        "author": person,
        "committer": person,
        "message": message,
        "tree": {"sha": tree_sha, "url": f"{at.url}/git/trees/{tree_sha}"},
        "parents": [
            {"sha": p, "url": f"{at.url}/git/commits/{p}", "html_url": f"{at.html}/commit/{p}"}
            for p in parents
        ],
        "verification": {
            "verified": False,
            "reason": "unsigned",
            "signature": None,
            "payload": None,
            "verified_at": None,
        },
    }


def git_tree(
    sha: str, entries: dict[str, tuple[str, str]], *, truncated: bool = False, at: Where = HOME
) -> dict:
    """A recursive tree listing; `entries` maps path → (mode, blob sha)."""
    items = [
        {
            "path": path,
            "mode": mode,
            "type": "blob",
            "sha": blob,
            "size": 1,
            "url": f"{at.url}/git/blobs/{blob}",
        }
        for path, (mode, blob) in sorted(entries.items())
    ]
    return {"sha": sha, "url": f"{at.url}/git/trees/{sha}", "tree": items, "truncated": truncated}


def content_file(path: str, text: str, *, ref: str = "main", at: Where = HOME) -> dict:
    """GET /contents/{path} of a file: base64 in 60-character lines, as GitHub sends it."""
    sha = blob_sha(text)
    url = f"{at.url}/contents/{path}?ref={ref}"
    html = f"{at.html}/blob/{ref}/{path}"
    git = f"{at.url}/git/blobs/{sha}"
    return {
        "type": "file",
        "encoding": "base64",
        "size": len(text.encode()),
        "name": path.rsplit("/", 1)[-1],
        "path": path,
        "content": base64.encodebytes(text.encode()).decode(),
        "sha": sha,
        "url": url,
        "git_url": git,
        "html_url": html,
        "download_url": f"https://raw.githubusercontent.com/{at.owner}/{at.name}/{ref}/{path}",
        "_links": {"git": git, "html": html, "self": url},
    }


def blob(sha: str, text: str, *, at: Where = HOME) -> dict:
    return {
        "content": base64.b64encode(text.encode()).decode(),
        "encoding": "base64",
        "url": f"{at.url}/git/blobs/{sha}",
        "sha": sha,
        "size": len(text.encode()),
        "node_id": f"B_{sha[:8]}",
    }


def installation_token(token: str, *, minutes: int = 60) -> dict:
    """POST /app/installations/{id}/access_tokens: GitHub's tokens live an hour."""
    expires = datetime.now(UTC) + timedelta(minutes=minutes)
    return {
        "token": token,
        "expires_at": expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "permissions": {"issues": "write", "contents": "write", "pull_requests": "write"},
        "repository_selection": "all",
    }


def collaborator_permission(
    login: str, permission: str, role_name: str | None = None, *, at: Where = HOME
) -> dict:
    """GET /collaborators/{user}/permission; `permission` folds maintain into write and
    triage into read, `role_name` keeps them."""
    role = role_name or permission
    return {
        "permission": permission,
        "role_name": role,
        "user": {**user(login, id=77, at=at), "role_name": role},
    }


def pull_request(
    number: int,
    branch: str,
    head_sha: str,
    *,
    title: str = "Add a service",
    body: str | None = "",
    base: str = "main",
    draft: bool = False,
    at: Where = HOME,
) -> dict:
    """A full pull request; also valid as an item of GET /pulls (PullRequestSimple)."""
    url, html, repo = f"{at.url}/pulls/{number}", f"{at.html}/pull/{number}", repository(at=at)

    def side(ref: str, sha: str) -> dict:
        return {
            "label": f"{at.owner}:{ref}",
            "ref": ref,
            "sha": sha,
            "user": repo["owner"],
            "repo": repo,
        }

    links = {
        "self": url,
        "html": html,
        "issue": f"{at.url}/issues/{number}",
        "comments": f"{at.url}/issues/{number}/comments",
        "review_comments": f"{url}/comments",
        "review_comment": f"{at.url}/pulls/comments{{/number}}",
        "commits": f"{url}/commits",
        "statuses": f"{at.url}/statuses/{head_sha}",
    }
    body_: dict[str, Any] = {f"{key}_url": links[key] for key in ("issue", "commits", "comments")}
    body_ |= {f"{key}_url": links[key] for key in ("review_comments", "review_comment")}
    return body_ | {
        "url": url,
        "id": 8000 + number,
        "node_id": f"PR_{number}",
        "html_url": html,
        "diff_url": f"{html}.diff",
        "patch_url": f"{html}.patch",
        "statuses_url": links["statuses"],
        "number": number,
        "state": "open",
        "locked": False,
        "title": title,
        "user": app_user(at),
        "body": body,
        "labels": [],
        "milestone": None,
        "active_lock_reason": None,
        "created_at": WHEN,
        "updated_at": WHEN,
        "closed_at": None,
        "merged_at": None,
        "merge_commit_sha": None,
        "assignee": None,
        "assignees": [],
        "requested_reviewers": [],
        "requested_teams": [],
        "head": side(branch, head_sha),
        "base": side(base, "0" * 40),
        "_links": {key: {"href": href} for key, href in links.items()},
        "author_association": "NONE",
        "auto_merge": None,
        "draft": draft,
        "merged": False,
        "mergeable": None,
        "rebaseable": None,
        "mergeable_state": "unknown",
        "merged_by": None,
        "comments": 0,
        "review_comments": 0,
        "maintainer_can_modify": False,
        "commits": 1,
        "additions": 1,
        "deletions": 0,
        "changed_files": 1,
    }


def check_run(
    check_id: int,
    head_sha: str,
    name: str,
    conclusion: str,
    title: str,
    summary: str,
    *,
    at: Where = HOME,
) -> dict:
    url = f"{at.url}/check-runs/{check_id}"
    return {
        "id": check_id,
        "head_sha": head_sha,
        "node_id": f"CR_{check_id}",
        "external_id": "",
        "url": url,
        "html_url": f"{at.html}/runs/{check_id}",
        "details_url": None,
        "status": "completed",
        "conclusion": conclusion,
        "started_at": WHEN,
        "completed_at": WHEN,
        "output": {
            "title": title,
            "summary": summary,
            "text": None,
            "annotations_count": 0,
            "annotations_url": f"{url}/annotations",
        },
        "name": name,
        "check_suite": {"id": 1},
        "app": None,
        "pull_requests": [],
    }


def pull_review(
    review_id: int,
    number: int,
    body: str,
    state: str,
    commit_id: str,
    *,
    author: dict | None = None,
    at: Where = HOME,
) -> dict:
    """A submitted pull request review; `state` as the REST API spells it (APPROVED,
    CHANGES_REQUESTED, COMMENTED), where webhooks use lower case."""
    html = f"{at.html}/pull/{number}#pullrequestreview-{review_id}"
    return {
        "id": review_id,
        "node_id": f"PRR_{review_id}",
        "user": author or user(at=at),
        "body": body,
        "state": state.upper(),
        "html_url": html,
        "pull_request_url": f"{at.url}/pulls/{number}",
        "_links": {"html": {"href": html}, "pull_request": {"href": f"{at.url}/pulls/{number}"}},
        "submitted_at": WHEN,
        "commit_id": commit_id,
        "author_association": "MEMBER",
    }


def review_comment(
    comment_id: int,
    number: int,
    *,
    review_id: int | None,
    path: str,
    line: int | None,
    diff_hunk: str,
    body: str,
    commit_id: str,
    in_reply_to: int | None = None,
    author: dict | None = None,
    at: Where = HOME,
) -> dict:
    """A line comment of a review: valid as a list item of …/reviews/{id}/comments (the
    legacy ReviewComment) and as the answer to POST …/comments/{id}/replies."""
    url = f"{at.url}/pulls/comments/{comment_id}"
    html = f"{at.html}/pull/{number}#discussion_r{comment_id}"
    body_: dict[str, Any] = {
        "url": url,
        "pull_request_review_id": review_id,
        "id": comment_id,
        "node_id": f"PRRC_{comment_id}",
        "diff_hunk": diff_hunk,
        "path": path,
        "position": line or 1,
        "original_position": line or 1,
        "commit_id": commit_id,
        "original_commit_id": commit_id,
        "user": author or app_user(at),
        "body": body,
        "created_at": WHEN,
        "updated_at": WHEN,
        "html_url": html,
        "pull_request_url": f"{at.url}/pulls/{number}",
        "author_association": "MEMBER" if author else "NONE",
        "_links": {
            "self": {"href": url},
            "html": {"href": html},
            "pull_request": {"href": f"{at.url}/pulls/{number}"},
        },
        "start_line": None,
        "original_start_line": None,
        "start_side": None,
        "side": "RIGHT",
        "subject_type": "line" if line else "file",
    }
    if line:
        body_ |= {"line": line, "original_line": line}
    if in_reply_to is not None:
        body_["in_reply_to_id"] = in_reply_to
    return body_


def diff_hunk(text: str, line: int, context: int = 4) -> str:
    """The diff hunk GitHub shows above a line comment on a file the pull request adds: the
    hunk header and the lines up to the commented one."""
    lines = text.splitlines()
    start = max(0, line - context)
    shown = "\n".join(f"+{row}" for row in lines[start:line])
    return f"@@ -0,0 +1,{len(lines)} @@\n{shown}"


def label(label_id: int, name: str, *, at: Where = HOME) -> dict:
    return {
        "id": label_id,
        "node_id": f"LA_{label_id}",
        "url": f"{at.url}/labels/{name}",
        "name": name,
        "description": None,
        "color": "ededed",
        "default": False,
        "archived_at": None,
        "archived_by": None,
    }


def error(message: str, status: int = 404) -> dict:
    """GitHub's error body (BasicError)."""
    return {
        "message": message,
        "documentation_url": "https://docs.github.com/rest",
        "status": str(status),
    }


def blob_sha(text: str) -> str:
    """git's object id of a file, written out here independently of the App's code."""
    data = text.encode()
    return hashlib.sha1(f"blob {len(data)}\0".encode() + data).hexdigest()  # noqa: S324


class FakeGitHub:
    """GitHub for one repository on a respx router: comments, git objects, branches, pull
    requests, permissions, checks and labels in dicts; every request in `calls`.

    `fail(method, path_regex, *outcomes)` makes the next matching requests answer with the
    given responses, raise the given exceptions, or call the given hooks (request → response,
    or None to serve it normally after the hook changed the state).
    """

    def __init__(
        self, router: respx.MockRouter, *, at: Where = HOME, default_branch: str = "main"
    ) -> None:
        self.at, self.default_branch = at, default_branch
        self.token_requests = 0
        self.calls: list[tuple[str, str, Any]] = []
        self.faults: list[tuple[str, re.Pattern[str], Any]] = []
        self.comments: dict[int, dict[str, Any]] = {}
        self.reactions: list[tuple[int, str]] = []
        self.reaction_log: list[dict[str, Any]] = []  # everyone's, for GET …/reactions
        self.trees: dict[str, dict[str, tuple[str, str]]] = {}
        self.blobs: dict[str, str] = {}
        self.commits: dict[str, dict[str, Any]] = {}
        self.refs: dict[str, str] = {}
        self.pulls: dict[int, dict[str, Any]] = {}
        self.permissions: dict[str, tuple[str, str]] = {}
        self.check_runs: list[dict[str, Any]] = []
        self.labels: dict[int, list[str]] = {}
        self.reviews: dict[int, dict[str, Any]] = {}
        self.review_comments: dict[int, dict[str, Any]] = {}
        self._ids = itertools.count(1000)
        self.push(default_branch, {"README.md": f"# {at.name}\n"}, "Initial commit")
        self._install(router)

    # -- what a test does or looks at -------------------------------------------------------

    def push(self, branch: str, files: dict[str, str], message: str) -> str:
        """A commit made outside the App (a human's push); returns its sha."""
        parent = self.refs.get(branch) or self.refs.get(self.default_branch)
        entries = dict(self.trees[self.commits[parent]["tree"]]) if parent else {}
        entries |= {path: ("100644", self._blob(text)) for path, text in files.items()}
        self.refs[branch] = self._commit(self._tree(entries), [parent] if parent else [], message)
        return self.refs[branch]

    def files(self, branch: str) -> dict[str, str]:
        tree = self.trees[self.commits[self.refs[branch]]["tree"]]
        return {path: self.blobs[sha] for path, (_, sha) in tree.items()}

    def add_comment(self, number: int, body: str, author: dict | None = None) -> int:
        """A comment by `author` (default: the App's bot); returns its id."""
        comment_id = next(self._ids)
        self.comments[comment_id] = {"number": number, "body": body, "author": author}
        return comment_id

    def react(self, comment_id: int, content: str, author: dict | None) -> int:
        """A person's reaction on a comment (`author` None: a deleted account); its id."""
        reaction_id = next(self._ids)
        self.reaction_log.append(
            {"id": reaction_id, "comment_id": comment_id, "content": content, "user": author}
        )
        return reaction_id

    def add_review(
        self,
        number: int,
        login: str,
        body: str = "",
        state: str = "commented",
        comments: list[tuple[str, int, str]] = (),  # type: ignore[assignment]
    ) -> tuple[int, list[int]]:
        """A review `login` submitted on pull request `number`, with line comments (path,
        line, text) on its head; returns the review's id and its comments' ids."""
        head = self.refs[self.pulls[number]["branch"]]
        files = self.files(self.pulls[number]["branch"])
        review_id = next(self._ids)
        author = user(login, id=77, at=self.at)
        self.reviews[review_id] = {
            "number": number,
            "body": body,
            "state": state,
            "author": author,
            "commit_id": head,
        }
        ids = []
        for path, line, text in comments:
            comment_id = next(self._ids)
            self.review_comments[comment_id] = {
                "number": number,
                "review_id": review_id,
                "path": path,
                "line": line,
                "diff_hunk": diff_hunk(files.get(path, ""), line),
                "body": text,
                "author": author,
                "commit_id": head,
                "in_reply_to": None,
            }
            ids.append(comment_id)
        return review_id, ids

    def thread_replies(self, comment_id: int) -> list[str]:
        """The bodies of the replies in line comment `comment_id`'s thread, oldest first."""
        return [
            c["body"]
            for _, c in sorted(self.review_comments.items())
            if c["in_reply_to"] == comment_id
        ]

    def writes(self) -> list[tuple[str, str]]:
        """Every write request (method, path), the installation-token request aside."""
        return [(m, p) for m, p, _ in self.calls if m != "GET" and "/access_tokens" not in p]

    def fail(self, method: str, path_regex: str, *outcomes: Any) -> None:
        self.faults += [(method, re.compile(path_regex), outcome) for outcome in outcomes]

    # -- git objects ------------------------------------------------------------------------

    def _blob(self, text: str) -> str:
        self.blobs[blob_sha(text)] = text
        return blob_sha(text)

    def _tree(self, entries: dict[str, tuple[str, str]]) -> str:
        sha = hashlib.sha1(json.dumps(sorted(entries.items())).encode()).hexdigest()  # noqa: S324
        self.trees[sha] = entries
        return sha

    def _commit(self, tree: str, parents: list[str], message: str) -> str:
        seed = json.dumps([tree, parents, message, next(self._ids)]).encode()
        sha = hashlib.sha1(seed).hexdigest()  # noqa: S324
        self.commits[sha] = {"tree": tree, "parents": parents, "message": message}
        return sha

    def _ancestors(self, sha: str) -> set[str]:
        seen, todo = set(), [sha]
        while todo:
            if (current := todo.pop()) not in seen:
                seen.add(current)
                todo += self.commits[current]["parents"]
        return seen

    # -- routing ----------------------------------------------------------------------------

    def _install(self, router: respx.MockRouter) -> None:
        url = httpx.URL(self.at.api)
        prefix = re.escape(url.path.rstrip("/"))
        repo = rf"/repos/{re.escape(self.at.owner)}/{re.escape(self.at.name)}"
        routes = [
            ("POST", r"/app/installations/\d+/access_tokens", self._token),
            ("GET", repo, self._repository),
            ("GET", repo + r"/issues/(?P<number>\d+)/comments", self._list_comments),
            ("POST", repo + r"/issues/(?P<number>\d+)/comments", self._create_comment),
            ("PATCH", repo + r"/issues/comments/(?P<comment_id>\d+)", self._update_comment),
            ("POST", repo + r"/issues/comments/(?P<comment_id>\d+)/reactions", self._react),
            ("GET", repo + r"/issues/comments/(?P<comment_id>\d+)/reactions", self._reactions),
            ("POST", repo + r"/issues/(?P<number>\d+)/labels", self._add_labels),
            ("GET", repo + r"/contents/(?P<path>.+)", self._contents),
            ("GET", repo + r"/git/ref/heads/(?P<branch>.+)", self._get_ref),
            ("GET", repo + r"/git/commits/(?P<sha>\w+)", self._get_commit),
            ("GET", repo + r"/git/trees/(?P<sha>\w+)", self._get_tree),
            ("GET", repo + r"/git/blobs/(?P<sha>\w+)", self._get_blob),
            ("POST", repo + r"/git/trees", self._create_tree),
            ("POST", repo + r"/git/commits", self._create_commit),
            ("PATCH", repo + r"/git/refs/heads/(?P<branch>.+)", self._update_ref),
            ("POST", repo + r"/git/refs", self._create_ref),
            ("GET", repo + r"/pulls", self._list_pulls),
            ("POST", repo + r"/pulls", self._create_pull),
            ("PATCH", repo + r"/pulls/(?P<number>\d+)", self._update_pull),
            ("GET", repo + r"/collaborators/(?P<login>[^/]+)/permission", self._permission),
            ("POST", repo + r"/check-runs", self._create_check_run),
            ("GET", repo + r"/pulls/(?P<number>\d+)/reviews", self._list_reviews),
            ("GET", repo + r"/pulls/(?P<number>\d+)/reviews/(?P<review_id>\d+)", self._review),
            (
                "GET",
                repo + r"/pulls/(?P<number>\d+)/reviews/(?P<review_id>\d+)/comments",
                self._review_comments,
            ),
            (
                "POST",
                repo + r"/pulls/(?P<number>\d+)/comments/(?P<comment_id>\d+)/replies",
                self._reply_to_review_comment,
            ),
        ]
        for method, pattern, handler in routes:
            route = router.route(method=method, host=url.host, path__regex=f"^{prefix}{pattern}$")
            route.mock(side_effect=self._dispatcher(handler, url.path.rstrip("/")))

    def _dispatcher(self, handler: Any, prefix: str) -> Any:
        def dispatch(request: httpx.Request, **params: str) -> httpx.Response:
            path = request.url.path.removeprefix(prefix)
            body = json.loads(request.content) if request.content else None
            self.calls.append((request.method, path, body))
            for index, (method, pattern, outcome) in enumerate(self.faults):
                if method == request.method and pattern.search(path):
                    del self.faults[index]
                    if isinstance(outcome, BaseException):
                        raise outcome
                    if callable(outcome):  # a hook: may change state; None serves normally
                        outcome = outcome(request)
                    if outcome is not None:
                        return outcome
                    break
            return handler(request, body, **params)

        return dispatch

    @staticmethod
    def _ok(data: Any, status: int = 200, headers: dict | None = None) -> httpx.Response:
        return httpx.Response(status, json=data, headers=headers)

    def _fail(self, message: str = "Not Found", status: int = 404) -> httpx.Response:
        return self._ok(error(message, status), status)

    # -- handlers: (request, json body, path params) → response -----------------------------

    def _token(self, request: httpx.Request, body: Any) -> httpx.Response:
        self.token_requests += 1
        return self._ok(installation_token(f"ghs_fake{self.token_requests:04d}"), 201)

    def _repository(self, request: httpx.Request, body: Any) -> httpx.Response:
        return self._ok(repository(default_branch=self.default_branch, at=self.at))

    def _comment(self, comment_id: int) -> dict:
        c = self.comments[comment_id]
        return issue_comment(
            comment_id, c["body"], number=c["number"], author=c["author"], at=self.at
        )

    def _list_comments(self, request: httpx.Request, body: Any, number: str) -> httpx.Response:
        per_page = int(request.url.params.get("per_page", 30))
        page = int(request.url.params.get("page", 1))
        ids = sorted(i for i, c in self.comments.items() if c["number"] == int(number))
        headers = {}
        if page * per_page < len(ids):
            nxt = f"{self.at.url}/issues/{number}/comments?per_page={per_page}&page={page + 1}"
            headers["Link"] = f'<{nxt}>; rel="next"'
        chunk = ids[(page - 1) * per_page : page * per_page]
        return self._ok([self._comment(i) for i in chunk], headers=headers)

    def _create_comment(self, request: httpx.Request, body: Any, number: str) -> httpx.Response:
        comment_id = self.add_comment(int(number), body["body"], app_user(self.at))
        return self._ok(self._comment(comment_id), 201)

    def _update_comment(self, request: httpx.Request, body: Any, comment_id: str) -> httpx.Response:
        if int(comment_id) not in self.comments:
            return self._fail()
        self.comments[int(comment_id)]["body"] = body["body"]
        return self._ok(self._comment(int(comment_id)))

    def _react(self, request: httpx.Request, body: Any, comment_id: str) -> httpx.Response:
        self.reactions.append((int(comment_id), body["content"]))
        reaction_id = self.react(int(comment_id), body["content"], app_user(self.at))
        return self._ok(reaction(reaction_id, body["content"], at=self.at), 201)

    def _reactions(self, request: httpx.Request, body: Any, comment_id: str) -> httpx.Response:
        if int(comment_id) not in self.comments:
            return self._fail()
        per_page = int(request.url.params.get("per_page", 30))
        page = int(request.url.params.get("page", 1))
        wanted = request.url.params.get("content")
        found = [
            r
            for r in self.reaction_log
            if r["comment_id"] == int(comment_id) and wanted in (None, r["content"])
        ]
        headers = {}
        if page * per_page < len(found):
            nxt = f"{self.at.url}/issues/comments/{comment_id}/reactions"
            headers["Link"] = f'<{nxt}?per_page={per_page}&page={page + 1}>; rel="next"'
        chunk = found[(page - 1) * per_page : page * per_page]
        # A deleted account's reaction keeps `"user": null`, as GitHub sends it.
        bodies = [{**reaction(r["id"], r["content"], at=self.at), "user": r["user"]} for r in chunk]
        return self._ok(bodies, headers=headers)

    def _add_labels(self, request: httpx.Request, body: Any, number: str) -> httpx.Response:
        names = self.labels.setdefault(int(number), [])
        names += [n for n in body["labels"] if n not in names]
        return self._ok([label(i, n, at=self.at) for i, n in enumerate(names, 1)])

    def _contents(self, request: httpx.Request, body: Any, path: str) -> httpx.Response:
        ref = request.url.params.get("ref", self.default_branch)
        sha = self.refs.get(ref, ref)
        if sha not in self.commits:
            return self._fail(f"No commit found for the ref {ref}")
        entry = self.trees[self.commits[sha]["tree"]].get(path)
        if entry is None:
            return self._fail()
        return self._ok(content_file(path, self.blobs[entry[1]], ref=ref, at=self.at))

    def _get_ref(self, request: httpx.Request, body: Any, branch: str) -> httpx.Response:
        if branch not in self.refs:
            return self._fail()
        return self._ok(git_ref(branch, self.refs[branch], at=self.at))

    def _commit_body(self, sha: str) -> dict:
        c = self.commits[sha]
        return git_commit(sha, c["tree"], c["parents"], c["message"], at=self.at)

    def _get_commit(self, request: httpx.Request, body: Any, sha: str) -> httpx.Response:
        return self._ok(self._commit_body(sha)) if sha in self.commits else self._fail()

    def _get_tree(self, request: httpx.Request, body: Any, sha: str) -> httpx.Response:
        if sha not in self.trees:
            return self._fail()
        return self._ok(git_tree(sha, self.trees[sha], at=self.at))

    def _get_blob(self, request: httpx.Request, body: Any, sha: str) -> httpx.Response:
        if sha not in self.blobs:
            return self._fail()
        return self._ok(blob(sha, self.blobs[sha], at=self.at))

    def _create_tree(self, request: httpx.Request, body: Any) -> httpx.Response:
        entries = dict(self.trees[body["base_tree"]]) if "base_tree" in body else {}
        for item in body["tree"]:
            if "content" in item:
                entries[item["path"]] = (item["mode"], self._blob(item["content"]))
            elif item.get("sha") is None:
                entries.pop(item["path"], None)
            else:
                entries[item["path"]] = (item["mode"], item["sha"])
        return self._ok(git_tree(self._tree(entries), entries, at=self.at), 201)

    def _create_commit(self, request: httpx.Request, body: Any) -> httpx.Response:
        sha = self._commit(body["tree"], body.get("parents", []), body["message"])
        return self._ok(self._commit_body(sha), 201)

    def _update_ref(self, request: httpx.Request, body: Any, branch: str) -> httpx.Response:
        if branch not in self.refs:
            return self._fail("Reference does not exist", 422)
        if not body.get("force") and self.refs[branch] not in self._ancestors(body["sha"]):
            return self._fail("Update is not a fast forward", 422)
        self.refs[branch] = body["sha"]
        return self._ok(git_ref(branch, body["sha"], at=self.at))

    def _create_ref(self, request: httpx.Request, body: Any) -> httpx.Response:
        branch = body["ref"].removeprefix("refs/heads/")
        if branch in self.refs:
            return self._fail("Reference already exists", 422)
        self.refs[branch] = body["sha"]
        return self._ok(git_ref(branch, body["sha"], at=self.at), 201)

    def _pull(self, number: int) -> dict:
        p = self.pulls[number]
        return pull_request(
            number,
            p["branch"],
            self.refs[p["branch"]],
            title=p["title"],
            body=p["body"],
            base=p["base"],
            draft=p["draft"],
            at=self.at,
        )

    def _list_pulls(self, request: httpx.Request, body: Any) -> httpx.Response:
        head, state = request.url.params.get("head"), request.url.params.get("state", "open")
        found = [
            number
            for number, p in sorted(self.pulls.items())
            if head in (None, f"{self.at.owner}:{p['branch']}") and state in ("all", p["state"])
        ]
        return self._ok([self._pull(number) for number in found])

    def _create_pull(self, request: httpx.Request, body: Any) -> httpx.Response:
        branch = body["head"]
        if branch not in self.refs:
            return self._fail("Validation Failed", 422)
        if any(p["branch"] == branch and p["state"] == "open" for p in self.pulls.values()):
            return self._fail(f"A pull request already exists for {self.at.owner}:{branch}.", 422)
        number = next(self._ids)
        self.pulls[number] = {
            "branch": branch,
            "title": body["title"],
            "body": body.get("body"),
            "base": body["base"],
            "draft": body.get("draft", False),
            "state": "open",
        }
        return self._ok(self._pull(number), 201)

    def _update_pull(self, request: httpx.Request, body: Any, number: str) -> httpx.Response:
        if int(number) not in self.pulls:
            return self._fail()
        self.pulls[int(number)].update(
            {k: body[k] for k in ("title", "body", "state") if k in body}
        )
        return self._ok(self._pull(int(number)))

    def _permission(self, request: httpx.Request, body: Any, login: str) -> httpx.Response:
        if login not in self.permissions:
            return self._fail()
        permission, role = self.permissions[login]
        return self._ok(collaborator_permission(login, permission, role, at=self.at))

    def _create_check_run(self, request: httpx.Request, body: Any) -> httpx.Response:
        check_id = next(self._ids)
        self.check_runs.append({"id": check_id, **body})
        out = body.get("output", {})
        run = check_run(
            check_id,
            body["head_sha"],
            body["name"],
            body["conclusion"],
            out.get("title", ""),
            out.get("summary", ""),
            at=self.at,
        )
        return self._ok(run, 201)

    def _review_comment_body(self, comment_id: int) -> dict:
        c = self.review_comments[comment_id]
        return review_comment(
            comment_id,
            c["number"],
            review_id=c["review_id"],
            path=c["path"],
            line=c["line"],
            diff_hunk=c["diff_hunk"],
            body=c["body"],
            commit_id=c["commit_id"],
            in_reply_to=c["in_reply_to"],
            author=c["author"],
            at=self.at,
        )

    def _review(
        self, request: httpx.Request, body: Any, number: str, review_id: str
    ) -> httpx.Response:
        r = self.reviews.get(int(review_id))
        if r is None or r["number"] != int(number):
            return self._fail()
        return self._ok(self._review_body(int(review_id)))

    def _review_body(self, review_id: int) -> dict:
        r = self.reviews[review_id]
        return pull_review(
            review_id,
            r["number"],
            r["body"],
            r["state"],
            r["commit_id"],
            author=r["author"],
            at=self.at,
        )

    def _page(self, request: httpx.Request, ids: list[int], url: str) -> tuple[list[int], dict]:
        """One page of `ids` as GitHub pages lists: `per_page` (30) from `page` (1), with a
        Link header to the next page while there is one."""
        per_page = int(request.url.params.get("per_page", 30))
        page = int(request.url.params.get("page", 1))
        headers = {}
        if page * per_page < len(ids):
            headers["Link"] = f'<{url}?per_page={per_page}&page={page + 1}>; rel="next"'
        return ids[(page - 1) * per_page : page * per_page], headers

    def _list_reviews(self, request: httpx.Request, body: Any, number: str) -> httpx.Response:
        """GET …/pulls/{n}/reviews: submitted reviews, oldest first, paged."""
        if int(number) not in self.pulls:
            return self._fail()
        ids = sorted(i for i, r in self.reviews.items() if r["number"] == int(number))
        chunk, headers = self._page(request, ids, f"{self.at.url}/pulls/{number}/reviews")
        return self._ok([self._review_body(i) for i in chunk], headers=headers)

    def _review_comments(
        self, request: httpx.Request, body: Any, number: str, review_id: str
    ) -> httpx.Response:
        if int(review_id) not in self.reviews:
            return self._fail()
        ids = sorted(i for i, c in self.review_comments.items() if c["review_id"] == int(review_id))
        url = f"{self.at.url}/pulls/{number}/reviews/{review_id}/comments"
        chunk, headers = self._page(request, ids, url)
        return self._ok([self._review_comment_body(i) for i in chunk], headers=headers)

    def _reply_to_review_comment(
        self, request: httpx.Request, body: Any, number: str, comment_id: str
    ) -> httpx.Response:
        parent = self.review_comments.get(int(comment_id))
        if parent is None or parent["number"] != int(number):
            return self._fail()
        reply_id = next(self._ids)
        # GitHub files a reply under a review of its own; the thread is what readers see.
        self.review_comments[reply_id] = {
            **parent,
            "review_id": next(self._ids),
            "body": body["body"],
            "author": app_user(self.at),
            "in_reply_to": int(comment_id),
        }
        return self._ok(self._review_comment_body(reply_id), 201)
