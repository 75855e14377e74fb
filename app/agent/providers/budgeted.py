"""A `ChatModel` that spends from the installation's daily token budget.

Built around the job's chat model (jobs/tasks.py, app/handling/agent_run.py), so the agent loop and
`/idp ask` do not change: before each call the budget must have tokens left, after it the
call's input and output tokens are charged. Once the budget is spent, calls raise
`TokenBudgetSpent`, a `ProviderError` whose sentence the loop shows in the todo list and
the job posts once per installation and day (`spent_notice`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import redis

from app.agent.providers.base import ChatModel, Message, ModelTurn, ProviderError
from app.budgets import DAY, Window, first_notice, spend, spent
from app.config import Settings
from tools.spec import ToolSpec


class TokenBudgetSpent(ProviderError):
    """The installation used its model tokens for today."""


class BudgetedChatModel:
    """`inner` with a per-installation, per-UTC-day token budget (Settings.llm_tokens_per_day)."""

    def __init__(
        self,
        inner: ChatModel,
        connection: redis.Redis,
        settings: Settings,
        installation: int | str | None,
    ) -> None:
        self.inner, self.connection, self.settings = inner, connection, settings
        self.installation = installation if installation is not None else "local"
        self.name, self.model = inner.name, inner.model
        self.refused = False

    def _window(self) -> Window:
        return Window.now(DAY)

    def sentence(self) -> str:
        window = self._window()
        resets = time.strftime("%H:%M UTC", time.gmtime(window.ends_at))
        return (
            f"This installation has used its {self.settings.llm_tokens_per_day:,} model "
            f"tokens for today, so no model is asked until the budget resets at {resets}. "
            "Commands that need no model still work; an operator can raise "
            "IDP_LLM_TOKENS_PER_DAY."
        )

    async def complete(
        self, system: str, messages: Sequence[Message], tools: Sequence[ToolSpec]
    ) -> ModelTurn:
        limit = self.settings.llm_tokens_per_day
        window = self._window()
        if limit > 0 and spent(self.connection, self.settings, window, *self._key()) >= limit:
            self.refused = True
            raise TokenBudgetSpent(self.sentence())
        turn = await self.inner.complete(system, messages, tools)
        used = turn.usage.input_tokens + turn.usage.output_tokens
        if used > 0:
            spend(self.connection, self.settings, window, used, *self._key())
        return turn

    def _key(self) -> tuple[object, ...]:
        return ("llm-tokens", self.installation)

    def spent_notice(self) -> str | None:
        """The sentence to post when this job hit the spent budget and nobody was told today
        (once per installation and UTC day), else None."""
        if not self.refused:
            return None
        if not first_notice(self.connection, self.settings, self._window(), *self._key()):
            return None
        return self.sentence()


def budgeted(
    model: ChatModel | None,
    connection: redis.Redis,
    settings: Settings,
    installation: int | str | None,
) -> ChatModel | None:
    """`model` behind the installation's token budget (None stays None: the rules planner)."""
    if model is None or isinstance(model, BudgetedChatModel):
        return model
    return BudgetedChatModel(model, connection, settings, installation)
