"""Rendering for the console: Jinja2 templates, the CSRF token of its forms, and the security
headers every page carries (a script nonce, no framing, no referrer across sites)."""

from __future__ import annotations

import hmac
import secrets
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import Response
from starlette.templating import Jinja2Templates

from app.api.errors import ApiError
from app.body_limit import BodyTooLarge, read_body
from app.console.markdown import to_html, to_inline_html

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
MAX_FORM_BYTES = 64 * 1024
STATUSES = ("new", "planned", "running", "waiting", "done", "failed", "cancelled")


def _when(timestamp: float | None) -> str:
    if not timestamp:
        return ""
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


TEMPLATES.env.filters["when"] = _when
TEMPLATES.env.filters["markdown"] = to_html
TEMPLATES.env.filters["markdown_inline"] = to_inline_html


def csrf_token(request: Request) -> str:
    """The form token of this browser's session, made on first use."""
    token = request.session.get("csrf")
    if not isinstance(token, str):
        token = request.session["csrf"] = secrets.token_urlsafe(24)
    return token


async def read_form(request: Request) -> dict[str, str]:
    """An url-encoded form (first value of each field), after checking its CSRF token."""
    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        raise ApiError(400, "expected a form post")
    try:
        body = await read_body(request, MAX_FORM_BYTES)
    except BodyTooLarge:
        raise ApiError(413, f"the form exceeds {MAX_FORM_BYTES} bytes") from None
    fields = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace"), True).items()}
    expected = request.session.get("csrf")
    given = fields.get("csrf", "")
    # Bytes: compare_digest raises TypeError on a str with non-ASCII characters.
    if not isinstance(expected, str) or not hmac.compare_digest(given.encode(), expected.encode()):
        raise ApiError(400, "the form has expired; reload the page and send it again")
    return fields


def render(request: Request, template: str, context: dict[str, Any], status: int = 200) -> Response:
    """A page, with the signed-in principal, the CSRF token and a fresh script nonce."""
    nonce = secrets.token_urlsafe(16)
    page = TEMPLATES.TemplateResponse(
        request,
        template,
        {"csrf": csrf_token(request), "nonce": nonce, "statuses": STATUSES, **context},
        status_code=status,
    )
    page.headers["Content-Security-Policy"] = (
        f"default-src 'self'; script-src 'nonce-{nonce}'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
        "form-action 'self'"
    )
    page.headers["X-Frame-Options"] = "DENY"
    page.headers["Referrer-Policy"] = "same-origin"
    page.headers["X-Content-Type-Options"] = "nosniff"
    page.headers["Cache-Control"] = "no-store"
    return page


def safe_next(value: str | None) -> str:
    """Where to go after signing in: a console path only, never another site."""
    if value and value.startswith("/console") and not value.startswith("//") and "\\" not in value:
        return value
    return "/console/sessions"
