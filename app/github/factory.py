"""Choose the forge a worker answers on: GitHub when the App is configured, else local."""

from __future__ import annotations

import redis

from app.config import ConfigError, Settings
from app.github.forge import Forge


def make_forge(settings: Settings, connection: redis.Redis) -> Forge:
    """`GitHubForge` for a configured App, `LocalForge` otherwise (dry runs, the demo)."""
    if settings.uses_github:
        if not settings.github_app_id or settings.private_key() is None:
            raise ConfigError(
                "IDP_FORGE=github needs GITHUB_APP_ID and GITHUB_APP_PRIVATE_KEY "
                "(or GITHUB_APP_PRIVATE_KEY_PATH); register the App with `idp-copilot register`"
            )
        from app.github.github_forge import GitHubForge

        return GitHubForge(settings, connection)
    from app.github.local_forge import LocalForge

    return LocalForge(settings.local_forge_root)
