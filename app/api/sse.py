"""Server-Sent Events from the Redis event streams.

Each event goes out with `id:` set to its stream id, so a browser's EventSource resumes by
itself: on reconnect it sends `Last-Event-ID` and the stream continues right after that id,
whichever web process answers. A comment line every few seconds keeps proxies from closing
an idle connection. Every event is a plain `message`; its `kind` is in the JSON body.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable

import redis
import redis.asyncio
from starlette.requests import Request
from starlette.responses import StreamingResponse

from app.api.errors import ApiError
from app.config import Settings
from app.events import FROM_START, Event, EventBus, valid_stream_id

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 15.0
RETRY_MS = 3000


def resume_from(request: Request) -> str:
    """Where a stream starts: the `Last-Event-ID` header (a reconnect), else the
    `last_event_id` query parameter (a first connect that has seen the page), else the start.
    The header wins: a browser reconnects to the same URL, query included."""
    value = request.headers.get("last-event-id") or request.query_params.get("last_event_id")
    if not value:
        return FROM_START
    value = value.strip()
    if not valid_stream_id(value):
        raise ApiError(400, "Last-Event-ID must be a stream id such as 1700000000000-0")
    return value


def format_event(event: Event) -> str:
    body = json.dumps(event.as_json(), default=str, separators=(",", ":"))
    return f"id: {event.id}\ndata: {body}\n\n"


async def _events(
    bus: EventBus,
    settings: Settings,
    session_id: str | None,
    last_id: str,
    visible: Callable[[Event], bool],
    heartbeat: float,
) -> AsyncIterator[str]:
    # One connection per stream: a blocking XREAD holds its connection until it returns.
    client = redis.asyncio.Redis.from_url(settings.redis_url, socket_connect_timeout=2)
    try:
        yield f"retry: {RETRY_MS}\n\n"
        while True:
            events = await bus.aread(client, session_id, last_id, int(heartbeat * 1000))
            if not events:
                yield ": heartbeat\n\n"
                continue
            for event in events:
                last_id = event.id
                if visible(event):
                    yield format_event(event)
    except redis.RedisError as exc:
        # The client reconnects with Last-Event-ID and loses nothing.
        log.warning("event stream ended: Redis error %s", type(exc).__name__)
    finally:
        await client.aclose()


def event_response(
    bus: EventBus,
    settings: Settings,
    session_id: str | None,
    last_id: str,
    visible: Callable[[Event], bool] = lambda event: True,
    heartbeat: float = HEARTBEAT_SECONDS,
) -> StreamingResponse:
    """The `text/event-stream` response for one session (or, with None, every session the
    caller may see, through `visible`)."""
    return StreamingResponse(
        _events(bus, settings, session_id, last_id, visible, heartbeat),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
