"""The operator API's one error shape, `{"error": sentence, "status": code}`, and the helpers
that turn bad bodies and unknown paths into it. Nobody sees a traceback."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any, TypeVar

import redis
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.body_limit import BodyTooLarge, read_body

log = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)
MAX_BODY_BYTES = 256 * 1024


class ApiError(Exception):
    """A request that cannot be served; `message` says why and, where there is one, the fix."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse({"error": message, "status": status}, status_code=status, headers=headers)


def validation_sentence(exc: ValidationError) -> str:
    """Each bad field and what is wrong with it, in one line."""
    parts = []
    for err in exc.errors(include_url=False):
        where = ".".join(str(p) for p in err["loc"]) or "body"
        parts.append(f"{where}: {str(err['msg']).removeprefix('Value error, ')}")
    return "invalid request: " + "; ".join(parts)


async def parse_body(request: Request, model: type[M]) -> M:
    """The JSON body as `model`: 400 for a body that is not JSON, 422 for one that breaks
    the model (every bad field named)."""
    try:
        raw = await read_body(request, MAX_BODY_BYTES)
    except BodyTooLarge:
        raise ApiError(413, f"body exceeds {MAX_BODY_BYTES} bytes") from None
    try:
        data: Any = json.loads(raw or b"null")
    except ValueError:
        raise ApiError(400, "body is not valid JSON; send a JSON object") from None
    if not isinstance(data, dict):
        raise ApiError(400, "body must be a JSON object")
    return validate(model, data)


def validate(model: type[M], data: dict[str, Any]) -> M:
    """`data` as `model`, or a 422 ApiError naming each bad field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ApiError(422, validation_sentence(exc)) from None


async def on_api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.message, exc.headers)


async def on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return error_response(exc.status_code, str(exc.detail).lower(), exc.headers)


async def on_redis_error(request: Request, exc: Exception) -> Response:
    log.warning("%s %s: Redis error %s", request.method, request.url.path, type(exc).__name__)
    return error_response(503, REDIS_DOWN)


REDIS_DOWN = "Redis is not reachable; try again in a moment"
EXCEPTION_HANDLERS = {
    ApiError: on_api_error,
    HTTPException: on_http_error,
    redis.RedisError: on_redis_error,
}


class CatchAll:
    """ASGI middleware: an unexpected exception becomes `respond(request)` (a 500 in the
    app's own shape) and one log line, instead of a traceback re-raised to the server.
    Starlette's own `Exception` handler answers too, but then raises the error again."""

    def __init__(self, app: ASGIApp, respond: Callable[[Request], Response]) -> None:
        self.app = app
        self.respond = respond

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except Exception as exc:
            request = Request(scope)
            log.error("%s %s failed with %s", request.method, request.url.path, type(exc).__name__)
            if not started:
                await self.respond(request)(scope, receive, send)


def server_error(request: Request) -> Response:
    return error_response(500, "internal error; see the server log")
