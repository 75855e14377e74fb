"""GitHub-shaped webhook payloads and signatures for tests.

The payloads carry the fields GitHub sends for these events (trimmed of URLs we never read,
but with every object the router and the jobs look at), so a test reads like a delivery.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import uuid
from collections.abc import Sequence
from typing import Any

REPO = "acme/payments"
INSTALLATION_ID = 4242
_ids = itertools.count(1001)

FORM_BODY = """### Service name

payments-api

### Language

Python

### Service type

API

### Team

checkout

### Port

_No response_

### Replicas

3

### Description

Takes card payments for the web shop.
"""


def sign(body: bytes, secret: str) -> str:
    """The X-Hub-Signature-256 header value GitHub sends for `body`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def headers(event: str, body: bytes, secret: str | None, delivery_id: str | None = None) -> dict:
    """The headers of a delivery; `secret=None` leaves the signature out."""
    result = {
        "Content-Type": "application/json",
        "User-Agent": "GitHub-Hookshot/a1b2c3d",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery_id or str(uuid.uuid4()),
        "X-GitHub-Hook-ID": "123456789",
        "X-GitHub-Hook-Installation-Target-Type": "integration",
        "X-GitHub-Hook-Installation-Target-ID": "98765",
    }
    if secret is not None:
        result["X-Hub-Signature-256"] = sign(body, secret)
    return result


def encode(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload).encode()


def user(login: str = "octocat", type: str = "User") -> dict[str, Any]:
    uid = next(_ids)
    return {
        "login": login,
        "id": uid,
        "node_id": f"MDQ6VXNlcj{uid}",
        "avatar_url": f"https://avatars.githubusercontent.com/u/{uid}?v=4",
        "html_url": f"https://github.com/{login}",
        "type": type,
        "site_admin": False,
    }


def repository(full_name: str = REPO) -> dict[str, Any]:
    owner, name = full_name.split("/")
    return {
        "id": 1296269,
        "node_id": "MDEwOlJlcG9zaXRvcnkxMjk2MjY5",
        "name": name,
        "full_name": full_name,
        "private": True,
        "owner": user(owner, type="Organization"),
        "html_url": f"https://github.com/{full_name}",
        "description": "Payments services",
        "fork": False,
        "url": f"https://api.github.com/repos/{full_name}",
        "default_branch": "main",
        "visibility": "private",
    }


def label(name: str) -> dict[str, Any]:
    return {"id": next(_ids), "name": name, "color": "0e8a16", "default": False}


def issue(
    number: int = 7,
    *,
    title: str = "New service: payments-api",
    body: str | None = "",
    state: str = "open",
    locked: bool = False,
    labels: Sequence[str] = (),
    pull_request: bool = False,
    merged: bool = False,
    author: str = "octocat",
) -> dict[str, Any]:
    """An issue object as webhooks carry it; `pull_request=True` makes it a PR's issue side."""
    data: dict[str, Any] = {
        "id": next(_ids),
        "number": number,
        "title": title,
        "body": body,
        "user": user(author),
        "labels": [label(n) for n in labels],
        "state": state,
        "locked": locked,
        "assignees": [],
        "comments": 0,
        "created_at": "2024-05-01T10:00:00Z",
        "updated_at": "2024-05-01T10:00:00Z",
        "closed_at": None if state == "open" else "2024-05-02T10:00:00Z",
        "author_association": "MEMBER",
        "html_url": f"https://github.com/{REPO}/issues/{number}",
    }
    if pull_request:
        data["pull_request"] = {
            "url": f"https://api.github.com/repos/{REPO}/pulls/{number}",
            "html_url": f"https://github.com/{REPO}/pull/{number}",
            "merged_at": "2024-05-02T10:00:00Z" if merged else None,
        }
    return data


def _envelope(action: str, sender: dict[str, Any], **objects: Any) -> dict[str, Any]:
    return {
        "action": action,
        **objects,
        "repository": repository(),
        "organization": {"login": REPO.split("/")[0], "id": 9919},
        "sender": sender,
        "installation": {"id": INSTALLATION_ID, "node_id": "MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9u"},
    }


def issue_comment(
    body: str,
    *,
    on_pull_request: bool = False,
    sender: str = "octocat",
    sender_type: str = "User",
    **issue_fields: Any,
) -> dict[str, Any]:
    """`issue_comment.created`, on an issue or (`on_pull_request=True`) on a pull request."""
    author = user(sender, sender_type)
    the_issue = issue(pull_request=on_pull_request, **issue_fields)
    comment = {
        "id": next(_ids),
        "node_id": "IC_kwDOA",
        "body": body,
        "user": author,
        "created_at": "2024-05-01T10:05:00Z",
        "updated_at": "2024-05-01T10:05:00Z",
        "author_association": "MEMBER",
        "html_url": f"{the_issue['html_url']}#issuecomment-1",
    }
    return _envelope("created", author, issue=the_issue, comment=comment)


def issues_opened(
    body: str | None = FORM_BODY,
    *,
    labels: Sequence[str] = (),
    sender: str = "octocat",
    sender_type: str = "User",
    **issue_fields: Any,
) -> dict[str, Any]:
    """`issues.opened` with `body` and `labels`."""
    author = user(sender, sender_type)
    return _envelope(
        "opened", author, issue=issue(body=body, labels=labels, author=sender, **issue_fields)
    )


def issues_labeled(
    label_name: str = "idp:new-service",
    body: str | None = FORM_BODY,
    *,
    sender: str = "octocat",
    sender_type: str = "User",
    **issue_fields: Any,
) -> dict[str, Any]:
    """`issues.labeled`: `label_name` was just added (and is among the issue's labels)."""
    author = user(sender, sender_type)
    the_issue = issue(body=body, labels=[label_name], **issue_fields)
    return _envelope("labeled", author, issue=the_issue, label=the_issue["labels"][0])


def issues_edited(
    number: int,
    before: str,
    after: str,
    *,
    title: str = "IDP Copilot dashboard",
    sender: str = "octocat",
    sender_type: str = "User",
) -> dict[str, Any]:
    """`issues.edited`: issue `number`'s body went from `before` to `after`; GitHub sends
    the previous text as `changes.body.from`."""
    the_issue = issue(number, title=title, body=after, author="idp-copilot[bot]")
    the_issue["user"] = user("idp-copilot[bot]", "Bot")  # the App writes the dashboard
    return _envelope(
        "edited", user(sender, sender_type), issue=the_issue, changes={"body": {"from": before}}
    )


def ping() -> dict[str, Any]:
    """The `ping` GitHub sends when the webhook is set up."""
    return {
        "zen": "Keep it logically awesome.",
        "hook_id": 123456789,
        "hook": {"type": "App", "id": 123456789, "active": True, "events": ["issues"]},
        "repository": repository(),
        "sender": user(),
    }


# The four generators of a new service, in the order the rules planner runs them.
GENERATORS = (
    "generate_k8s_manifests",
    "setup_cicd_pipeline",
    "setup_observability",
    "generate_documentation",
)
