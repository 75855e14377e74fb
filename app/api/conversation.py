"""A session told as a conversation: the requests, the agent's turns and every tool call with
its arguments and result, in the order they happened.

Built from what the session stores, so it reads the same after a restart: the model's
conversation (`Session.messages`) when a language model planned, the steps (`StepRecord`)
in any case (the rules planner's tool calls are steps only), and the operators' messages
from the session's event stream. Model messages carry no clock; each of their tool calls
takes the time of the step that ran it, so operator messages fall in between by time.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from app.domain.session import Session, StepRecord
from tools.registry import normalize_name

# A tool's arguments or result is cut at this size on the page (generated files are long).
MAX_SHOWN = 8_000


def shown(value: Any) -> str:
    """`value` as the page shows it: JSON, pretty, cut to `MAX_SHOWN` characters."""
    text = value if isinstance(value, str) else json.dumps(value, indent=2, default=str)
    if len(text) > MAX_SHOWN:
        return f"{text[:MAX_SHOWN]}\n… ({len(text) - MAX_SHOWN} more characters)"
    return text


def request_text(session: Session) -> str:
    if session.request_text:
        return session.request_text
    if session.request is not None:
        return f"/idp {session.command or 'create-service'} {session.request.name}"
    return f"/idp {session.command}" if session.command else "(started from GitHub)"


def _tool_entry(
    name: str, args: Any, at: float, step: StepRecord | None, call_id: str = ""
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "kind": "tool",
        "id": call_id or (step.idempotency_key[:16] if step else ""),
        "tool": name,
        "time": at,
        "args": shown(args if args is not None else {}),
        "ok": True,
        "result": "",
        "task": None,
    }
    if step is not None:
        entry["ok"] = step.ok
        entry["result"] = shown(step.output if step.ok else step.error or "")
        entry["task"] = step.task_id
        entry["seconds"] = round(step.finished_at - step.started_at, 3)
    return entry


def _model_turns(
    session: Session, steps: list[StepRecord], used: list[bool], canonical: Callable[[str], str]
) -> list[dict]:
    entries: list[dict[str, Any]] = []
    by_call: dict[str, dict[str, Any]] = {}
    at = session.created_at
    for index, message in enumerate(session.messages):
        role = message.get("role")
        if role == "user" and index > 0:
            text = message.get("content") or ""
            entries.append({"kind": "user", "who": "", "time": at, "text": text})
        elif role == "assistant":
            if (message.get("content") or "").strip():
                entries.append(
                    {"kind": "agent", "time": at, "text": message["content"], "who": "agent"}
                )
            for call in message.get("tool_calls") or []:
                name = canonical(call.get("name", ""))
                step = _claim(steps, used, name, call.get("arguments"))
                if step is not None:
                    at = max(at, step.started_at)
                args = call.get("arguments")
                if args is None:
                    args = call.get("raw_arguments") or ""
                entry = _tool_entry(call.get("name", ""), args, at, step, call.get("id", ""))
                by_call[call.get("id", "")] = entry
                entries.append(entry)
        elif role == "tool":
            entry = by_call.get(message.get("tool_call_id") or "")
            if entry is not None:
                entry["result"] = shown(message.get("content") or "")
                entry["ok"] = not message.get("is_error", False)
    return entries


def _claim(steps: list[StepRecord], used: list[bool], name: str, args: Any) -> StepRecord | None:
    """The step that ran this call: the first unmatched one of tool `name` with the same
    arguments, else the first unmatched one of that tool (the loop may have filled in
    arguments the model left out)."""
    wanted = normalize_name(name)
    same_tool = [i for i, s in enumerate(steps) if not used[i] and normalize_name(s.tool) == wanted]
    exact = [i for i in same_tool if steps[i].args == (args or {})]
    for i in exact[:1] or same_tool[:1]:
        used[i] = True
        return steps[i]
    return None


def conversation(
    session: Session,
    events: list[dict[str, Any]],
    canonical: Callable[[str], str] = lambda name: name,
) -> list[dict[str, Any]]:
    """The session's entries, oldest first.

    `events` are the stream's `message` events (`{"kind", "time", "data": {"from", "text",
    "action"}}`) and `reply` events (the App's answers to commands, `data: {"text"}`).
    `canonical` maps a tool name or alias as the model spelled it to the tool's name (the
    registry knows). Each entry has a `kind`: `request` and `user` (people), `agent` (the
    agent's text, Markdown), `tool` (a call: `tool`, `args`, `result`, `ok`)."""
    said = [
        {
            "kind": "request",
            "who": e["data"].get("from", ""),
            "time": e["time"],
            "text": e["data"].get("text", ""),
            "action": e["data"].get("action", ""),
        }
        for e in events
        if e.get("kind", "message") == "message"
    ]
    said += [
        {"kind": "agent", "who": "agent", "time": e["time"], "text": e["data"].get("text", "")}
        for e in events
        if e.get("kind") == "reply"
    ]
    entries: list[dict[str, Any]] = []
    if not any(m.get("action") == "start" for m in said):
        entries.append(
            {
                "kind": "request",
                "who": session.requester or "",
                "time": session.created_at,
                "text": request_text(session),
            }
        )
    steps, used = list(session.steps), [False] * len(session.steps)
    entries += _model_turns(session, steps, used, canonical)
    entries += [
        _tool_entry(step.tool, step.args, step.started_at, step)
        for step, taken in zip(steps, used, strict=True)
        if not taken
    ]
    # Python's sort is stable: entries of the same time keep the order they were built in.
    entries = sorted(said + entries, key=lambda e: e["time"])
    for number, entry in enumerate(entries):
        entry["n"] = number
    return entries
