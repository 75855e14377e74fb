"""The `ChatModel` that `IDP_LLM_PROVIDER` chooses, and the start-up check of its settings.

`serve`, `worker` and `run` call `check_provider_settings` when they start, so that a missing
key is a clear sentence at start-up rather than a failure at the first request of a user.
"""

from __future__ import annotations

from pydantic import SecretStr

from app.agent.providers.base import ChatModel
from app.config import ConfigError, Settings


def _is_set(secret: SecretStr | None) -> bool:
    return secret is not None and bool(secret.get_secret_value().strip())


def check_provider_settings(settings: Settings) -> None:
    """Raise `ConfigError` naming the variable to set when the chosen provider cannot work."""
    provider = settings.llm_provider
    if provider == "rules":
        return
    if settings.llm_timeout <= 0:
        raise ConfigError("IDP_LLM_TIMEOUT must be a positive number of seconds, e.g. 60")
    if provider == "openai":
        if not _is_set(settings.openai_api_key) and not settings.openai_base_url:
            raise ConfigError(
                "IDP_LLM_PROVIDER=openai needs OPENAI_API_KEY "
                "(or OPENAI_BASE_URL for a server that needs no key)"
            )
        if not settings.openai_model.strip():
            raise ConfigError("IDP_LLM_PROVIDER=openai needs OPENAI_MODEL, e.g. gpt-4o-mini")
    elif provider == "anthropic":
        if not _is_set(settings.anthropic_api_key):
            raise ConfigError("IDP_LLM_PROVIDER=anthropic needs ANTHROPIC_API_KEY")
        if not settings.anthropic_model.strip():
            raise ConfigError(
                "IDP_LLM_PROVIDER=anthropic needs ANTHROPIC_MODEL, e.g. claude-sonnet-4-5"
            )


def make_chat_model(settings: Settings) -> ChatModel | None:
    """The configured model, or None for the `rules` planner (which needs no model)."""
    check_provider_settings(settings)
    if settings.llm_provider == "openai":
        from app.agent.providers.openai_chat import OpenAIChat

        return OpenAIChat(settings)
    if settings.llm_provider == "anthropic":
        from app.agent.providers.anthropic_chat import AnthropicChat

        return AnthropicChat(settings)
    return None
