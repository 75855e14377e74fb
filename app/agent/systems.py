"""Agent systems: named profiles of provider, model, tool allow-list and loop limits.

Stored in Redis (one hash, name → JSON) so every web and worker process sees the same set. A
repository picks one in `.github/idp-copilot.yml`; `default` is built in (the `rules`
planner with the loop guard's limits) and can be neither changed nor deleted.
"""

from __future__ import annotations

import time
from typing import Literal

import redis
from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.agent.guard import GuardLimits
from app.config import Settings

DEFAULT_NAME = "default"
NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,62}$"


class AgentSystemBody(BaseModel):
    """What an operator sends to create or replace a profile (`name` comes from the path on
    PUT)."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(
        None, pattern=NAME_PATTERN, description="Lower-case letters, digits, '.', '_' and '-'."
    )
    description: str = Field("", max_length=500)
    provider: Literal["rules", "openai", "anthropic"] = Field(
        "rules", description="`rules` plans without a model; the others call an LLM."
    )
    model: str | None = Field(
        None,
        max_length=200,
        description="The provider's model; empty means OPENAI_MODEL or ANTHROPIC_MODEL.",
    )
    tools: list[str] | None = Field(
        None,
        max_length=200,
        description="Tool names or aliases the agent may use; null allows every tool.",
    )
    max_steps: int = Field(GuardLimits.max_steps, ge=1, le=1000)
    max_seconds: float = Field(GuardLimits.max_seconds, gt=0, le=24 * 3600)
    max_tokens: int = Field(GuardLimits.max_tokens, ge=1000, le=100_000_000)

    @field_validator("model")
    @classmethod
    def _blank_model(cls, value: str | None) -> str | None:
        return value.strip() or None if value is not None else None


class AgentSystem(AgentSystemBody):
    """A stored profile."""

    model_config = ConfigDict(extra="ignore")

    name: str = Field(pattern=NAME_PATTERN)
    builtin: bool = False
    updated_at: float = Field(default_factory=time.time)

    def limits(self) -> GuardLimits:
        """The loop guard's limits for runs under this profile."""
        return GuardLimits(
            max_steps=self.max_steps, max_seconds=self.max_seconds, max_tokens=self.max_tokens
        )


DEFAULT_SYSTEM = AgentSystem(
    name=DEFAULT_NAME,
    description="The rules planner: structured requests, no language model.",
    provider="rules",
    builtin=True,
    updated_at=0.0,
)


class AgentSystemError(Exception):
    """A profile cannot be stored or removed; `status` is the HTTP status that fits."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class AgentSystemStore:
    """The profiles in Redis, `default` always first."""

    def __init__(self, connection: redis.Redis, settings: Settings) -> None:
        self.redis = connection
        self.key = settings.key("agent-systems")

    def list(self) -> list[AgentSystem]:
        stored = [AgentSystem.model_validate_json(raw) for raw in self.redis.hvals(self.key) or []]
        return [DEFAULT_SYSTEM, *sorted(stored, key=lambda s: s.name)]

    def get(self, name: str) -> AgentSystem | None:
        """The profile called `name` (`default` included), or None."""
        if name == DEFAULT_NAME:
            return DEFAULT_SYSTEM
        raw = self.redis.hget(self.key, name)
        return None if raw is None else AgentSystem.model_validate_json(raw)

    def create(self, system: AgentSystem) -> AgentSystem:
        """Store a new profile; 409 when the name is taken."""
        self._refuse_builtin(system.name, "exists already")
        system.updated_at = time.time()
        if not self.redis.hsetnx(self.key, system.name, system.model_dump_json()):
            raise AgentSystemError(
                409,
                f"agent system {system.name!r} exists; PUT /api/agent-systems/"
                f"{system.name} replaces it",
            )
        return system

    def put(self, system: AgentSystem) -> bool:
        """Create or replace a profile; True when it was new."""
        self._refuse_builtin(system.name, "cannot be changed")
        system.updated_at = time.time()
        return bool(self.redis.hset(self.key, system.name, system.model_dump_json()))

    def delete(self, name: str) -> None:
        self._refuse_builtin(name, "cannot be deleted")
        if not self.redis.hdel(self.key, name):
            raise AgentSystemError(404, f"there is no agent system {name!r}")

    @staticmethod
    def _refuse_builtin(name: str, what: str) -> None:
        if name == DEFAULT_NAME:
            raise AgentSystemError(
                409,
                f"`{DEFAULT_NAME}` is the built-in rules planner and {what}; "
                "create a profile under another name",
            )
