"""The operator JSON API at `/api`: see app/api/routes.py for the routes."""

from __future__ import annotations

from collections.abc import Sequence

from starlette.applications import Starlette
from starlette.middleware import Middleware

from app.api.errors import EXCEPTION_HANDLERS, CatchAll, server_error
from app.api.routes import OperatorApi


def build_api(api: OperatorApi, middleware: Sequence[Middleware]) -> Starlette:
    """The API as an app to mount at `/api`, after the webhook route (which keeps its path)."""
    return Starlette(
        routes=api.routes(),
        middleware=[*middleware, Middleware(CatchAll, respond=server_error)],
        exception_handlers=dict(EXCEPTION_HANDLERS),
    )
