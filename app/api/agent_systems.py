"""Agent systems in the operator API: the stored profiles (app/agent/systems.py) checked
against the tool registry before they are saved."""

from __future__ import annotations

from app.agent.systems import (
    DEFAULT_NAME,
    DEFAULT_SYSTEM,
    NAME_PATTERN,
    AgentSystem,
    AgentSystemBody,
    AgentSystemError,
    AgentSystemStore,
)
from app.api.errors import ApiError, validate
from tools.registry import ToolRegistry

__all__ = [
    "DEFAULT_NAME",
    "DEFAULT_SYSTEM",
    "NAME_PATTERN",
    "AgentSystem",
    "AgentSystemBody",
    "AgentSystemError",
    "AgentSystemStore",
    "checked_system",
]


def checked_system(body: AgentSystemBody, name: str, registry: ToolRegistry) -> AgentSystem:
    """The profile to store from `body`, tool names made canonical; a 422 names what does
    not fit (a model for the rules provider, an unknown tool)."""
    system = validate(AgentSystem, {**body.model_dump(), "name": name})
    if system.provider == "rules" and system.model is not None:
        raise ApiError(
            422,
            "invalid request: model: the rules provider uses no model; "
            "leave it out or choose openai or anthropic",
        )
    if system.tools is not None:
        unknown = [t for t in system.tools if t not in registry]
        if unknown:
            raise ApiError(
                422,
                f"invalid request: tools: unknown {', '.join(unknown)}; "
                f"known: {', '.join(registry.names)}",
            )
        system.tools = list(dict.fromkeys(registry.get(t).name for t in system.tools))
    return system
