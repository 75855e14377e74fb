"""`idp-copilot redeliver --since 6h`: ask GitHub to resend the App's failed webhook deliveries.

GitHub does not retry a failed delivery by itself. When the receiver answered 5xx (Redis was
down, a deploy was rolling) or could not be reached, the delivery sits in the App's delivery
log as failed; this command, run by an operator or a cron job, finds those and redelivers
them. A redelivery keeps its X-GitHub-Delivery id, so the receiver's dedupe makes a second
run harmless.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta

import httpx
from githubkit import AppAuthStrategy, GitHub
from githubkit.exception import GitHubException

from app.config import ConfigError, Settings
from app.github.auth import RetryPolicy, api_version, explain

# GitHub lists at most 100 deliveries per page (cursor pagination, newest first).
PAGE_SIZE = 100


@dataclass(frozen=True)
class Attempt:
    """One delivery attempt as GitHub lists it. Redeliveries are attempts of their own that
    share the original's `guid` (the X-GitHub-Delivery header)."""

    id: int
    guid: str
    delivered_at: datetime
    status: str
    status_code: int
    event: str
    action: str | None
    redelivery: bool

    @property
    def failed(self) -> bool:
        # status_code 0: no HTTP answer at all (timeout, connection refused, TLS error).
        return self.status_code == 0 or self.status_code >= 400 or self.status.upper() != "OK"

    def describe(self) -> str:
        kind = f"{self.event}.{self.action}" if self.action else self.event
        when = self.delivered_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
        return (
            f"delivery {self.id} ({kind}, guid {self.guid}): "
            f"last attempt {when} got {self.status_code or 'no answer'} {self.status}"
        )


@dataclass
class RedeliveryReport:
    """What one run saw and did; `ok` is False when any redelivery request failed."""

    scanned: int = 0
    chosen: list[Attempt] = field(default_factory=list)
    redelivered: list[Attempt] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def pick_failed(attempts: Iterable[Attempt]) -> list[Attempt]:
    """The deliveries to resend: per guid, the latest attempt, when no attempt of that guid
    succeeded. Oldest first, so the App sees events in the order they happened."""
    by_guid: dict[str, list[Attempt]] = {}
    for attempt in attempts:
        by_guid.setdefault(attempt.guid, []).append(attempt)
    chosen = [
        max(group, key=lambda a: (a.delivered_at, a.id))
        for group in by_guid.values()
        if all(a.failed for a in group)
    ]
    return sorted(chosen, key=lambda a: (a.delivered_at, a.id))


def app_jwt_client(settings: Settings) -> GitHub:
    """A githubkit client authenticated as the App itself (a JWT signed with its private key),
    which the /app/hook endpoints require, at settings.github_api_url."""
    private_key = settings.private_key()
    if not settings.github_app_id or not private_key:
        raise ConfigError(
            "redeliver acts as the GitHub App: set GITHUB_APP_ID and GITHUB_APP_PRIVATE_KEY "
            "(or GITHUB_APP_PRIVATE_KEY_PATH)"
        )
    return GitHub(
        AppAuthStrategy(settings.github_app_id, private_key),
        base_url=settings.github_api_url,
        user_agent="idp-copilot",
        timeout=httpx.Timeout(settings.github_timeout, connect=min(10.0, settings.github_timeout)),
        http_cache=False,
        auto_retry=RetryPolicy.from_settings(settings),
    )


def _next_cursor(response: object) -> str | None:
    """The cursor of the next page from the Link header (this endpoint pages by cursor)."""
    links = response.raw_response.links  # type: ignore[attr-defined]
    url = links.get("next", {}).get("url")
    return httpx.URL(url).params.get("cursor") if url else None


def list_attempts(github: GitHub, version: str, since: datetime) -> Iterator[Attempt]:
    """Every delivery attempt at or after `since`, newest first; stops paging at the first
    page that reaches further back."""
    apps = github.rest(version).apps  # type: ignore[call-overload]
    cursor: str | None = None
    seen: set[str] = set()
    while True:
        kwargs = {"per_page": PAGE_SIZE} | ({"cursor": cursor} if cursor else {})
        response = apps.list_webhook_deliveries(**kwargs)
        items = response.parsed_data
        for item in items:
            if item.delivered_at < since:
                return
            yield Attempt(**{f.name: getattr(item, f.name) for f in fields(Attempt)})
        cursor = _next_cursor(response)
        if not items or cursor is None or cursor in seen:
            return
        seen.add(cursor)


def redeliver_failed(
    settings: Settings,
    since: timedelta,
    *,
    dry_run: bool = False,
    echo: Callable[[str], None] = print,
    github: GitHub | None = None,
    now: datetime | None = None,
) -> RedeliveryReport:
    """Find the App's failed deliveries of the last `since` and ask GitHub to resend each
    (with `dry_run`, only say which). Prints one line per delivery through `echo`."""
    github = github or app_jwt_client(settings)
    version = api_version(settings)
    retry = RetryPolicy.from_settings(settings)
    start = (now or datetime.now(UTC)) - since
    report = RedeliveryReport()
    echo(f"Deliveries since {start:%Y-%m-%d %H:%M:%SZ} at {settings.github_api_url}:")
    try:
        attempts = list(list_attempts(github, version, start))
    except GitHubException as exc:
        raise ConfigError(explain(exc, "listing the App's webhook deliveries", retry)) from None
    report.scanned = len(attempts)
    report.chosen = pick_failed(attempts)
    echo(
        f"{report.scanned} delivery attempts, {len({a.guid for a in attempts})} events; "
        f"{len(report.chosen)} failed and not delivered since."
    )
    apps = github.rest(version).apps  # type: ignore[call-overload]
    for attempt in report.chosen:
        if dry_run:
            echo(f"would redeliver {attempt.describe()}")
            continue
        try:
            apps.redeliver_webhook_delivery(attempt.id)
        except GitHubException as exc:
            message = explain(exc, f"redelivering delivery {attempt.id}", retry)
            report.errors.append(message)
            echo(f"could not redeliver {attempt.describe()}: {message}")
            continue
        report.redelivered.append(attempt)
        echo(f"redelivered {attempt.describe()}")
    if dry_run:
        echo("Dry run: nothing was redelivered.")
    else:
        echo(f"Redelivered {len(report.redelivered)} of {len(report.chosen)}.")
    return report
