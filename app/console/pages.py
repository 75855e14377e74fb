"""The console's pages: sessions (list, one session, its pull request), the chat box that starts
or continues a session, feedback, the tools catalogue and the agent systems.

Server-rendered and readable without JavaScript; a session page's todo then ticks live
through EventSource. Every page needs a caller (operator token or GitHub sign-in), and acts
through the same `SessionControl` as the JSON API, so both follow the same rules.
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from app.api.agent_systems import AgentSystemBody, AgentSystemError, checked_system
from app.api.auth import Gate, Principal
from app.api.control import SendMessage, StartSession
from app.api.conversation import conversation
from app.api.errors import ApiError, validate
from app.api.feedback import FeedbackQuery
from app.api.routes import OperatorApi
from app.api.session_json import is_web_url, session_detail, session_path, session_summary
from app.console.render import STATUSES, read_form, render
from app.domain.session import Session

PER_PAGE = 25
SESSION = "/sessions/{owner}/{name}/{number:int}"


class SignInFirst(Exception):
    """An anonymous caller asked for a page: the console sends them to the sign-in form."""


class Console:
    """Page handlers; `api` supplies the session control, event bus, tools and profiles."""

    def __init__(self, gate: Gate, api: OperatorApi) -> None:
        self.gate = gate
        self.api = api

    def routes(self) -> list[Route]:
        return [
            Route("/", self.home, methods=["GET"]),
            Route("/sessions", self.sessions, methods=["GET"]),
            Route("/sessions", self.start, methods=["POST"]),
            Route(SESSION, self.session, methods=["GET"]),
            Route(SESSION + "/live", self.live, methods=["GET"]),
            Route(SESSION + "/files", self.files, methods=["GET"]),
            Route(SESSION + "/pull", self.pull, methods=["GET"]),
            Route(SESSION + "/messages", self.message, methods=["POST"]),
            Route(SESSION + "/cancel", self.cancel, methods=["POST"]),
            Route("/feedback", self.feedback, methods=["GET"]),
            Route("/tools", self.tools, methods=["GET"]),
            Route("/agent-systems", self.systems, methods=["GET"]),
            Route("/agent-systems", self.save_system, methods=["POST"]),
            Route("/agent-systems/{system}/delete", self.delete_system, methods=["POST"]),
        ]

    async def who(self, request: Request) -> Principal:
        principal = await self.gate.principal(request)
        if principal is None:
            raise SignInFirst
        return principal

    async def home(self, request: Request) -> Response:
        await self.who(request)
        return RedirectResponse("/console/sessions", status_code=303)

    # -- sessions list and the chat box -----------------------------------------------------

    async def sessions(
        self,
        request: Request,
        error: str | None = None,
        form: dict[str, str] | None = None,
        status: int = 200,
    ) -> Response:
        principal = await self.who(request)
        params = request.query_params
        repo = params.get("repo") or None
        state = params.get("status") if params.get("status") in STATUSES else None
        page = int(params["page"]) if params.get("page", "").isdigit() else 1
        page = max(page, 1)
        try:
            found, total = await run_in_threadpool(
                self.api.control.query, principal, repo, state, (page - 1) * PER_PAGE, PER_PAGE
            )
        except ApiError as exc:
            found, total, error, status = [], 0, exc.message, exc.status
        counts = await run_in_threadpool(self.api.feedback.counts, [s.id for s in found])
        context = {
            "principal": principal,
            "sessions": [session_summary(s, counts.get(s.id)) for s in found],
            "total": total,
            "page": page,
            "pages": max(1, -(-total // PER_PAGE)),
            "filters": {"repo": repo or "", "status": state or ""},
            "error": error,
            "form": form or {"repo": repo or "", "dry_run": "on"},
            "last_event_id": await run_in_threadpool(self.api.bus.last_id),
        }
        return render(request, "sessions.html", context, status)

    async def start(self, request: Request) -> Response:
        principal = await self.who(request)
        fields = await read_form(request)
        number = fields.get("number", "").strip()
        data: dict[str, Any] = {
            "repo": fields.get("repo", "").strip(),
            "text": fields.get("text", ""),
            "dry_run": fields.get("dry_run") == "on",
            "number": int(number) if number.isdigit() else (number or None),
        }
        try:
            body = validate(StartSession, data)
            result = await run_in_threadpool(self.api.control.start, principal, body)
        except ApiError as exc:
            return await self.sessions(request, exc.message, fields, exc.status)
        target = f"/console/sessions/{result['repo']}/{result['number']}"
        return RedirectResponse(target, status_code=303)

    # -- one session ------------------------------------------------------------------------

    async def _load(self, request: Request) -> tuple[Principal, Session]:
        principal = await self.who(request)
        p = request.path_params
        repo = f"{p['owner']}/{p['name']}"
        session = await run_in_threadpool(self.api.control.load, principal, repo, p["number"])
        return principal, session

    def _context(self, principal: Principal, session: Session, dry_run: bool) -> dict[str, Any]:
        detail = session_detail(session, dry_run)
        pr_href = None
        if session.pr_url or session.pr_number is not None:
            local = f"/console/sessions/{session_path(session)}/pull"
            pr_href = session.pr_url if is_web_url(session.pr_url) else local
        return {
            "principal": principal,
            "s": detail,
            "todo": session.todo,
            "pr_href": pr_href,
            "may_act": principal.may(session.repo, "write"),
            "path": session_path(session),
        }

    async def session(
        self, request: Request, error: str | None = None, status: int = 200
    ) -> Response:
        principal, session = await self._load(request)
        bus = self.api.bus
        dry_run = await run_in_threadpool(self.api.control.is_dry_run, session.id)
        history = await run_in_threadpool(bus.history, session.id)
        context = self._context(principal, session, dry_run)
        context["entries"] = self._conversation(session, history)
        context["last_event_id"] = history[-1].id if history else "0-0"
        context["error"] = error
        context.update(await self.api.files(session))
        return render(request, "session.html", context, status)

    def _conversation(self, session: Session, history: list[Any]) -> list[dict[str, Any]]:
        registry = self.api.registry

        def canonical(name: str) -> str:
            return registry.get(name).name if name in registry else name

        said = [
            {"kind": e.kind, "time": e.time, "data": e.data}
            for e in history
            if e.kind in ("message", "reply")
        ]
        return conversation(session, said, canonical)

    async def live(self, request: Request) -> Response:
        """The parts of the session page that change (the todo and the conversation), for the
        page's script to swap in."""
        principal, session = await self._load(request)
        dry_run = await run_in_threadpool(self.api.control.is_dry_run, session.id)
        history = await run_in_threadpool(self.api.bus.history, session.id)
        context = self._context(principal, session, dry_run)
        context["entries"] = self._conversation(session, history)
        return render(request, "_refresh.html", context)

    async def files(self, request: Request) -> Response:
        """The files part of the session page: the tree and the last revision's diff."""
        principal, session = await self._load(request)
        context = {"principal": principal, **(await self.api.files(session))}
        return render(request, "_files.html", context)

    async def feedback(self, request: Request) -> Response:
        """Feedback on the sessions the caller can read, newest first, filtered."""
        principal = await self.who(request)
        params = dict(request.query_params)
        error, status, entries = None, 200, []
        try:
            query = validate(FeedbackQuery, params)
            if query.repo is not None and not principal.can_read(query.repo):
                raise ApiError(403, "you cannot read this repository's feedback")
            entries = await run_in_threadpool(self.api.feedback.query, principal, query)
        except ApiError as exc:
            error, status = exc.message, exc.status
        context = {
            "principal": principal,
            "entries": entries,
            "filters": {k: params.get(k, "") for k in ("repo", "since", "until")},
            "error": error,
            "up": sum(1 for e in entries if e["rating"] == 1),
            "down": sum(1 for e in entries if e["rating"] == -1),
        }
        return render(request, "feedback.html", context, status)

    async def pull(self, request: Request) -> Response:
        """A LocalForge pull request: the branch and the files it holds."""
        principal, session = await self._load(request)
        if session.pr_number is None and not session.pr_url:
            raise ApiError(404, "this session has no pull request yet")
        context = {
            "principal": principal,
            "s": session_summary(session),
            "session": session,
            "files": sorted(session.files.items()),
            "path": session_path(session),
        }
        return render(request, "pull.html", context)

    async def message(self, request: Request) -> Response:
        principal, session = await self._load(request)
        fields = await read_form(request)
        try:
            body = validate(SendMessage, {"text": fields.get("text", "")})
            await run_in_threadpool(self.api.control.message, principal, session, body)
        except ApiError as exc:
            return await self.session(request, exc.message, exc.status)
        return RedirectResponse(f"/console/sessions/{session_path(session)}", status_code=303)

    async def cancel(self, request: Request) -> Response:
        principal, session = await self._load(request)
        await read_form(request)
        try:
            await run_in_threadpool(self.api.control.cancel, principal, session)
        except ApiError as exc:
            return await self.session(request, exc.message, exc.status)
        return RedirectResponse(f"/console/sessions/{session_path(session)}", status_code=303)

    # -- catalogue and profiles -------------------------------------------------------------

    async def tools(self, request: Request) -> Response:
        principal = await self.who(request)
        tools = await run_in_threadpool(self.api.registry.describe)
        skipped = [p.as_json() for p in self.api.registry.not_loaded]
        context = {"principal": principal, "tools": tools, "not_loaded": skipped}
        return render(request, "tools.html", context)

    async def systems(
        self, request: Request, error: str | None = None, status: int = 200
    ) -> Response:
        principal = await self.who(request)
        systems = await run_in_threadpool(self.api.systems.list)
        context = {
            "principal": principal,
            "systems": systems,
            "error": error,
            "tool_names": self.api.registry.names,
        }
        return render(request, "agent_systems.html", context, status)

    async def save_system(self, request: Request) -> Response:
        principal = await self.who(request)
        fields = await read_form(request)
        if not principal.operator:
            return await self.systems(request, "Only operators change agent systems.", 403)
        tools = [t.strip() for t in fields.get("tools", "").split(",") if t.strip()]
        data: dict[str, Any] = {
            "name": fields.get("name", "").strip(),
            "description": fields.get("description", ""),
            "provider": fields.get("provider", "rules"),
            "model": fields.get("model") or None,
            "tools": tools or None,
        }
        for limit in ("max_steps", "max_seconds", "max_tokens"):
            if fields.get(limit, "").strip():
                data[limit] = fields[limit].strip()
        try:
            body = validate(AgentSystemBody, data)
            system = checked_system(body, body.name or "", self.api.registry)
            await run_in_threadpool(self.api.systems.put, system)
        except ApiError as exc:
            return await self.systems(request, exc.message, exc.status)
        except AgentSystemError as exc:
            return await self.systems(request, exc.message, exc.status)
        return RedirectResponse("/console/agent-systems", status_code=303)

    async def delete_system(self, request: Request) -> Response:
        principal = await self.who(request)
        await read_form(request)
        if not principal.operator:
            return await self.systems(request, "Only operators change agent systems.", 403)
        try:
            await run_in_threadpool(self.api.systems.delete, request.path_params["system"])
        except AgentSystemError as exc:
            return await self.systems(request, exc.message, exc.status)
        return RedirectResponse("/console/agent-systems", status_code=303)
