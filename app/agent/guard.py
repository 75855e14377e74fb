"""The loop guard: the limits that make sure an agent run always ends, and the key that
makes sure a side effect happens once.

Steps, wall time, the same call repeated with the same arguments, and a token budget. A
tripped guard raises `LoopGuardTripped` with a sentence the todo shows to the requester.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from app.agent.outcomes import LoopGuardTripped


def canonical_json(value: Any) -> str:
    """The one JSON spelling of `value` (sorted keys, no spaces): equal args, equal text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def idempotency_key(session_id: str, tool: str, args: dict[str, Any], files: Any = None) -> str:
    """sha256 of session, tool and canonical args (plus the files a repo tool commits, so a
    re-render with changed files is a new side effect and an unchanged one is not)."""
    parts = [session_id, tool, canonical_json(args)]
    if files is not None:
        parts.append(canonical_json(files))
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


@dataclass(frozen=True)
class GuardLimits:
    """Limits of one run; an agent profile or a repo's config may tighten them."""

    max_steps: int = 40
    max_seconds: float = 900.0
    max_repeats: int = 3
    max_tokens: int = 300_000


class LoopGuard:
    """Counts steps, calls and tokens of one run and trips when a limit is passed."""

    def __init__(
        self,
        max_steps: int = GuardLimits.max_steps,
        max_seconds: float = GuardLimits.max_seconds,
        max_repeats: int = GuardLimits.max_repeats,
        max_tokens: int = GuardLimits.max_tokens,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_steps = max_steps
        self.max_seconds = max_seconds
        self.max_repeats = max_repeats
        self.max_tokens = max_tokens
        self._clock = clock
        self._started = clock()
        self.steps = 0
        self.tokens = 0
        self._calls: Counter[str] = Counter()

    @classmethod
    def from_limits(cls, limits: GuardLimits, clock: Callable[[], float] = time.monotonic):
        return cls(
            limits.max_steps, limits.max_seconds, limits.max_repeats, limits.max_tokens, clock
        )

    def step(self) -> None:
        """Count one step (a model turn or a batch of ready tasks); trips on steps or time."""
        self.steps += 1
        if self.steps > self.max_steps:
            raise LoopGuardTripped(
                f"Stopped after {self.max_steps} steps, the limit for one run. "
                "Comment `/idp retry` to continue from the last completed step."
            )
        self._check_time()

    def check(self, call: Any) -> None:
        """Before a tool call (anything with `name` and `arguments`): trips when the same tool
        was already called with the same arguments `max_repeats` times in this run."""
        args = getattr(call, "arguments", None)
        if args is None:
            args = {"raw": getattr(call, "raw_arguments", None)}
        key = f"{call.name}:{canonical_json(args)}"
        self._calls[key] += 1
        if self._calls[key] > self.max_repeats:
            raise LoopGuardTripped(
                f"Stopped: `{call.name}` was called {self._calls[key]} times with the same "
                "arguments, so the agent was going in circles. Comment `/idp retry` to try "
                "again, or rephrase the request."
            )
        self._check_time()

    def record(self, input_tokens: int = 0, output_tokens: int = 0) -> None:
        """Add a model turn's token usage; trips when the run's budget is spent."""
        self.tokens += input_tokens + output_tokens
        if self.tokens > self.max_tokens:
            raise LoopGuardTripped(
                f"Stopped: the run used {self.tokens:,} tokens, more than its budget of "
                f"{self.max_tokens:,}. Comment `/idp retry` to continue with a fresh budget."
            )

    def _check_time(self) -> None:
        elapsed = self._clock() - self._started
        if elapsed > self.max_seconds:
            raise LoopGuardTripped(
                f"Stopped after {elapsed:.0f} seconds, the time limit for one run is "
                f"{self.max_seconds:.0f}. Comment `/idp retry` to continue from the last "
                "completed step."
            )
