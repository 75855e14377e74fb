"""`idp-copilot redeliver`: the App's failed deliveries are found in GitHub's delivery log and
resent once each, against a GitHub stand-in on respx with GitHub-shaped delivery bodies."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from app.cli import main
from app.config import ConfigError
from app.redeliver import redeliver_failed
from app.times import parse_duration
from tests import github_api as gh

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
DELIVERIES = f"{gh.API}/app/hook/deliveries"
ATTEMPTS = rf"{gh.API}/app/hook/deliveries/(?P<delivery_id>\d+)/attempts"
TIMED_OUT = "We couldn't deliver this payload: timed out"


def delivery(
    delivery_id: int,
    guid: str,
    ago: timedelta,
    *,
    status_code: int = 200,
    redelivery: bool = False,
    event: str = "issue_comment",
    action: str | None = "created",
    now: datetime = NOW,
) -> dict:
    """One item of GET /app/hook/deliveries, as GitHub sends it."""
    status = {200: "OK", 202: "OK", 0: TIMED_OUT}.get(
        status_code, f"Invalid HTTP Response: {status_code}"
    )
    return {
        "id": delivery_id,
        "guid": guid,
        "delivered_at": (now - ago).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "redelivery": redelivery,
        "duration": 0.27,
        "status": status,
        "status_code": status_code,
        "event": event,
        "action": action,
        "installation_id": gh.INSTALLATION_ID,
        "repository_id": 1296269,
        "throttled_at": None,
    }


def minutes(n: int) -> timedelta:
    return timedelta(minutes=n)


def hours(n: int) -> timedelta:
    return timedelta(hours=n)


def delivery_log(now: datetime = NOW) -> list[list[dict]]:
    """Three pages, newest first. Failed and never fixed: g-503, g-twice (failed twice),
    g-in-window. Fixed by a redelivery: g-fixed. Outside a 6 h window: g-too-old."""
    return [
        [
            delivery(101, "g-ok", minutes(10), now=now),
            delivery(102, "g-503", minutes(30), status_code=503, now=now),
            delivery(103, "g-fixed", minutes(40), redelivery=True, now=now),
            delivery(104, "g-twice", minutes(50), status_code=500, redelivery=True, now=now),
        ],
        [
            delivery(105, "g-fixed", hours(2), status_code=503, now=now),
            delivery(106, "g-twice", hours(3), status_code=0, now=now),
            delivery(
                107,
                "g-in-window",
                hours(5),
                status_code=502,
                event="issues",
                action="opened",
                now=now,
            ),
            delivery(108, "g-too-old", hours(7), status_code=503, now=now),
        ],
        [delivery(109, "g-older", hours(9), status_code=503, now=now)],
    ]


class DeliveryLog:
    """GitHub's delivery log on respx: cursor pages with Link headers, and redelivery."""

    def __init__(self, router, pages: list[list[dict]], api: str = gh.API) -> None:
        self.pages = pages
        self.api = api
        self.cursors: list[str | None] = []
        self.redelivered: list[int] = []
        self.refuse: set[int] = set()
        self.requests: list[httpx.Request] = []
        router.get(f"{api}/app/hook/deliveries").mock(side_effect=self._list)
        attempts = rf"{api}/app/hook/deliveries/(?P<delivery_id>\d+)/attempts"
        router.post(url__regex=attempts).mock(side_effect=self._redeliver)

    def _list(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        cursor = request.url.params.get("cursor")
        self.cursors.append(cursor)
        index = int(cursor.removeprefix("v1_")) if cursor else 0
        headers = {}
        if index + 1 < len(self.pages):
            link = f"{self.api}/app/hook/deliveries?per_page=100&cursor=v1_{index + 1}"
            headers["Link"] = f'<{link}>; rel="next"'
        return httpx.Response(200, json=self.pages[index], headers=headers)

    def _redeliver(self, request: httpx.Request, delivery_id: str) -> httpx.Response:
        self.requests.append(request)
        if int(delivery_id) in self.refuse:
            return httpx.Response(
                422,
                json={
                    "message": "Validation Failed",
                    "errors": [{"message": "This delivery is too old to redeliver"}],
                    "documentation_url": "https://docs.github.com/rest/apps/webhooks",
                    "status": "422",
                },
            )
        self.redelivered.append(int(delivery_id))
        return httpx.Response(202, json={})


@pytest.fixture
def log(no_unmocked_http):
    return DeliveryLog(no_unmocked_http, delivery_log())


def run(settings, since="6h", **kwargs):
    lines: list[str] = []
    report = redeliver_failed(
        settings, timedelta(seconds=parse_duration(since)), echo=lines.append, now=NOW, **kwargs
    )
    return report, "\n".join(lines)


def test_failed_deliveries_in_the_window_are_redelivered_once_each_oldest_first(app_settings, log):
    report, output = run(app_settings)
    assert log.redelivered == [107, 104, 102]
    assert report.ok
    assert "redelivered delivery 107 (issues.opened, guid g-in-window)" in output
    assert "redelivered delivery 104 (issue_comment.created, guid g-twice)" in output
    assert "got 503 Invalid HTTP Response: 503" in output
    assert "Redelivered 3 of 3." in output


def test_paging_stops_at_the_first_delivery_older_than_the_window(app_settings, log):
    run(app_settings)
    assert log.cursors == [None, "v1_1"]
    assert all(r.url.params.get("per_page") == "100" for r in log.requests if r.method == "GET")


def test_a_longer_window_reaches_older_pages(app_settings, log):
    run(app_settings, since="1d")
    assert log.cursors == [None, "v1_1", "v1_2"]
    assert log.redelivered == [109, 108, 107, 104, 102]


def test_deliveries_fixed_by_a_redelivery_or_delivered_fine_are_left_alone(app_settings, log):
    report, output = run(app_settings)
    guids = {attempt.guid for attempt in report.chosen}
    assert guids == {"g-503", "g-twice", "g-in-window"}
    assert "g-fixed" not in output and "g-ok" not in output


def test_dry_run_lists_what_it_would_resend_and_resends_nothing(app_settings, log):
    report, output = run(app_settings, dry_run=True)
    assert log.redelivered == []
    assert [line.split(" (")[0] for line in output.splitlines() if "would" in line] == [
        "would redeliver delivery 107",
        "would redeliver delivery 104",
        "would redeliver delivery 102",
    ]
    assert "Dry run: nothing was redelivered." in output
    assert report.redelivered == []


def test_a_refused_redelivery_is_reported_and_the_others_still_go_out(app_settings, log):
    log.refuse.add(104)
    report, output = run(app_settings)
    assert log.redelivered == [107, 102]
    assert not report.ok
    assert "could not redeliver delivery 104" in output
    assert "This delivery is too old to redeliver" in output
    assert "Redelivered 2 of 3." in output


def test_the_app_authenticates_with_a_jwt_signed_by_its_private_key(app_settings, log):
    run(app_settings)
    key = serialization.load_pem_private_key(gh.private_key_pem().encode(), password=None)
    for request in log.requests:
        scheme, token = request.headers["Authorization"].split(" ", 1)
        assert scheme.lower() == "bearer"
        claims = jwt.decode(token, key.public_key(), algorithms=["RS256"])
        assert str(claims["iss"]) == gh.APP_ID


def test_github_enterprise_server_is_asked_at_its_own_api_root(app_settings, no_unmocked_http):
    ghes = "https://ghe.example.com/api/v3"
    log = DeliveryLog(no_unmocked_http, delivery_log(), api=ghes)
    run(app_settings.model_copy(update={"github_api_url": ghes}))
    assert log.redelivered == [107, 104, 102]
    assert {r.url.host for r in log.requests} == {"ghe.example.com"}
    assert {r.headers["X-GitHub-Api-Version"] for r in log.requests} == {"2022-11-28"}


def test_credentials_github_refuses_are_explained_without_a_traceback(
    app_settings, no_unmocked_http
):
    no_unmocked_http.get(DELIVERIES).mock(
        return_value=httpx.Response(
            401,
            json={
                "message": "A JSON web token could not be decoded",
                "documentation_url": "https://docs.github.com/rest",
                "status": "401",
            },
        )
    )
    with pytest.raises(ConfigError, match="check GITHUB_APP_ID and the private key"):
        run(app_settings)


# -- the command line -----------------------------------------------------------------------


@pytest.fixture
def app_env(monkeypatch, settings):
    monkeypatch.setenv("REDIS_URL", settings.redis_url)
    monkeypatch.setenv("GITHUB_APP_ID", gh.APP_ID)
    monkeypatch.setenv("GITHUB_APP_PRIVATE_KEY", gh.private_key_pem())
    monkeypatch.setenv("GITHUB_WEBHOOK_SECRET", "cli-secret")
    monkeypatch.setenv("IDP_GITHUB_RETRY_BASE_DELAY", "0")


def test_cli_redeliver_exits_1_when_github_refuses_one(app_env, no_unmocked_http, capsys):
    now = datetime.now(UTC)
    pages = [
        [
            delivery(201, "g-a", minutes(5), status_code=503, now=now),
            delivery(202, "g-b", minutes(20), status_code=0, now=now),
        ]
    ]
    log = DeliveryLog(no_unmocked_http, pages)
    log.refuse.add(202)
    assert main(["redeliver", "--since", "30m"]) == 1
    out = capsys.readouterr().out
    assert log.redelivered == [201]
    assert "redelivered delivery 201" in out
    assert "could not redeliver delivery 202" in out


def test_cli_redeliver_dry_run_exits_0(app_env, no_unmocked_http, capsys):
    now = datetime.now(UTC)
    log = DeliveryLog(
        no_unmocked_http, [[delivery(301, "g-c", minutes(5), status_code=503, now=now)]]
    )
    assert main(["redeliver", "--since", "2h", "--dry-run"]) == 0
    assert log.redelivered == []
    assert "would redeliver delivery 301" in capsys.readouterr().out


def test_cli_redeliver_without_the_app_configured_names_the_variables(
    monkeypatch, settings, capsys
):
    monkeypatch.setenv("REDIS_URL", settings.redis_url)
    monkeypatch.delenv("GITHUB_APP_ID", raising=False)
    monkeypatch.delenv("GITHUB_APP_PRIVATE_KEY", raising=False)
    monkeypatch.delenv("GITHUB_APP_PRIVATE_KEY_PATH", raising=False)
    assert main(["redeliver", "--since", "6h"]) == 2
    err = capsys.readouterr().err
    assert "GITHUB_APP_ID and GITHUB_APP_PRIVATE_KEY" in err
    assert "Traceback" not in err


def test_cli_redeliver_with_a_bad_duration_shows_an_example(capsys):
    assert main(["redeliver", "--since", "yesterday"]) == 2
    assert "e.g. 30m, 24h, 7d or 1h30m" in capsys.readouterr().err
