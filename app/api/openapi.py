"""The OpenAPI 3.1 document served at `/api/openapi.json`.

Request bodies come from the same pydantic models the handlers validate with, so the
document cannot drift from what the server accepts; paths and responses are written here.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from pydantic import BaseModel

from app.api.agent_systems import AgentSystem, AgentSystemBody
from app.api.control import SendMessage, StartSession

_REF = "#/components/schemas/{model}"
_SESSION_PARAMS = [
    {"name": "owner", "in": "path", "required": True, "schema": {"type": "string"}},
    {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}},
    {"name": "number", "in": "path", "required": True, "schema": {"type": "integer"}},
]
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


@cache
def openapi_document() -> dict[str, Any]:
    session_ops = {"parameters": _SESSION_PARAMS}
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
        "paths": {
            "/api/me": {"get": _op("The caller", _json("login and role"))},
            "/api/tools": {
                "get": _op(
                    "The tool catalogue, and the plug-ins that were not loaded",
                    _json("tools (name, aliases, schemas, source) and not_loaded"),
                )
            },
            "/api/agent-systems": {
                "get": _op("Agent systems, `default` first", _json("the profiles")),
                "post": _op(
                    "Create an agent system",
                    _json("the stored profile"),
                    400,
                    403,
                    409,
                    422,
                    code="201",
                    requestBody=_body("AgentSystemBody"),
                ),
            },
            "/api/agent-systems/{name}": {
                "parameters": [
                    {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
                ],
                "get": _op("One agent system", _json("the profile"), 404),
                "put": _op(
                    "Create or replace an agent system (not `default`)",
                    _json("the stored profile"),
                    400,
                    403,
                    409,
                    422,
                    requestBody=_body("AgentSystemBody"),
                ),
                "delete": _op(
                    "Delete an agent system (not `default`)",
                    {"description": "deleted"},
                    403,
                    404,
                    409,
                    code="204",
                ),
            },
            "/api/sessions": {
                "get": _op(
                    "Sessions the caller can read, newest first",
                    _json("sessions, page, per_page, total, next_page"),
                    403,
                    422,
                    parameters=[
                        {"name": "repo", "in": "query", "schema": {"type": "string"}},
                        {"name": "status", "in": "query", "schema": {"type": "string"}},
                        {"name": "page", "in": "query", "schema": {"type": "integer"}},
                        {"name": "per_page", "in": "query", "schema": {"type": "integer"}},
                    ],
                ),
                "post": _op(
                    "Start a session (a dry run answers on the LocalForge)",
                    _json("the queued session and its links"),
                    400,
                    403,
                    422,
                    code="202",
                    requestBody=_body("StartSession"),
                ),
            },
            "/api/sessions/{owner}/{name}/{number}": {
                **session_ops,
                "get": _op("One session: todo, steps, pull request, timings", _json(""), 403, 404),
            },
            "/api/sessions/{owner}/{name}/{number}/messages": {
                **session_ops,
                "post": _op(
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
            },
            "/api/sessions/{owner}/{name}/{number}/cancel": {
                **session_ops,
                "post": _op("Cancel a session", _json("what was stopped"), 403, 404, 409),
            },
            "/api/sessions/{owner}/{name}/{number}/events": {
                **session_ops,
                "get": _op("The session's live events", _SSE, 400, 403, 404),
            },
            "/api/sessions/{owner}/{name}/{number}/files": {
                **session_ops,
                "get": _op(
                    "The session's files as a tree, and its last revision's diff",
                    _json("tree (folders and files with content) and revision (from, to, files)"),
                    403,
                    404,
                ),
            },
            "/api/events": {"get": _op("Status changes of every visible session", _SSE, 400)},
            "/api/feedback": {
                "get": _op(
                    "Feedback on visible sessions, newest first",
                    _json("feedback entries: session, user, rating, text, outcome"),
                    403,
                    422,
                    parameters=[
                        {"name": n, "in": "query", "schema": {"type": "string"}}
                        for n in ("repo", "since", "until", "limit")
                    ],
                )
            },
            "/api/openapi.json": {"get": _op("This document", _json("OpenAPI 3.1"))},
        },
    }
