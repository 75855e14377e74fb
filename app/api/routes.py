"""The operator JSON API under `/api`: tools, agent systems, sessions and their event streams.

Every route needs a caller (see app/api/auth.py); errors are `{"error", "status"}`. Redis
calls run in the thread pool, as in the webhook receiver, so a slow Redis never blocks the
event loop.
"""

from __future__ import annotations

import json
from functools import cached_property
from typing import Any

import redis
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.api.agent_systems import (
    AgentSystemBody,
    AgentSystemError,
    AgentSystemStore,
    checked_system,
)
from app.api.auth import Gate, Principal
from app.api.control import REPO_PATTERN, SendMessage, SessionControl, StartSession, repo_of
from app.api.errors import ApiError, parse_body, validate
from app.api.feedback import FeedbackQuery, FeedbackView
from app.api.files import file_tree, forge_for, last_revision
from app.api.openapi import openapi_document
from app.api.session_json import session_detail, session_summary
from app.api.sse import HEARTBEAT_SECONDS, event_response, resume_from
from app.audit import AuditLog
from app.config import Settings
from app.domain.session import Session, SessionStatus
from app.events import EventBus
from app.redaction import redact
from tools.registry import ToolRegistry, default_registry

SESSION = "/sessions/{owner}/{name}/{number:int}"


class ListQuery(BaseModel):
    """`GET /api/sessions` query parameters."""

    model_config = ConfigDict(extra="ignore")

    repo: str | None = Field(None, pattern=REPO_PATTERN)
    status: SessionStatus | None = None
    page: int = Field(1, ge=1, le=100_000)
    per_page: int = Field(20, ge=1, le=100)


class OperatorApi:
    """The API's routes and the objects they share, for one web process."""

    def __init__(
        self,
        settings: Settings,
        connection: redis.Redis,
        gate: Gate,
        heartbeat: float = HEARTBEAT_SECONDS,
    ) -> None:
        self.settings = settings
        self.redis = connection
        self.gate = gate
        self.bus = EventBus(connection, settings)
        self.control = SessionControl(settings, connection, self.bus)
        self.systems = AgentSystemStore(connection, settings)
        self.feedback = FeedbackView(connection, settings)
        self.heartbeat = heartbeat

    @cached_property
    def registry(self) -> ToolRegistry:
        return default_registry(self.settings)

    def json(self, data: Any, status: int = 200) -> Response:
        """A JSON response with every configured secret value redacted, whatever the data."""
        text = json.dumps(data, default=str, ensure_ascii=False)
        text = redact(text, self.settings.secret_values())
        return Response(text, status_code=status, media_type="application/json")

    def routes(self) -> list[Route]:
        return [
            Route("/me", self.me, methods=["GET"]),
            Route("/tools", self.tools, methods=["GET"]),
            Route("/agent-systems", self.list_systems, methods=["GET"]),
            Route("/agent-systems", self.create_system, methods=["POST"]),
            Route("/agent-systems/{system}", self.get_system, methods=["GET"]),
            Route("/agent-systems/{system}", self.put_system, methods=["PUT"]),
            Route("/agent-systems/{system}", self.delete_system, methods=["DELETE"]),
            Route("/sessions", self.list_sessions, methods=["GET"]),
            Route("/sessions", self.start_session, methods=["POST"]),
            Route(SESSION, self.get_session, methods=["GET"]),
            Route(SESSION + "/messages", self.send_message, methods=["POST"]),
            Route(SESSION + "/cancel", self.cancel_session, methods=["POST"]),
            Route(SESSION + "/events", self.session_events, methods=["GET"]),
            Route(SESSION + "/files", self.session_files, methods=["GET"]),
            Route("/feedback", self.list_feedback, methods=["GET"]),
            Route("/events", self.all_events, methods=["GET"]),
            Route("/openapi.json", self.openapi, methods=["GET"]),
        ]

    # -- who, tools, profiles ---------------------------------------------------------------

    async def me(self, request: Request) -> Response:
        return self.json((await self.gate.require(request)).as_json())

    async def tools(self, request: Request) -> Response:
        await self.gate.require(request)
        tools = await run_in_threadpool(self.registry.describe)
        skipped = [p.as_json() for p in self.registry.not_loaded]
        return self.json({"tools": tools, "not_loaded": skipped})

    async def list_systems(self, request: Request) -> Response:
        await self.gate.require(request)
        systems = await run_in_threadpool(self.systems.list)
        return self.json({"agent_systems": [s.model_dump(mode="json") for s in systems]})

    async def get_system(self, request: Request) -> Response:
        await self.gate.require(request)
        name = request.path_params["system"]
        system = await run_in_threadpool(self.systems.get, name)
        if system is None:
            raise ApiError(404, f"there is no agent system {name!r}")
        return self.json(system.model_dump(mode="json"))

    async def create_system(self, request: Request) -> Response:
        principal = await self._operator(request)
        body = await parse_body(request, AgentSystemBody)
        if body.name is None:
            raise ApiError(422, "invalid request: name: Field required")
        system = checked_system(body, body.name, self.registry)
        await run_in_threadpool(self._store, self.systems.create, system)
        await run_in_threadpool(self._audit, principal, "create", system.name, "created")
        return self.json(system.model_dump(mode="json"), status=201)

    async def put_system(self, request: Request) -> Response:
        principal = await self._operator(request)
        name = request.path_params["system"]
        body = await parse_body(request, AgentSystemBody)
        if body.name not in (None, name):
            raise ApiError(
                422,
                f"invalid request: name: the body names {body.name!r}, "
                f"the path {name!r}; they must match",
            )
        system = checked_system(body, name, self.registry)
        created = await run_in_threadpool(self._store, self.systems.put, system)
        result = "created" if created else "updated"
        await run_in_threadpool(self._audit, principal, "put", system.name, result)
        return self.json(system.model_dump(mode="json"), status=201 if created else 200)

    async def delete_system(self, request: Request) -> Response:
        principal = await self._operator(request)
        name = request.path_params["system"]
        await run_in_threadpool(self._store, self.systems.delete, name)
        await run_in_threadpool(self._audit, principal, "delete", name, "deleted")
        return Response(status_code=204)

    async def _operator(self, request: Request) -> Principal:
        principal = await self.gate.require(request, write=True)
        if not principal.operator:
            raise ApiError(403, "only operators change agent systems")
        return principal

    def _audit(self, principal: Principal, action: str, name: str, result: str) -> None:
        """Agent-system changes go into the audit log with the operator token's name."""
        AuditLog(self.redis, self.settings).record(
            "agent_system",
            session_id=None,
            actor=principal.login,
            command=action,
            target=name,
            result=result,
        )

    @staticmethod
    def _store(action: Any, arg: Any) -> Any:
        try:
            return action(arg)
        except AgentSystemError as exc:
            raise ApiError(exc.status, exc.message) from None

    # -- sessions ---------------------------------------------------------------------------

    async def list_sessions(self, request: Request) -> Response:
        principal = await self.gate.require(request)
        query = validate(ListQuery, dict(request.query_params))
        offset = (query.page - 1) * query.per_page
        sessions, total = await run_in_threadpool(
            self.control.query, principal, query.repo, query.status, offset, query.per_page
        )
        more = offset + len(sessions) < total
        counts = await run_in_threadpool(self.feedback.counts, [s.id for s in sessions])
        return self.json(
            {
                "sessions": [session_summary(s, counts.get(s.id)) for s in sessions],
                "page": query.page,
                "per_page": query.per_page,
                "total": total,
                "next_page": query.page + 1 if more else None,
            }
        )

    async def start_session(self, request: Request) -> Response:
        principal = await self.gate.require(request, write=True)
        body = await parse_body(request, StartSession)
        result = await run_in_threadpool(self.control.start, principal, body)
        return self.json(self._with_links(result), status=202)

    async def _session(self, request: Request, write: bool = False) -> tuple[Any, Session]:
        principal = await self.gate.require(request, write=write)
        p = request.path_params
        repo = f"{p['owner']}/{p['name']}"
        session = await run_in_threadpool(self.control.load, principal, repo, p["number"])
        return principal, session

    async def get_session(self, request: Request) -> Response:
        _, session = await self._session(request)
        dry_run = await run_in_threadpool(self.control.is_dry_run, session.id)
        return self.json(session_detail(session, dry_run))

    async def files(self, session: Session) -> dict[str, Any]:
        """The session's files as a tree, and the diff of its newest commit."""
        dry_run = await run_in_threadpool(self.control.is_dry_run, session.id)
        revision = await last_revision(
            lambda: forge_for(self.settings, self.redis, dry_run), session
        )
        return {"tree": file_tree(session.files), "revision": revision}

    async def session_files(self, request: Request) -> Response:
        _, session = await self._session(request)
        return self.json({"session": session.id, **(await self.files(session))})

    async def list_feedback(self, request: Request) -> Response:
        principal = await self.gate.require(request)
        query = validate(FeedbackQuery, dict(request.query_params))
        if query.repo is not None and not principal.can_read(query.repo):
            raise ApiError(403, "you cannot read this repository's feedback")
        entries = await run_in_threadpool(self.feedback.query, principal, query)
        return self.json({"feedback": entries, "count": len(entries)})

    async def send_message(self, request: Request) -> Response:
        principal, session = await self._session(request, write=True)
        body = await parse_body(request, SendMessage)
        result = await run_in_threadpool(self.control.message, principal, session, body)
        return self.json(self._with_links(result), status=202)

    async def cancel_session(self, request: Request) -> Response:
        principal, session = await self._session(request, write=True)
        result = await run_in_threadpool(self.control.cancel, principal, session)
        return self.json(self._with_links(result))

    async def session_events(self, request: Request) -> Response:
        _, session = await self._session(request)
        last_id = resume_from(request)
        return event_response(
            self.bus, self.settings, session.id, last_id, heartbeat=self.heartbeat
        )

    async def all_events(self, request: Request) -> Response:
        """Every session's status changes, for the sessions list; a signed-in user gets only
        the repositories they can read."""
        principal = await self.gate.require(request)
        last_id = resume_from(request)
        return event_response(
            self.bus,
            self.settings,
            None,
            last_id,
            visible=lambda event: principal.can_read(repo_of(event.session_id)),
            heartbeat=self.heartbeat,
        )

    async def openapi(self, request: Request) -> Response:
        await self.gate.require(request)
        return self.json(openapi_document(self.routes()))

    @staticmethod
    def _with_links(result: dict[str, Any]) -> dict[str, Any]:
        path = f"/api/sessions/{result['repo']}/{result['number']}" if "repo" in result else None
        if path is None:
            return result
        return {**result, "url": path, "events": f"{path}/events"}
