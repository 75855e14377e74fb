"""githubkit clients for the App: installation auth, the token cache every worker shares
through Redis, and the retry decision each GitHub call goes through.

Used by `GitHubForge`; other code that needs a raw githubkit client (the CLI's `redeliver`,
the console's sign-in) can call `app_client` too.
"""

from __future__ import annotations

import functools
import logging
import re
import ssl
from dataclasses import dataclass
from datetime import timedelta

import httpx
import redis
from githubkit import GitHub
from githubkit.exception import (
    GitHubException,
    RateLimitExceeded,
    RequestError,
    RequestFailed,
    RequestTimeout,
)
from githubkit.retry import RetryOption
from githubkit.throttling import BaseThrottler

from app.config import ConfigError, Settings
from app.github.permissions import grant_sentence, refused_permission
from app.github.throttle import RedisWriteThrottler, WriteBudgetExhausted
from app.github.tokens import GrantKeepingInstallationAuth, SharedTokenCache
from app.telemetry import github_event_hooks

log = logging.getLogger(__name__)

LATEST_API_VERSION = "2026-03-10"
# GitHub Enterprise Server (3.9 and later) serves this version; it rejects newer ones.
ENTERPRISE_API_VERSION = "2022-11-28"


def api_version(settings: Settings) -> str:
    """The REST API version to ask for: the configured one, else by host."""
    if settings.github_api_version:
        return settings.github_api_version
    host = httpx.URL(settings.github_api_url).host
    return LATEST_API_VERSION if host == "api.github.com" else ENTERPRISE_API_VERSION


def root_cause(exc: BaseException) -> BaseException:
    """The GitHub error behind `exc`. githubkit wraps a failure of the installation-token
    request (made inside the auth flow) in a plain `RequestError`; unwrap it."""
    while type(exc) is RequestError and isinstance(exc.exc, GitHubException):
        exc = exc.exc
    return exc


def is_status(exc: BaseException, *statuses: int) -> bool:
    """True when GitHub answered the failed request with one of `statuses`."""
    exc = root_cause(exc)
    return isinstance(exc, RequestFailed) and exc.response.status_code in statuses


def mentions_secondary_limit(exc: BaseException) -> bool:
    """GitHub sometimes signals a secondary rate limit only in the 403 body's message."""
    exc = root_cause(exc)
    if not isinstance(exc, RequestFailed) or exc.response.status_code != 403:
        return False
    try:
        message = str(exc.response.raw_response.json().get("message", ""))
    except (ValueError, AttributeError):
        return False
    return "secondary rate limit" in message.lower()


@dataclass(frozen=True)
class RetryPolicy:
    """githubkit's `auto_retry` decision: retry 5xx, 429, secondary rate limits, timeouts and
    connection errors with exponential backoff, honouring Retry-After up to `max_delay`.

    githubkit's default retries a rate limit only once. A Retry-After (or rate-limit reset)
    further away than `max_delay` is not retried: holding a worker that long helps nobody,
    and retrying earlier than GitHub asks risks a longer block. The caller then turns the
    error into a message that says when to retry.
    """

    max_retries: int = 5
    base_delay: float = 1.0
    max_delay: float = 60.0

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        return cls(
            settings.github_max_retries,
            settings.github_retry_base_delay,
            settings.github_retry_max_delay,
        )

    @property
    def tries(self) -> int:
        return self.max_retries + 1

    def __call__(self, exc: GitHubException, retry_count: int) -> RetryOption:
        cause = root_cause(exc)
        if retry_count >= self.max_retries or not self._retryable(cause):
            return RetryOption(False)
        if unsafe_to_repeat(cause):
            return RetryOption(False)
        backoff = min(self.base_delay * 2**retry_count, self.max_delay)
        asked = self._asked_wait(cause)
        if asked is not None and asked > self.max_delay:
            return RetryOption(False)
        delay = max(backoff, asked or 0.0)
        log.warning(
            "GitHub %s failed (%s); retry %d of %d in %.1f s",
            _request_line(cause),
            describe(cause),
            retry_count + 1,
            self.max_retries,
            delay,
        )
        return RetryOption(True, timedelta(seconds=delay))

    @staticmethod
    def _retryable(cause: BaseException) -> bool:
        if isinstance(cause, RateLimitExceeded):
            return True
        if isinstance(cause, RequestFailed):
            status = cause.response.status_code
            return status >= 500 or status == 429 or mentions_secondary_limit(cause)
        # Timeouts and connection errors; not our own bugs, which githubkit also wraps.
        return isinstance(cause, RequestError) and isinstance(cause.exc, httpx.TransportError)

    def _asked_wait(self, cause: BaseException) -> float | None:
        if isinstance(cause, RateLimitExceeded):
            return cause.retry_after.total_seconds()
        if mentions_secondary_limit(cause):
            # GitHub's guidance without Retry-After: wait at least a minute (capped).
            return min(60.0, self.max_delay)
        return None


# Creating a comment is the one write of the App that GitHub does not make safe to send
# twice: a second POST is a second comment. (A second pull request or ref is refused with
# 422, git trees and commits are content-addressed, reactions and labels are idempotent.)
_CREATES_COMMENT = re.compile(r"/issues/\d+/comments$")


def unsafe_to_repeat(cause: BaseException) -> bool:
    """True when the failed request creates a comment and was sent, but its answer never
    came (a read timeout, a dropped connection): GitHub may have posted it. It is not
    retried; the todo comment is found by its marker at the next step instead."""
    request = _request_of(cause)
    if request is None or request.method != "POST":
        return False
    if isinstance(cause, RequestFailed) or not _CREATES_COMMENT.search(request.url.path):
        return False
    unsent = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
    exc = getattr(cause, "exc", None)
    return isinstance(exc, httpx.TransportError) and not isinstance(exc, unsent)


def _request_of(cause: BaseException) -> httpx.Request | None:
    for holder in (cause, getattr(cause, "exc", None)):
        try:
            request = holder.request  # type: ignore[union-attr]
        except (AttributeError, RuntimeError):  # httpx raises RuntimeError when it has none
            continue
        if isinstance(request, httpx.Request):
            return request
    return None


def _request_line(cause: BaseException) -> str:
    """METHOD /path of the failed request (no query, no headers), when known."""
    try:
        request = cause.request  # type: ignore[attr-defined]
    except (AttributeError, RuntimeError):  # httpx raises RuntimeError when it has none
        return "request"
    return f"{request.method} {request.url.path}"


def describe(exc: BaseException) -> str:
    """A short, secret-free description of a failed GitHub request for logs and messages."""
    exc = root_cause(exc)
    if isinstance(exc, RequestFailed):
        return f"HTTP {exc.response.status_code}"
    if isinstance(exc, RequestError):
        return type(exc.exc).__name__
    return type(exc).__name__


def explain(exc: BaseException, where: str, retry: RetryPolicy) -> str:
    """A sentence for users (and the todo) about a GitHub call that failed for good: what
    failed, why, and what to do. Holds no token, header or request body."""
    cause = root_cause(exc)
    later = "Run `/idp retry` later."
    tries = f"after {retry.tries} tries"
    if unsafe_to_repeat(cause):
        return (
            f"GitHub did not confirm {where} ({describe(cause)}); it may have gone through, "
            f"so it was not sent twice. {later}"
        )
    if isinstance(cause, WriteBudgetExhausted):
        return (
            f"The App's GitHub write budget for this installation (kept under GitHub's rate "
            f"limits) stopped {where}; it frees up in {cause.retry_after:.0f} s. {later}"
        )
    if isinstance(cause, RateLimitExceeded) or mentions_secondary_limit(cause):
        wait = cause.retry_after.total_seconds() if isinstance(cause, RateLimitExceeded) else 60
        return f"GitHub's rate limit stopped {where}; it asks to wait {wait:.0f} s. {later}"
    if isinstance(cause, RequestFailed):
        status = cause.response.status_code
        if status >= 500 or status == 429:
            return f"GitHub kept failing on {where} ({status}) {tries}. {later}"
        lacking = lacking_permission(cause)
        if lacking:
            return f"GitHub refused {where} ({status}: {_github_message(cause)}): " + (
                grant_sentence(lacking)
            )
        return _REFUSALS.get(status, "GitHub answered {status} to {where}.").format(
            where=where, status=status, message=_github_message(cause)
        )
    if isinstance(cause, RequestTimeout):
        return f"GitHub did not answer {where} in time {tries}. {later}"
    return f"GitHub could not be reached for {where} ({describe(cause)}) {tries}. {later}"


def lacking_permission(exc: BaseException) -> dict[str, str] | None:
    """The App permission a 403 or 422 from GitHub says is missing, or None: read from
    GitHub's message, its X-Accepted-GitHub-Permissions header, or the endpoint."""
    cause = root_cause(exc)
    if not isinstance(cause, RequestFailed) or cause.response.status_code not in (403, 422):
        return None
    request = _request_of(cause)
    return refused_permission(
        cause.response.status_code,
        _github_message(cause),
        request.method if request is not None else "",
        request.url.path if request is not None else "",
        cause.response.headers.get("X-Accepted-GitHub-Permissions", ""),
    )


_REFUSALS = {
    401: "GitHub did not accept the App's credentials for {where}: check GITHUB_APP_ID and "
    "the private key, and that the App is installed.",
    403: "GitHub refused {where} (403: {message}).",
    404: "GitHub found nothing for {where} (404): check that the repository exists and the "
    "App is installed on it.",
    409: "GitHub rejected {where} (409: {message}).",
    422: "GitHub rejected {where} (422: {message}).",
}


def _github_message(exc: RequestFailed) -> str:
    """GitHub's own error message (it never holds secrets), shortened."""
    try:
        body = exc.response.raw_response.json()
    except ValueError:
        return exc.response.raw_response.reason_phrase or "no reason given"
    if not isinstance(body, dict):
        return "no reason given"
    text = str(body.get("message", ""))
    errors = body.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        detail = errors[0].get("message") or errors[0].get("code")
        text = f"{text}: {detail}" if detail else text
    return text[:300] or "no reason given"


@functools.cache
def ssl_context() -> ssl.SSLContext:
    """One TLS context per process. githubkit opens an httpx client per request, and each
    would otherwise load the CA bundle again (about 17 ms: a third of a workflow's CPU)."""
    return ssl.create_default_context()


def app_client(
    settings: Settings,
    connection: redis.Redis,
    installation_id: int,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    throttler: BaseThrottler | None = None,
    retry: RetryPolicy | None = None,
    follow_redirects: bool = True,
) -> GitHub:
    """A githubkit client acting as the App's installation `installation_id`, at
    settings.github_api_url, with the shared token cache and our retry policy. Without a
    `throttler`, writes are paced by the installation's budget shared through Redis."""
    private_key = settings.private_key()
    if not settings.github_app_id or not private_key:
        raise ConfigError(
            "GitHub calls need GITHUB_APP_ID and GITHUB_APP_PRIVATE_KEY "
            "(or GITHUB_APP_PRIVATE_KEY_PATH) of the registered App"
        )
    auth = GrantKeepingInstallationAuth(settings.github_app_id, private_key, installation_id)
    return GitHub(
        auth,
        base_url=settings.github_api_url,
        user_agent="idp-copilot",
        ssl_verify=ssl_context(),
        timeout=httpx.Timeout(settings.github_timeout, connect=min(10.0, settings.github_timeout)),
        cache_strategy=SharedTokenCache(connection, settings.key("github", "auth")),
        http_cache=False,
        throttler=(
            throttler
            if throttler is not None
            else RedisWriteThrottler(settings, connection, installation_id)
        ),
        auto_retry=retry or RetryPolicy.from_settings(settings),
        async_transport=transport,
        # Off only to read a redirect's Location (a job log's download URL) ourselves.
        follow_redirects=follow_redirects,
        # Metrics (calls by status, remaining rate limit) and a `github METHOD` span per call.
        async_event_hooks=github_event_hooks(installation_id),
    )
