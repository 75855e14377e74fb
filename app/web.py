"""The Starlette app: the webhook receiver, health and readiness probes, and `/metrics`.

The receiver stays thin (STYLE.md item 1): verify, route, dedupe and enqueue in one Redis
round trip, answer. No GitHub call, no agent and no template run on that path; the worker
does the rest. Every response is JSON with a short reason, never a traceback.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import json
import logging
import time
import traceback
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import redis
import redis.asyncio as aioredis
from opentelemetry.context import Context
from opentelemetry.trace import SpanKind
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from app import telemetry
from app.body_limit import BodyTooLarge, read_body
from app.config import ConfigError, Settings
from app.logs import log_context
from app.tracing import tracer
from app.webhooks import KNOWN_EVENTS, Ignored, route, verify_signature
from jobs.pipelined_redis import PipelinedRedis, supports
from jobs.queue import (
    SEEN_BODY,
    SEEN_DELIVERY,
    AsyncRedis,
    enqueue_trigger_async,
    job_id_for,
    preload_async,
)

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/api/github/webhooks"
# Delivery ids are GUIDs and event names short words; anything longer is not from GitHub.
_MAX_HEADER_CHARS = 200
# Routing is linear and bounded (app/untrusted.py), yet a 64 KB comment of commands takes a
# few tens of milliseconds: bodies past this size are routed on a thread, so the loop keeps
# serving other deliveries and probes meanwhile. Smaller ones stay inline (no thread hop).
_ROUTE_INLINE_BYTES = 16 * 1024


@functools.cache
def _delivery_counter(event: str, outcome: str) -> Any:
    """The deliveries counter's child for (event, outcome): looked up once, not per delivery
    (events are the known ones or "other", outcomes a handful)."""
    return telemetry.webhook_deliveries.labels(event=event, outcome=outcome)


def _reply(status_code: int, status: str, reason: str, **extra: object) -> JSONResponse:
    return JSONResponse({"status": status, "reason": reason, **extra}, status_code=status_code)


class WebhookReceiver:
    """`POST /api/github/webhooks`: one delivery in, one short JSON answer out."""

    def __init__(
        self,
        settings: Settings,
        connect: Callable[[], AsyncRedis],
        connection: AsyncRedis | None = None,
    ) -> None:
        self.settings = settings
        # The round trip runs on the event loop, through an asyncio client: no thread
        # hand-off per delivery (the GIL passing between a thread and the loop cost more CPU
        # than the enqueue, bench/RESULTS.md), and a slow Redis still leaves the other routes
        # answering. An asyncio client belongs to the loop it first ran on: `connect` makes
        # one per loop (uvicorn runs one; Starlette's TestClient starts one per request),
        # unless `connection` is given.
        self._connect = connect
        self._fixed = connection
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: AsyncRedis | None = None

    def redis(self) -> AsyncRedis:
        """The asyncio Redis client for the running event loop."""
        if self._fixed is not None:
            return self._fixed
        loop = asyncio.get_running_loop()
        if loop is not self._loop or self._client is None:
            self._loop, self._client = loop, self._connect()
        return self._client

    async def aclose(self) -> None:
        """Close the client of the running loop (server shutdown)."""
        client, self._client, self._loop = self._client, None, None
        if client is not None:
            await client.aclose()

    async def endpoint(self, request: Request) -> Response:
        event = request.headers.get("x-github-event", "")
        label = event if event in KNOWN_EVENTS else "other"
        delivery_id = request.headers.get("x-github-delivery", "")[:_MAX_HEADER_CHARS]
        # A trace of its own per delivery (GitHub sends no trace context; nobody else may set
        # ours); the job's spans join it through the RQ job's meta.
        attributes = {
            "http.request.method": "POST",
            "url.path": WEBHOOK_PATH,
            "github.event": label,
        }
        with (
            log_context(delivery_id=delivery_id or None),
            tracer().start_as_current_span(
                "webhook", context=Context(), kind=SpanKind.SERVER, attributes=attributes
            ) as span,
        ):
            try:
                response, outcome = await self._handle(request, event)
            except Exception as exc:  # the catch-all: log what failed, never the body
                log.error(
                    "webhook %s failed with %s\n%s",
                    delivery_id or "?",
                    type(exc).__name__,
                    "".join(traceback.format_tb(exc.__traceback__)),
                )
                response = _reply(500, "error", "internal error; see the server log")
                outcome = "error"
            _delivery_counter(label, outcome).inc()
            span.set_attributes(
                {"http.response.status_code": response.status_code, "idp.outcome": outcome}
            )
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
            body = await read_body(request, settings.max_body_bytes)
        except BodyTooLarge:
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

        if len(body) <= _ROUTE_INLINE_BYTES:
            routed = route(event, delivery_id, payload)
        else:
            routed = await run_in_threadpool(route, event, delivery_id, payload)
        if isinstance(routed, Ignored):
            return _reply(202, "ignored", routed.reason), "ignored"
        # The verified signature is the HMAC of the body: a captured delivery replayed under
        # a new delivery id carries the same one, and is not run again.
        body_digest = signature.removeprefix("sha256=").strip().lower()  # type: ignore[union-attr]
        started = time.perf_counter()
        try:
            queued = await enqueue_trigger_async(self.redis(), settings, routed, body_digest)
        except redis.RedisError as exc:
            # GitHub does not redeliver a failed delivery by itself: the 503 marks it failed in
            # the App's delivery log, where `idp-copilot redeliver` (or an operator) resends it.
            log.warning("webhook %s not queued: Redis error %s", delivery_id, type(exc).__name__)
            return _reply(503, "unavailable", "queue unavailable; redeliver later"), "unavailable"
        telemetry.enqueue_seconds.observe(time.perf_counter() - started)
        if queued == SEEN_DELIVERY:
            return _reply(200, "duplicate", "delivery already received"), "duplicate"
        if queued == SEEN_BODY:
            reason = "this signed body was already received under another delivery id"
            return _reply(200, "duplicate", reason), "duplicate"
        job_id = job_id_for(delivery_id)
        log.info("webhook %s queued as %s (%s.%s)", delivery_id, job_id, event, routed.action)
        return _reply(202, "queued", f"{event}.{routed.action}", job_id=job_id), "queued"


async def healthz(request: Request) -> Response:
    """The process is up (liveness)."""
    return JSONResponse({"status": "ok"})


def _metrics(settings: Settings, connection: redis.Redis):
    exposition = telemetry.Exposition(
        REGISTRY, telemetry.QueueDepthCollector(connection, [settings.queue_name])
    )

    async def metrics(request: Request) -> Response:
        """Prometheus exposition: the default registry and the queue depth (read from Redis,
        so off the event loop)."""
        body = await run_in_threadpool(generate_latest, exposition)  # type: ignore[arg-type]
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    return metrics


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


# Short timeouts so an outage answers 503 quickly.
_CLIENT_OPTIONS: dict = {"socket_connect_timeout": 2, "socket_timeout": 5}


def redis_connection(settings: Settings) -> redis.Redis:
    """The web process's Redis client for the probes, metrics and the operator API."""
    return redis.Redis.from_url(settings.redis_url, health_check_interval=30, **_CLIENT_OPTIONS)


def enqueue_connection(settings: Settings) -> AsyncRedis:
    """The receiver's asyncio Redis client (one round trip per accepted delivery): one
    pipelined connection, or redis-py's client for URLs it does not take (TLS, options)."""
    if supports(settings.redis_url):
        return PipelinedRedis(settings.redis_url, connect_timeout=2, reply_timeout=5)
    return aioredis.Redis.from_url(settings.redis_url, **_CLIENT_OPTIONS)


def create_app(
    settings: Settings,
    connection: redis.Redis | None = None,
    extra_routes: Sequence[BaseRoute] = (),
    *,
    webhook_connection: AsyncRedis | None = None,
) -> Starlette:
    """The web app. `extra_routes` is where the operator API and console mount, e.g.
    `Mount("/api", routes=...)`: they come after the webhook route, which keeps its path.

    `connection` serves the probes, `/metrics` and the extra routes; deliveries are queued
    through `webhook_connection`, an asyncio client (by default `enqueue_connection`'s, one
    per event loop)."""
    if not settings.webhook_secrets:
        raise ConfigError(
            "GITHUB_WEBHOOK_SECRET is not set: the receiver cannot verify deliveries. Set it to "
            "the App's webhook secret (several secrets, comma-separated, during a rotation)."
        )
    connection = connection if connection is not None else redis_connection(settings)
    receiver = WebhookReceiver(settings, lambda: enqueue_connection(settings), webhook_connection)
    routes: list[BaseRoute] = [
        Route(WEBHOOK_PATH, receiver.endpoint, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", _readyz(connection), methods=["GET"]),
        Route("/metrics", _metrics(settings, connection), methods=["GET"]),
        *extra_routes,
    ]

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            await preload_async(receiver.redis())
        except redis.RedisError:
            log.warning("Redis is not reachable at start-up; /readyz answers 503 until it is")
        # What start-up loaded (modules, the GitHub schema models: ~70,000 objects) lives as
        # long as the process: out of the collector's sight, a full collection takes under a
        # millisecond instead of ~35 ms, which was the receiver's p99 under load
        # (bench/RESULTS.md).
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            await receiver.aclose()

    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={HTTPException: _http_error, Exception: _server_error},
    )
    app.state.settings = settings
    app.state.redis = connection
    return app
