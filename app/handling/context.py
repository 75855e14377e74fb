"""`JobContext`: everything one job needs, built once per job and handed to every verb.

Its own module so the verbs can import it without importing the dispatcher that imports them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import redis

from app.agent.providers.base import ChatModel
from app.agent.publisher import fit_comment
from app.config import Settings
from app.config_layers import RepoConfigResult
from app.domain.session import Session
from app.events import EventBus
from app.github.forge import Forge, RepoRef
from app.grammar.commands import Trigger
from app.handling.audited import AuditScope
from app.redaction import redact
from app.repo_config import RepoConfig
from app.state import SessionStore
from tools.cluster import Cluster
from tools.registry import ToolRegistry

# Dedupe of one-off comments (refusals, config errors): long enough to read as "once".
ONCE_TTL = 30 * 24 * 3600


@dataclass
class JobContext:
    """Everything one job needs, built once per job (jobs/tasks.py `run_parsed`)."""

    settings: Settings
    connection: redis.Redis
    forge: Forge
    store: SessionStore
    trigger: Trigger
    repo: RepoRef
    session_id: str
    scope: AuditScope
    registry: ToolRegistry | None = None
    chat_model: ChatModel | None = None
    cluster: Cluster | None = None
    job_id: str | None = None
    config: RepoConfig = field(default_factory=RepoConfig)
    config_error: str | None = None
    config_result: RepoConfigResult | None = None  # where each setting came from

    def tools(self) -> ToolRegistry:
        if self.registry is None:
            from tools.registry import default_registry

            self.registry = default_registry(self.settings)
        return self.registry

    def once(self, *parts: object, ttl: int = ONCE_TTL) -> bool:
        """True the first time these parts are seen (SET NX), so a comment goes out once."""
        digest = hashlib.sha256("\0".join(str(p) for p in parts).encode()).hexdigest()[:32]
        return bool(self.connection.set(self.settings.key("once", digest), 1, nx=True, ex=ttl))

    def forget(self, *parts: object) -> None:
        digest = hashlib.sha256("\0".join(str(p) for p in parts).encode()).hexdigest()[:32]
        self.connection.delete(self.settings.key("once", digest))

    async def reply(self, body: str, *, once_key: tuple[object, ...] | None = None) -> bool:
        """Post `body` where the command was given, once per delivery and command (a
        redelivered or retried job posts nothing twice): redacted, fitted to one comment."""
        key = once_key or ("reply", self.trigger.delivery_id, self.scope.command, body)
        # A delivery is never seen again after its dedupe window; a refusal is kept longer.
        if not self.once(*key, ttl=ONCE_TTL if once_key else self.settings.dedupe_ttl):
            return False
        holder = Session(id=self.session_id, repo=self.trigger.repo, number=self.trigger.number)
        text = fit_comment(redact(body, self.settings.secret_values()), holder)
        try:
            await self.forge.post_comment(self.repo, self.trigger.number, text)
        except Exception:
            self.forget(*key)  # not posted: a retry of the job may post it
            raise
        # The console's conversation shows the answer too (it streams in as an event).
        EventBus(self.connection, self.settings).sink(self.session_id)("reply", {"text": text})
        return True
