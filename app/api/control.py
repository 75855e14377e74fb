"""Sessions on behalf of a caller: find them, start them, continue them, cancel them.

Shared by the JSON API and the console's forms, so both apply the same rules: a caller sees
only sessions of repositories they can read, and may start, answer or cancel only where the
matching `/idp` command would be allowed. Starting a session is what a comment does: a
`Trigger` with a synthetic delivery id (`api-<uuid>`) goes onto the same RQ queue.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import redis
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from app.api.auth import Principal
from app.api.errors import ApiError
from app.audit import AuditLog
from app.config import Settings
from app.domain.session import session_id_for
from app.events import EventBus
from app.github.forge import PERMISSION_RANK
from app.grammar.commands import Command, Trigger, parse_comment
from app.handling.cancel import cancel_session
from app.repo_config import DEFAULT_PERMISSIONS
from app.state import Session, SessionStore
from app.untrusted import scrub
from jobs.queue import enqueue_trigger, job_id_for

# Text an operator or a signed-in user types: lone surrogates (JSON can carry them) made `?`.
UserText = Annotated[str, AfterValidator(scrub)]

REPO_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9-]{0,38}/[A-Za-z0-9._-]{1,100}$"
# Where the App answers on GitHub, dry runs of a repository are numbered from here, so a
# dry run's session never meets the session of a real issue with the same number.
GITHUB_DRY_RUN_NUMBERS_FROM = 900_000


class StartSession(BaseModel):
    """`POST /api/sessions`: a request against a repository, answered on GitHub (give the
    issue or pull request `number`) or, with `dry_run`, on the LocalForge (the chat)."""

    model_config = ConfigDict(extra="forbid")

    repo: str = Field(pattern=REPO_PATTERN, description="OWNER/REPO")
    text: UserText = Field(
        min_length=1,
        max_length=20_000,
        description="`/idp …` command lines, or a free-text request.",
    )
    number: int | None = Field(
        None, ge=1, le=2**31 - 1, description="The issue or pull request; optional for dry runs."
    )
    dry_run: bool = Field(False, description="Answer on the LocalForge, not on GitHub.")


class SendMessage(BaseModel):
    """`POST /api/sessions/{id}/messages`: an answer to the open question, a command, or more
    of the request."""

    model_config = ConfigDict(extra="forbid")

    text: UserText = Field(min_length=1, max_length=20_000)


def repo_of(session_id: str) -> str:
    return session_id.rpartition("#")[0]


def commands_for(text: str, free_verb: str) -> list[Command]:
    """The commands in `text`: `/idp` lines parsed like a comment, anything else one
    free-text command with `free_verb`. A bad `/idp` line is a 422 with the fix."""
    if not text.strip():
        raise ApiError(422, "text: write a command or a request; it holds only blanks")
    if not text.lstrip().lower().startswith("/idp"):
        return [Command(verb=free_verb, text=text.strip(), line=text.strip()[:200])]  # type: ignore[arg-type]
    commands, errors = parse_comment(text)
    if errors:
        raise ApiError(422, " ".join(e.message for e in errors))
    if not commands:
        raise ApiError(422, "no command found; write `/idp help` to list them")
    return commands


def needed_permission(commands: list[Command]) -> str:
    """The strongest permission any of `commands` needs by default, as on GitHub (a repo's
    config file may ask for more; the worker checks that again for signed-in users)."""
    needed = [DEFAULT_PERMISSIONS.get(c.verb, "admin") for c in commands]
    return max(needed, key=lambda p: PERMISSION_RANK[p])


class SessionControl:
    """Session queries and actions for one web process."""

    def __init__(self, settings: Settings, connection: redis.Redis, bus: EventBus) -> None:
        self.settings = settings
        self.redis = connection
        self.store = SessionStore(connection, settings)
        self.bus = bus
        self.audit = AuditLog(connection, settings)

    # -- reading ----------------------------------------------------------------------------

    def load(self, principal: Principal, repo: str, number: int) -> Session:
        """The session of `repo`#`number`: 403 before 404, so a caller learns nothing about
        repositories they cannot read."""
        if not principal.can_read(repo):
            raise ApiError(403, "you cannot read this repository's sessions")
        session = self.store.get(session_id_for(repo, number))
        if session is None:
            raise ApiError(404, f"no session {repo}#{number}")
        return session

    def query(
        self,
        principal: Principal,
        repo: str | None = None,
        status: str | None = None,
        offset: int = 0,
        limit: int = 20,
    ) -> tuple[list[Session], int]:
        """Sessions the caller can read, newest first, filtered; and how many matched."""
        if repo is not None and not principal.can_read(repo):
            raise ApiError(403, "you cannot read this repository's sessions")
        wanted = repo.lower() if repo is not None else None
        ids = [
            i
            for i in self.store.list_ids()
            if principal.can_read(repo_of(i)) and wanted in (None, repo_of(i).lower())
        ]
        if status is None:
            page = [s for s in self.store.get_many(ids[offset : offset + limit]) if s is not None]
            return page, len(ids)
        matched: list[Session] = []
        for start in range(0, len(ids), 200):
            chunk = self.store.get_many(ids[start : start + 200])
            matched += [s for s in chunk if s is not None and s.status == status]
        return matched[offset : offset + limit], len(matched)

    def is_dry_run(self, session_id: str) -> bool:
        return bool(self.redis.exists(self._dry_run_key(session_id)))

    def _dry_run_key(self, session_id: str) -> str:
        return self.settings.key("api", "dry-run", session_id)

    def _mark_dry_run(self, session_id: str) -> None:
        """A key per dry-run session, set again at every message: it outlives the session
        (saved at most a job's time after the message) by a day, never the other way."""
        ttl = self.settings.session_ttl + self.settings.job_timeout + 24 * 3600
        self.redis.set(self._dry_run_key(session_id), 1, ex=ttl)

    # -- acting -----------------------------------------------------------------------------

    def start(self, principal: Principal, body: StartSession) -> dict[str, Any]:
        """Queue a run for a new (or an issue's existing) session."""
        commands = commands_for(body.text, "request")
        self._check_may(principal, body.repo, commands)
        if body.number is None and not body.dry_run:
            raise ApiError(
                422,
                "number: give the issue or pull request the App answers on, "
                "or set dry_run to answer on the LocalForge",
            )
        verb = commands[0].verb
        session = Session(
            id="",
            repo=body.repo,
            number=body.number or 0,
            requester=principal.login,
            command=verb,
            request=commands[0].service,
            request_text=body.text.strip() if verb == "request" else None,
        )
        if body.number is not None:
            session.id = session_id_for(body.repo, body.number)
            self.store.create(session)  # an existing session of that issue is continued
        else:
            self._create_numbered(session)
        if body.dry_run:
            self._mark_dry_run(session.id)
        return self._enqueue(principal, session, commands, body.dry_run, body.text, "start")

    def message(self, principal: Principal, session: Session, body: SendMessage) -> dict[str, Any]:
        """Continue a session: a command, an answer to its open question, or more text."""
        if session.status == "cancelled":
            raise ApiError(409, "this session was cancelled; start a new one")
        asks = session.todo is not None and bool(session.todo.open_questions)
        commands = commands_for(body.text, "answer" if asks else "request")
        own_answer = all(c.verb == "answer" for c in commands) and (
            (session.requester or "").lower() == principal.login.lower()
        )
        # As on GitHub, the requester may answer their own question whatever their role.
        if not (own_answer and principal.can_read(session.repo)):
            self._check_may(principal, session.repo, commands)
        dry_run = self.is_dry_run(session.id)
        if dry_run:
            self._mark_dry_run(session.id)
        return self._enqueue(principal, session, commands, dry_run, body.text, "message")

    def cancel(self, principal: Principal, session: Session) -> dict[str, Any]:
        """Cancel the session as `/idp cancel` does (jobs/cancel.py `cancel_session`)."""
        if not principal.may(session.repo, DEFAULT_PERMISSIONS["cancel"]):
            raise ApiError(403, "`/idp cancel` needs write permission on this repository")
        done = cancel_session(self.redis, self.settings, session.id, principal.login)
        if not done.cancelled:
            raise ApiError(409, f"the session is {done.state}; there is nothing to cancel")
        self.bus.publish(session.id, "status", {"status": "cancelled", "by": principal.login})
        self._record(principal, session.id, "cancel", "cancelled", {"stopped_jobs": done.stopped})
        return {
            "session": session.id,
            "repo": session.repo,
            "number": session.number,
            "status": "cancelled",
            "cancelled_jobs": done.dropped,
            "stopped_jobs": done.stopped,
        }

    # -- helpers ----------------------------------------------------------------------------

    def _check_may(self, principal: Principal, repo: str, commands: list[Command]) -> None:
        if not principal.can_read(repo):
            raise ApiError(403, "you cannot read this repository's sessions")
        needed = needed_permission(commands)
        if not principal.may(repo, needed):
            verbs = ", ".join(sorted({f"/idp {c.verb}" for c in commands}))
            raise ApiError(
                403,
                f"{verbs} needs {needed} permission on {repo}; you have {principal.role(repo)}",
            )

    def _create_numbered(self, session: Session) -> None:
        """A dry run without a number gets the next free one of its repository."""
        counter = self.settings.key("api", "next-number", session.repo.lower())
        first = GITHUB_DRY_RUN_NUMBERS_FROM if self.settings.uses_github else 1
        while True:
            pipe = self.redis.pipeline(transaction=True)
            pipe.incr(counter)
            # Bounded like the sessions it numbers; after a reset the loop skips used numbers.
            pipe.expire(counter, self.settings.session_ttl)
            session.number = first - 1 + int(pipe.execute()[0])
            session.id = session_id_for(session.repo, session.number)
            if self.store.create(session):
                return

    def _enqueue(
        self,
        principal: Principal,
        session: Session,
        commands: list[Command],
        dry_run: bool,
        text: str,
        action: str,
    ) -> dict[str, Any]:
        trigger = Trigger(
            delivery_id=f"api-{uuid.uuid4()}",
            event="api",
            action=action,
            repo=session.repo,
            number=session.number,
            sender=principal.login,
            title=text.strip().splitlines()[0][:120],
            commands=commands,
            dry_run=dry_run,
            authorized_permission="admin" if principal.operator else None,
        )
        self.bus.publish(
            session.id, "message", {"from": principal.login, "text": text.strip(), "action": action}
        )
        enqueue_trigger(self.redis, self.settings, trigger)
        job_id = job_id_for(trigger.delivery_id)
        detail = {"job_id": job_id, "commands": [c.verb for c in commands], "dry_run": dry_run}
        self._record(principal, session.id, action, "queued", detail)
        return {
            "session": session.id,
            "repo": session.repo,
            "number": session.number,
            "status": "queued",
            "job_id": job_id,
            "dry_run": dry_run,
            "commands": [c.verb for c in commands],
        }

    def _record(
        self, principal: Principal, session_id: str, action: str, result: str, detail: dict
    ) -> None:
        """One audit entry for an operator API or console action, naming who took it: the
        operator token's name or the GitHub login, and which door (`api` or `console`)."""
        self.audit.record(
            "session",
            session_id=session_id,
            actor=principal.login,
            command=action,
            target=session_id,
            result=result,
            detail={"via": "console" if principal.via == "cookie" else "api", **detail},
        )
