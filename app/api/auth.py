"""Who is asking, and what they may see: operators (API tokens) see and do everything; a
GitHub user signed in to the console sees the sessions of repositories they can read and acts
only where the matching `/idp` command would be allowed.

Tokens are compared in constant time and never logged. The console's signed cookie holds
either a digest of the operator token it was opened with (so removing the token from
IDP_API_TOKENS signs those browsers out) or a random handle of a GitHub sign-in kept in Redis.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import redis
from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection

from app.api.errors import ApiError
from app.api.github_user import SignInError, TokenRejected, fetch_repo_roles
from app.config import Settings
from app.github.forge import PERMISSION_RANK

log = logging.getLogger(__name__)

# GitHub App user tokens expire after eight hours; a console sign-in lasts as long.
SIGN_IN_TTL = 8 * 3600
# How long a user's readable repositories are trusted before GitHub is asked again.
ROLES_TTL = 300


@dataclass(frozen=True)
class Principal:
    """The caller: an operator, or a GitHub user with a role per repository they can read."""

    login: str
    operator: bool = False
    roles: Mapping[str, str] = field(default_factory=dict)
    via: Literal["token", "cookie"] = "token"

    def role(self, repo: str) -> str:
        return "admin" if self.operator else self.roles.get(repo.lower(), "none")

    def can_read(self, repo: str) -> bool:
        return self.may(repo, "read")

    def may(self, repo: str, needed: str) -> bool:
        return PERMISSION_RANK.get(self.role(repo), 0) >= PERMISSION_RANK.get(needed, 99)

    def as_json(self) -> dict[str, object]:
        return {"login": self.login, "operator": self.operator, "repositories": len(self.roles)}


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def token_matches(settings: Settings, token: str) -> str | None:
    """The name of `token` in IDP_API_TOKENS, or None; every token is compared, in constant
    time, as bytes (a str compare raises on non-ASCII text)."""
    found = None
    for name, known in settings.named_operator_tokens:
        if hmac.compare_digest(token.encode(), known.encode()):
            found = name
    return found if token else None


def digest_matches(settings: Settings, digest: str) -> str | None:
    """The name of the token whose digest the console cookie holds, or None."""
    found = None
    for name, known in settings.named_operator_tokens:
        if hmac.compare_digest(digest.encode(), token_digest(known).encode()):
            found = name
    return found


def unauthorized(message: str | None = None) -> ApiError:
    return ApiError(
        401,
        message
        or "sign in: send `Authorization: Bearer TOKEN` with a token from IDP_API_TOKENS, "
        "or sign in to the console at /console/login",
        headers={"WWW-Authenticate": 'Bearer realm="idp-copilot"'},
    )


class SignIns:
    """GitHub sign-ins of the console, in Redis: handle → login and the user's token, and the
    user's repository roles cached for a few minutes."""

    def __init__(self, settings: Settings, connection: redis.Redis) -> None:
        self.settings = settings
        self.redis = connection

    def _key(self, handle: str) -> str:
        return self.settings.key("console", "sign-in", handle)

    def _roles_key(self, handle: str) -> str:
        return self.settings.key("console", "roles", handle)

    def remember(self, login: str, token: str, roles: dict[str, str]) -> str:
        """Store a fresh sign-in; returns the handle the cookie keeps."""
        handle = secrets.token_urlsafe(24)
        pipe = self.redis.pipeline(transaction=True)
        pipe.set(self._key(handle), json.dumps({"login": login, "token": token}), ex=SIGN_IN_TTL)
        pipe.set(self._roles_key(handle), json.dumps(roles), ex=ROLES_TTL)
        pipe.execute()
        return handle

    def login(self, handle: str) -> str | None:
        """The GitHub login of a sign-in still held, without asking GitHub."""
        raw = self.redis.get(self._key(handle))
        return None if raw is None else json.loads(raw)["login"]

    def forget(self, handle: str) -> None:
        self.redis.delete(self._key(handle), self._roles_key(handle))

    async def principal(self, handle: str) -> Principal | None:
        """The signed-in user, roles refreshed from GitHub when the cache has expired; None
        when the sign-in is gone or GitHub no longer accepts its token."""
        raw, cached = await run_in_threadpool(
            self.redis.mget, [self._key(handle), self._roles_key(handle)]
        )
        if raw is None:
            return None
        record = json.loads(raw)
        if cached is not None:
            roles = json.loads(cached)
        else:
            try:
                roles = await fetch_repo_roles(self.settings, record["token"])
            except TokenRejected:
                await run_in_threadpool(self.forget, handle)
                return None
            except SignInError as exc:
                raise ApiError(503, str(exc)) from None
            await run_in_threadpool(
                self.redis.set, self._roles_key(handle), json.dumps(roles), ex=ROLES_TTL
            )
        return Principal(login=record["login"], roles=roles, via="cookie")


class Gate:
    """Authentication for the API and the console: one place that reads tokens and cookies."""

    def __init__(self, settings: Settings, connection: redis.Redis) -> None:
        self.settings = settings
        self.sign_ins = SignIns(settings, connection)

    async def principal(self, conn: HTTPConnection) -> Principal | None:
        """The caller, or None when anonymous. A bearer token that is not valid is a 401
        (never a silent fall-back to the cookie)."""
        header = conn.headers.get("authorization")
        if header is not None:
            scheme, _, token = header.partition(" ")
            name = token_matches(self.settings, token.strip())
            if scheme.lower() != "bearer" or name is None:
                raise unauthorized("the bearer token is not valid; use one from IDP_API_TOKENS")
            return Principal(login=name, operator=True)
        cookie = conn.scope.get("session") or {}
        digest = cookie.get("op")
        name = digest_matches(self.settings, digest) if isinstance(digest, str) else None
        if name is not None:
            return Principal(login=name, operator=True, via="cookie")
        handle = cookie.get("user")
        if isinstance(handle, str):
            return await self.sign_ins.principal(handle)
        return None

    async def require(self, conn: HTTPConnection, write: bool = False) -> Principal:
        """The caller or a 401. Writes through the API need a bearer token: the console's
        cookie only reads (its own forms carry a CSRF token), so no other site can make a
        signed-in browser change anything."""
        principal = await self.principal(conn)
        if principal is None:
            raise unauthorized()
        if write and principal.via == "cookie":
            raise ApiError(
                403,
                "changes through the API need `Authorization: Bearer TOKEN`; "
                "in the browser, use the console's forms",
            )
        return principal
