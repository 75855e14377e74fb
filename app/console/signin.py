"""Signing in to the console: with GitHub (the App's user OAuth flow) or with an operator
token typed into the form. The signed cookie keeps who signed in; see app/api/auth.py."""

from __future__ import annotations

import hmac
import logging
import secrets

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from app.api.auth import Gate, digest_matches, token_digest, token_matches
from app.api.errors import ApiError
from app.api.github_user import (
    SignInError,
    authorize_url,
    exchange_code,
    fetch_login,
    fetch_repo_roles,
)
from app.audit import AuditLog
from app.config import Settings
from app.console.render import read_form, render, safe_next

log = logging.getLogger(__name__)

CALLBACK_PATH = "/console/login/github/callback"


class SignIn:
    """The sign-in and sign-out routes (the only console pages open to anonymous callers)."""

    def __init__(self, settings: Settings, gate: Gate) -> None:
        self.settings = settings
        self.gate = gate

    @property
    def github_enabled(self) -> bool:
        return bool(self.settings.github_client_id and self.settings.github_client_secret)

    def routes(self) -> list[Route]:
        return [
            Route("/login", self.form, methods=["GET"]),
            Route("/login", self.with_token, methods=["POST"]),
            Route("/login/github", self.to_github, methods=["GET"]),
            Route("/login/github/callback", self.from_github, methods=["GET"]),
            Route("/logout", self.sign_out, methods=["POST"]),
        ]

    def page(self, request: Request, error: str | None = None, status: int = 200) -> Response:
        return render(
            request,
            "login.html",
            {
                "principal": None,
                "error": error,
                "github": self.github_enabled,
                "next": safe_next(request.query_params.get("next")),
            },
            status,
        )

    async def form(self, request: Request) -> Response:
        return self.page(request)

    async def with_token(self, request: Request) -> Response:
        try:
            fields = await read_form(request)
        except ApiError as exc:
            return self.page(request, exc.message, exc.status)
        token = fields.get("token", "").strip()
        name = token_matches(self.settings, token)
        if name is None:
            # Refusals are not audited: a flood of them would trim real entries off the log.
            return self.page(request, "That token is not one of IDP_API_TOKENS.", 401)
        request.session.pop("user", None)
        request.session["op"] = token_digest(token)
        await run_in_threadpool(self._audit, name, "token", "signed in")
        return RedirectResponse(safe_next(fields.get("next")), status_code=303)

    def _signed_in_as(self, request: Request) -> str | None:
        """Who the cookie names, without asking GitHub: the token's name or the login."""
        digest, handle = request.session.get("op"), request.session.get("user")
        if isinstance(digest, str):
            return digest_matches(self.settings, digest)
        if isinstance(handle, str):
            return self.gate.sign_ins.login(handle)
        return None

    def _audit(self, login: str, how: str, result: str) -> None:
        AuditLog(self.gate.sign_ins.redis, self.settings).record(
            "sign_in",
            session_id=None,
            actor=login,
            command=how,
            target="console",
            result=result,
        )

    def _callback_url(self, request: Request) -> str:
        return str(request.url.replace(path=CALLBACK_PATH, query=""))

    async def to_github(self, request: Request) -> Response:
        if not self.github_enabled:
            return self.page(request, "Sign-in with GitHub is not configured here.", 404)
        state = secrets.token_urlsafe(24)
        request.session["oauth_state"] = state
        request.session["next"] = safe_next(request.query_params.get("next"))
        url = authorize_url(self.settings, self._callback_url(request), state)
        return RedirectResponse(url, status_code=302)

    async def from_github(self, request: Request) -> Response:
        expected = request.session.pop("oauth_state", None)
        state = request.query_params.get("state", "")
        code = request.query_params.get("code", "")
        # Bytes: compare_digest raises TypeError on a str with non-ASCII characters.
        if not isinstance(expected, str) or not hmac.compare_digest(
            state.encode(), expected.encode()
        ):
            return self.page(request, "The sign-in expired or came from elsewhere; try again.", 400)
        if not code:
            reason = request.query_params.get("error_description") or "no code"
            return self.page(request, f"GitHub did not sign you in ({reason}).", 400)
        try:
            token = await exchange_code(self.settings, code, self._callback_url(request))
            login = await fetch_login(self.settings, token)
            roles = await fetch_repo_roles(self.settings, token)
        except SignInError as exc:
            return self.page(request, str(exc), 400)
        handle = await run_in_threadpool(self.gate.sign_ins.remember, login, token, roles)
        request.session.pop("op", None)
        request.session["user"] = handle
        await run_in_threadpool(self._audit, login, "github", "signed in")
        log.info("console sign-in of %s (%d repositories)", login, len(roles))
        return RedirectResponse(safe_next(request.session.pop("next", None)), status_code=303)

    async def sign_out(self, request: Request) -> Response:
        try:
            await read_form(request)
        except ApiError as exc:
            return self.page(request, exc.message, exc.status)
        login = await run_in_threadpool(self._signed_in_as, request)
        handle = request.session.get("user")
        if isinstance(handle, str):
            await run_in_threadpool(self.gate.sign_ins.forget, handle)
        request.session.clear()
        if login is not None:
            await run_in_threadpool(self._audit, login, "console", "signed out")
        return RedirectResponse("/console/login", status_code=303)
