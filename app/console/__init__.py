"""The operator console at `/console`: server-rendered pages over the operator API's objects."""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import quote

import redis
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from app.api.auth import Gate
from app.api.errors import REDIS_DOWN, ApiError, CatchAll
from app.api.routes import OperatorApi
from app.config import Settings
from app.console.pages import Console, SignInFirst
from app.console.render import render
from app.console.signin import SignIn


def _error_page(request: Request, status: int, message: str) -> Response:
    return render(
        request, "error.html", {"principal": None, "status": status, "message": message}, status
    )


async def _sign_in_first(request: Request, exc: Exception) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/console/login?next={quote(target)}", status_code=303)


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    if exc.status == 401:
        return await _sign_in_first(request, exc)
    return _error_page(request, exc.status, exc.message)


async def _redis_error(request: Request, exc: Exception) -> Response:
    return _error_page(request, 503, REDIS_DOWN)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return _error_page(request, exc.status_code, str(exc.detail))


def _server_error(request: Request) -> Response:
    return _error_page(request, 500, "Something went wrong; the server log has the details.")


def build_console(
    settings: Settings, gate: Gate, api: OperatorApi, middleware: Sequence[Middleware]
) -> Starlette:
    """The console as an app to mount at `/console` (behind the same cookie as the API)."""
    routes = [*SignIn(settings, gate).routes(), *Console(gate, api).routes()]
    return Starlette(
        routes=routes,
        middleware=[*middleware, Middleware(CatchAll, respond=_server_error)],
        exception_handlers={
            SignInFirst: _sign_in_first,
            ApiError: _api_error,
            HTTPException: _http_error,
            redis.RedisError: _redis_error,
        },
    )
