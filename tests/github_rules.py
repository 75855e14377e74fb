"""The rules GitHub applies to an App's requests, as `FakeGitHub` applies them: what a token
may do, what a refusal looks like, how lists are paged, and the check GitHub makes when a
ref update touches a workflow file. Each rule names the page that documents it; the contract
tests (tests/test_github_standin_contract.py) hold the stand-in to them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import httpx

DOCS = "https://docs.github.com/en/rest"
# An App's installation token may call an endpoint when it holds one of the permission sets
# the endpoint accepts; GitHub names them in X-Accepted-GitHub-Permissions (sets separated by
# ';'), https://docs.github.com/en/rest/authentication/permissions-required-for-github-apps
PERMISSIONS_DOC = f"{DOCS}/authentication/permissions-required-for-github-apps"
# A private repository the caller cannot see answers 404, never 403: "404 error for an
# existing repository", https://docs.github.com/en/rest/using-the-rest-api/troubleshooting-the-rest-api
NOT_FOUND_DOC = f"{DOCS}/using-the-rest-api/troubleshooting-the-rest-api"
# Lists are paged by per_page (at most 100) and page, with a Link header of next, last, first
# and prev URLs: https://docs.github.com/en/rest/using-the-rest-api/using-pagination-in-the-rest-api
PAGINATION_DOC = f"{DOCS}/using-the-rest-api/using-pagination-in-the-rest-api"
REFS_DOC = f"{DOCS}/git/refs#update-a-reference"
WORKFLOWS_DIR = ".github/workflows/"

LEVELS = {"read": 1, "write": 2, "admin": 3}
# One or more alternative permission sets (here: one permission each) an endpoint accepts.
Needs = Sequence[tuple[str, str]]


def read(*names: str) -> Needs:
    return tuple((name, "read") for name in names)


def write(*names: str) -> Needs:
    return tuple((name, "write") for name in names)


def allows(granted: dict[str, str], needs: Needs) -> bool:
    return any(LEVELS.get(granted.get(name, ""), 0) >= LEVELS[level] for name, level in needs)


def answer(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, json=data, headers=headers)


def error_body(message: str, status: int, docs: str) -> dict[str, str]:
    return {"message": message, "documentation_url": docs, "status": str(status)}


def not_found(docs: str = NOT_FOUND_DOC) -> httpx.Response:
    return answer(error_body("Not Found", 404, docs), 404)


def not_accessible(needs: Needs) -> httpx.Response:
    """403 for a token without the endpoint's permission, with the sets it would accept."""
    accepted = "; ".join(f"{name}={level}" for name, level in needs)
    body = error_body("Resource not accessible by integration", 403, PERMISSIONS_DOC)
    return answer(body, 403, {"X-Accepted-GitHub-Permissions": accepted})


def bad_credentials() -> httpx.Response:
    return answer(error_body("Bad credentials", 401, f"{DOCS}"), 401)


def workflow_refused(path: str) -> httpx.Response:
    """422 for a ref update that adds, changes or deletes a workflow file with a token that
    lacks `workflows: write`, in GitHub's words (the same as git push's remote rejection)."""
    message = (
        f"refusing to allow a GitHub App to create or update workflow `{path}` without "
        "`workflows` permission"
    )
    return answer(error_body(message, 422, REFS_DOC), 422)


def changed_paths(
    old: dict[str, tuple[str, str]], new: dict[str, tuple[str, str]]
) -> Iterable[str]:
    """Paths added, changed or deleted from tree `old` to tree `new`."""
    return sorted(p for p in old.keys() | new.keys() if old.get(p) != new.get(p))


def touched_workflow(diffs: Iterable[Iterable[str]]) -> str | None:
    """The first workflow file among the changed paths of the commits a ref update brings."""
    for paths in diffs:
        for path in paths:
            if path.startswith(WORKFLOWS_DIR):
                return path
    return None


def page(
    request: httpx.Request, items: Sequence[Any], url: str
) -> tuple[Sequence[Any], dict[str, str]]:
    """The `page` of `items` the request asks for (`per_page` default 30, at most 100) and
    the Link header GitHub sends with it (none when everything fits on one page)."""
    params = request.url.params
    per_page = min(max(int(params.get("per_page", 30)), 1), 100)
    number = max(int(params.get("page", 1)), 1)
    last = max((len(items) + per_page - 1) // per_page, 1)
    chunk = items[(number - 1) * per_page : number * per_page]
    if last == 1:
        return chunk, {}
    kept = [(k, v) for k, v in params.multi_items() if k not in ("page", "per_page")]

    def link(n: int, rel: str) -> str:
        query = httpx.QueryParams([*kept, ("per_page", str(per_page)), ("page", str(n))])
        return f'<{url}?{query}>; rel="{rel}"'

    rels = []
    if number > 1:
        rels.append(link(number - 1, "prev"))
    if number < last:
        rels += [link(number + 1, "next"), link(last, "last")]
    if number > 1:
        rels.append(link(1, "first"))
    return chunk, {"Link": ", ".join(rels)}
