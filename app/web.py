"""The Starlette app: the webhook receiver, health and readiness probes, and `/metrics`.

The receiver stays thin (STYLE.md item 1): verify, route, dedupe and enqueue in one Redis
round trip, answer. No GitHub call, no agent and no template run on that path; the worker
does the rest. Every response is JSON with a short reason, never a traceback.
"""

from __future__ import annotations

import json
import logging
import time
import traceback
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import redis
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from app import telemetry
from app.config import ConfigError, Settings
from app.webhooks import KNOWN_EVENTS, Ignored, route, verify_signature
from jobs.queue import enqueue_trigger, job_id_for, preload

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/api/github/webhooks"
# Delivery ids are GUIDs and event names short words; anything longer is not from GitHub.
_MAX_HEADER_CHARS = 200


class _BodyTooLarge(Exception):
    pass


def _reply(status_code: int, status: str, reason: str, **extra: object) -> JSONResponse:
    return JSONResponse({"status": status, "reason": reason, **extra}, status_code=status_code)


async def _read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing (before reading it) anything that says or turns out to be
    larger than `limit`; never holds more than `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and (
        not (declared.isascii() and declared.isdigit()) or int(declared) > limit
    ):
        raise _BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


class WebhookReceiver:
    """`POST /api/github/webhooks`: one delivery in, one short JSON answer out."""

    def __init__(self, settings: Settings, connection: redis.Redis) -> None:
        self.settings = settings
        self.connection = connection

    async def endpoint(self, request: Request) -> Response:
        event = request.headers.get("x-github-event", "")
        label = event if event in KNOWN_EVENTS else "other"
        try:
            response, outcome = await self._handle(request, event)
        except Exception as exc:  # the catch-all: log what failed, never the body
            log.error(
                "webhook %s failed with %s\n%s",
                request.headers.get("x-github-delivery", "?")[:_MAX_HEADER_CHARS],
                type(exc).__name__,
                "".join(traceback.format_tb(exc.__traceback__)),
            )
            response, outcome = _reply(500, "error", "internal error; see the server log"), "error"
        telemetry.webhook_deliveries.labels(event=label, outcome=outcome).inc()
        return response

    async def _handle(self, request: Request, event: str) -> tuple[Response, str]:
        settings = self.settings
        delivery_id = request.headers.get("x-github-delivery", "")
        for name, value in (("X-GitHub-Event", event), ("X-GitHub-Delivery", delivery_id)):
            if not value:
                return _reply(400, "rejected", f"missing {name} header"), "rejected"
            if len(value) > _MAX_HEADER_CHARS or not value.isprintable():
                return _reply(400, "rejected", f"malformed {name} header"), "rejected"
        try:
            body = await _read_body(request, settings.max_body_bytes)
        except _BodyTooLarge:
            reason = f"body exceeds {settings.max_body_bytes} bytes"
            return _reply(413, "rejected", reason), "rejected"
        signature = request.headers.get("x-hub-signature-256")
        if not verify_signature(settings.webhook_secrets, body, signature):
            telemetry.webhook_signature_failures.inc()
            reason = "signature missing" if not signature else "signature does not match"
            return _reply(401, "rejected", reason), "rejected"
        try:
            payload = json.loads(body)
        except (ValueError, RecursionError):  # deep nesting overflows the parser
            return _reply(400, "rejected", "body is not valid JSON"), "rejected"
        if not isinstance(payload, dict):
            return _reply(400, "rejected", "body is not a JSON object"), "rejected"

        routed = route(event, delivery_id, payload)
        if isinstance(routed, Ignored):
            return _reply(202, "ignored", routed.reason), "ignored"
        started = time.perf_counter()
        try:
            queued = await run_in_threadpool(enqueue_trigger, self.connection, settings, routed)
        except redis.RedisError as exc:
            # GitHub does not redeliver a failed delivery by itself: the 503 marks it failed in
            # the App's delivery log, where `idp-copilot redeliver` (or an operator) resends it.
            log.warning("webhook %s not queued: Redis error %s", delivery_id, type(exc).__name__)
            return _reply(503, "unavailable", "queue unavailable; redeliver later"), "unavailable"
        telemetry.enqueue_seconds.observe(time.perf_counter() - started)
        if not queued:
            return _reply(200, "duplicate", "delivery already received"), "duplicate"
        job_id = job_id_for(delivery_id)
        log.info("webhook %s queued as %s (%s.%s)", delivery_id, job_id, event, routed.action)
        return _reply(202, "queued", f"{event}.{routed.action}", job_id=job_id), "queued"


async def healthz(request: Request) -> Response:
    """The process is up (liveness)."""
    return JSONResponse({"status": "ok"})


async def metrics(request: Request) -> Response:
    """Prometheus exposition of the default registry."""
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)


def _readyz(connection: redis.Redis):
    async def readyz(request: Request) -> Response:
        """Ready when Redis answers PING (readiness)."""
        try:
            await run_in_threadpool(connection.ping)
        except redis.RedisError:
            return _reply(503, "unavailable", "Redis is not reachable")
        return JSONResponse({"status": "ok"})

    return readyz


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    body = {"status": "error", "reason": str(exc.detail)}
    return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)


async def _server_error(request: Request, exc: Exception) -> Response:
    log.error("%s %s failed with %s", request.method, request.url.path, type(exc).__name__)
    return _reply(500, "error", "internal error; see the server log")


def redis_connection(settings: Settings) -> redis.Redis:
    """The web process's Redis client: short timeouts so an outage answers 503 quickly."""
    return redis.Redis.from_url(
        settings.redis_url, socket_connect_timeout=2, socket_timeout=5, health_check_interval=30
    )


def create_app(
    settings: Settings,
    connection: redis.Redis | None = None,
    extra_routes: Sequence[BaseRoute] = (),
) -> Starlette:
    """The web app. `extra_routes` is where the operator API and console mount, e.g.
    `Mount("/api", routes=...)`: they come after the webhook route, which keeps its path."""
    if not settings.webhook_secrets:
        raise ConfigError(
            "GITHUB_WEBHOOK_SECRET is not set: the receiver cannot verify deliveries. Set it to "
            "the App's webhook secret (several secrets, comma-separated, during a rotation)."
        )
    connection = connection if connection is not None else redis_connection(settings)
    routes: list[BaseRoute] = [
        Route(WEBHOOK_PATH, WebhookReceiver(settings, connection).endpoint, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", _readyz(connection), methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        *extra_routes,
    ]

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            preload(connection)
        except redis.RedisError:
            log.warning("Redis is not reachable at start-up; /readyz answers 503 until it is")
        yield

    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={HTTPException: _http_error, Exception: _server_error},
    )
    app.state.settings = settings
    app.state.redis = connection
    return app
