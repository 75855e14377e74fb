"""GitHub-shaped REST response bodies for tests, complete enough that githubkit's response
validation accepts them (in both REST versions we speak, 2026-03-10 and 2022-11-28; held to
that by tests/test_github_standin_contract.py). `FakeGitHub`, the stateful GitHub built on
them, lives in tests/fake_github.py.

Every builder takes `at=Where(...)` to say which GitHub and repository the body belongs to;
`Where(api="https://ghe.example.com/api/v3")` plays GitHub Enterprise Server.
"""

from __future__ import annotations

import base64
import functools
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

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


MANIFEST = Path(__file__).resolve().parents[1] / "github-app.yml"


def manifest_permissions() -> dict[str, str]:
    """The repository permissions github-app.yml asks for: what an installation of the App
    grants once its owner accepted them."""
    return dict(yaml.safe_load(MANIFEST.read_text())["default_permissions"])


def installation_token(
    token: str,
    *,
    minutes: int = 60,
    permissions: dict[str, str] | None = None,
    repository_selection: str = "all",
) -> dict:
    """POST /app/installations/{id}/access_tokens: GitHub's tokens live an hour and list the
    permissions the installation granted (default: all the App's manifest asks for)."""
    expires = datetime.now(UTC) + timedelta(minutes=minutes)
    return {
        "token": token,
        "expires_at": expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "permissions": manifest_permissions() if permissions is None else dict(permissions),
        "repository_selection": repository_selection,
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


def error(message: str, status: int = 404, *, docs: str = "https://docs.github.com/rest") -> dict:
    """GitHub's error body (BasicError)."""
    return {"message": message, "documentation_url": docs, "status": str(status)}


def blob_sha(text: str) -> str:
    """git's object id of a file, written out here independently of the App's code."""
    data = text.encode()
    return hashlib.sha1(f"blob {len(data)}\0".encode() + data).hexdigest()  # noqa: S324


def __getattr__(name: str) -> Any:
    # `FakeGitHub` lives in tests/fake_github.py (it builds on this module's bodies); it stays
    # reachable as `github_api.FakeGitHub` for the tests that name it so.
    if name == "FakeGitHub":
        from tests.fake_github import FakeGitHub

        return FakeGitHub
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
