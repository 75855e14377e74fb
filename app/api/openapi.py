"""The OpenAPI 3.1 document served at `/api/openapi.json`.

Paths, methods and path parameters come from the routes themselves, and request bodies
from the same pydantic models the handlers validate with, so the document cannot drift from
what the server serves; what each operation means (summary, responses) is written here,
keyed by the handler's name.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel
from starlette.convertors import FloatConvertor, IntegerConvertor
from starlette.routing import Route

from app.api.agent_systems import AgentSystem, AgentSystemBody
from app.api.control import SendMessage, StartSession

_REF = "#/components/schemas/{model}"
_SSE = {
    "description": "Server-Sent Events: `id:` is the Redis stream id, `data:` a JSON object "
    "with id, session, kind, data and time. Reconnect with `Last-Event-ID` (or the query "
    "parameter `last_event_id`) to continue after that event. Comment lines are heartbeats.",
    "content": {"text/event-stream": {"schema": {"type": "string"}}},
}


def _schema(model: type[BaseModel]) -> dict[str, Any]:
    return model.model_json_schema(ref_template=_REF)


def _body(model: str) -> dict[str, Any]:
    return {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": _REF.format(model=model)}}},
    }


def _json(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {}}}


def _errors(*codes: int) -> dict[str, Any]:
    shape = {"content": {"application/json": {"schema": {"$ref": _REF.format(model="Error")}}}}
    words = {
        400: "malformed request",
        401: "no valid token or sign-in",
        403: "not allowed for this caller or repository",
        404: "not found",
        409: "conflicts with the current state",
        422: "the body or query does not validate",
    }
    return {str(code): {"description": words[code], **shape} for code in (401, *codes)}


def _op(summary: str, ok: dict[str, Any], *codes: int, **extra: Any) -> dict[str, Any]:
    code = extra.pop("code", "200")
    return {"summary": summary, "responses": {code: ok, **_errors(*codes)}, **extra}


def openapi_document(routes: Sequence[Route]) -> dict[str, Any]:
    """The document for these routes (mounted under /api)."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "IDP Copilot operator API",
            "version": "1",
            "description": "Sessions, tools and agent systems of IDP Copilot. Authenticate "
            "with `Authorization: Bearer TOKEN` (a token from IDP_API_TOKENS). A session id "
            "`owner/repo#12` appears in paths as the segments `owner/repo/12`.",
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {
                    "type": "object",
                    "properties": {"error": {"type": "string"}, "status": {"type": "integer"}},
                    "required": ["error", "status"],
                },
                "StartSession": _schema(StartSession),
                "SendMessage": _schema(SendMessage),
                "AgentSystemBody": _schema(AgentSystemBody),
                "AgentSystem": _schema(AgentSystem),
            },
        },
        "security": [{"bearer": []}],
        "paths": _paths(routes),
    }


def _paths(routes: Sequence[Route]) -> dict[str, Any]:
    """Each route's path (converters dropped), its path parameters typed by their converter,
    and one operation per method, described by `OPERATIONS[handler name]`."""
    paths: dict[str, Any] = {}
    for route in routes:
        entry = paths.setdefault("/api" + route.path_format, {})
        if route.param_convertors:
            entry["parameters"] = [
                {"name": name, "in": "path", "required": True, "schema": {"type": _type(c)}}
                for name, c in route.param_convertors.items()
            ]
        for method in sorted((route.methods or set()) - {"HEAD"}):
            entry[method.lower()] = OPERATIONS[route.name]
    return paths


def _type(convertor: object) -> str:
    if isinstance(convertor, IntegerConvertor):
        return "integer"
    return "number" if isinstance(convertor, FloatConvertor) else "string"


_QUERY = {"in": "query", "schema": {"type": "string"}}
_WRITE_SYSTEM = (400, 403, 409, 422)

# What each handler of app/api/routes.py does, keyed by its name.
OPERATIONS: dict[str, dict[str, Any]] = {
    "me": _op("The caller", _json("login and role")),
    "tools": _op(
        "The tool catalogue, and the plug-ins that were not loaded",
        _json("tools (name, aliases, schemas, source) and not_loaded"),
    ),
    "list_systems": _op("Agent systems, `default` first", _json("the profiles")),
    "create_system": _op(
        "Create an agent system",
        _json("the stored profile"),
        *_WRITE_SYSTEM,
        code="201",
        requestBody=_body("AgentSystemBody"),
    ),
    "get_system": _op("One agent system", _json("the profile"), 404),
    "put_system": _op(
        "Create or replace an agent system (not `default`)",
        _json("the stored profile"),
        *_WRITE_SYSTEM,
        requestBody=_body("AgentSystemBody"),
    ),
    "delete_system": _op(
        "Delete an agent system (not `default`)",
        {"description": "deleted"},
        403,
        404,
        409,
        code="204",
    ),
    "list_sessions": _op(
        "Sessions the caller can read, newest first",
        _json("sessions, page, per_page, total, next_page"),
        403,
        422,
        parameters=[
            {"name": "repo", **_QUERY},
            {"name": "status", **_QUERY},
            {"name": "page", "in": "query", "schema": {"type": "integer"}},
            {"name": "per_page", "in": "query", "schema": {"type": "integer"}},
        ],
    ),
    "start_session": _op(
        "Start a session (a dry run answers on the LocalForge)",
        _json("the queued session and its links"),
        400,
        403,
        422,
        code="202",
        requestBody=_body("StartSession"),
    ),
    "get_session": _op("One session: todo, steps, pull request, timings", _json(""), 403, 404),
    "send_message": _op(
        "Answer or continue a session",
        _json("the queued run"),
        400,
        403,
        404,
        409,
        422,
        code="202",
        requestBody=_body("SendMessage"),
    ),
    "cancel_session": _op("Cancel a session", _json("what was stopped"), 403, 404, 409),
    "session_events": _op("The session's live events", _SSE, 400, 403, 404),
    "session_files": _op(
        "The session's files as a tree, and its last revision's diff",
        _json("tree (folders and files with content) and revision (from, to, files)"),
        403,
        404,
    ),
    "all_events": _op("Status changes of every visible session", _SSE, 400),
    "list_feedback": _op(
        "Feedback on visible sessions, newest first",
        _json("feedback entries: session, user, rating, text, outcome"),
        403,
        422,
        parameters=[{"name": n, **_QUERY} for n in ("repo", "since", "until", "limit")],
    ),
    "openapi": _op("This document", _json("OpenAPI 3.1")),
}
