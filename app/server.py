"""The whole web process: the webhook receiver and probes (app/web.py), the operator API at
`/api` and the console at `/console`. `idp-copilot serve` runs what `build_app` returns."""

from __future__ import annotations

import logging
import secrets

import redis
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route

from app.api import build_api
from app.api.auth import SIGN_IN_TTL, Gate
from app.api.routes import OperatorApi
from app.api.sse import HEARTBEAT_SECONDS
from app.config import Settings
from app.console import build_console
from app.web import create_app, redis_connection

log = logging.getLogger(__name__)

COOKIE = "idp_console"


def session_cookie(settings: Settings) -> Middleware:
    """The signed cookie the console and the API read (SameSite=Lax, HttpOnly, and Secure
    unless IDP_CONSOLE_INSECURE_COOKIE says the console is served over plain http)."""
    if settings.session_secret is not None and settings.session_secret.get_secret_value():
        secret = settings.session_secret.get_secret_value()
    else:
        # Sign-ins then last as long as this process and work on this process only.
        log.warning("IDP_SESSION_SECRET is not set; console sign-ins end when the server stops")
        secret = secrets.token_urlsafe(32)
    return Middleware(
        SessionMiddleware,
        secret_key=secret,
        session_cookie=COOKIE,
        max_age=SIGN_IN_TTL,
        same_site="lax",
        https_only=not settings.console_insecure_cookie,
    )


async def _to_console(request: Request) -> Response:
    return RedirectResponse("/console/", status_code=307)


def build_app(
    settings: Settings,
    connection: redis.Redis | None = None,
    *,
    heartbeat: float = HEARTBEAT_SECONDS,
) -> Starlette:
    """The web app with every route. `heartbeat` is the SSE keep-alive interval in seconds."""
    connection = connection if connection is not None else redis_connection(settings)
    gate = Gate(settings, connection)
    api = OperatorApi(settings, connection, gate, heartbeat=heartbeat)
    cookie = [session_cookie(settings)]
    return create_app(
        settings,
        connection,
        extra_routes=[
            Mount("/api", app=build_api(api, cookie)),
            Mount("/console", app=build_console(settings, gate, api, cookie)),
            Route("/", _to_console, methods=["GET"]),
        ],
    )
