"""The `/idp` grammar and the issue-form parser: text in, typed `Command` out.

MODELS ONLY for now: the parser functions are filled in by the commands work.
"""

from __future__ import annotations

import time
from typing import Literal

from pydantic import BaseModel, Field

from tools.service import ServiceRequest

Verb = Literal[
    "help",
    "create-service",
    "plan",
    "apply",
    "status",
    "retry",
    "cancel",
    "deploy",
    "feedback",
    "answer",
    "set",
    "ask",
    # not typed by users: an `idp:new-service` issue whose body is free text
    "request",
]
VERBS: tuple[str, ...] = Verb.__args__  # type: ignore[attr-defined]


class Command(BaseModel):
    """One parsed command. Only the fields its verb uses are set."""

    verb: Verb
    service: ServiceRequest | None = None
    text: str | None = None
    environment: str | None = None
    values: dict[str, str] = Field(default_factory=dict)
    line: str = ""


class CommandError(Exception):
    """Bad input from a user; `message` is the sentence (with the fix) we answer with."""

    def __init__(self, message: str, line: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.line = line


class Trigger(BaseModel):
    """What the receiver hands to a job: where the request came from and what it asks."""

    delivery_id: str
    event: str
    action: str | None = None
    repo: str
    installation_id: int | None = None
    number: int
    is_pull_request: bool = False
    sender: str
    comment_id: int | None = None
    title: str = ""
    state: str = "open"
    locked: bool = False
    commands: list[Command] = Field(default_factory=list)
    errors: list[str] = Field(default_factory=list)
    received_at: float = Field(default_factory=time.time)
