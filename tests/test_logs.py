"""Structured logs as an operator's log stack reads them: one JSON object per line, the ids of
the work in hand, and never a secret."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from datetime import datetime

import pytest

from app.config import Settings
from app.logs import REDACTED, current_log_context, log_context
from app.tracing import configure_tracing, shutdown_tracing, tracer
from tests.conftest import TEST_REDIS_URL
from tests.github_api import private_key_pem
from tests.leaks import captured_logs

WEBHOOK_SECRET = "whsec-rotating-2024"
OPENAI_KEY = "sk-proj-abcdefghijklmnopqrstuvwxyz0123"
ANTHROPIC_KEY = "sk-ant-api03-ZYXWVUTSRQPONMLKJIHGFEDCBA"
OPERATOR_TOKEN = "op-token-7f3a9c2e"
INSTALLATION_TOKEN = "ghs_" + "A1b2C3d4E5f6" * 3
log = logging.getLogger("idp.test")


@pytest.fixture
def secrets_settings() -> Settings:
    return Settings(
        redis_url=TEST_REDIS_URL,
        github_webhook_secret=f"old-secret-value,{WEBHOOK_SECRET}",
        github_app_id="12345",
        # As an environment variable often holds it: one line, "\n" for newlines.
        github_app_private_key=private_key_pem().replace("\n", "\\n"),
        openai_api_key=OPENAI_KEY,
        anthropic_api_key=ANTHROPIC_KEY,
        api_tokens=OPERATOR_TOKEN,
    )


@pytest.fixture
def lines(secrets_settings):
    """JSON logging into a buffer; returns a reader of this file's parsed lines (asyncio and
    OpenTelemetry log at DEBUG too)."""
    with captured_logs(secrets_settings) as out:
        yield lambda: [
            line
            for line in map(json.loads, out.getvalue().splitlines())
            if line["logger"] == log.name
        ]


def raw(read) -> str:
    return json.dumps(read())


def test_a_line_is_one_json_object_with_time_level_logger_and_message(lines):
    log.info("queued %s for %s", "delivery-1", "acme/payments#7")
    (line,) = lines()
    assert line["level"] == "INFO"
    assert line["logger"] == "idp.test"
    assert line["message"] == "queued delivery-1 for acme/payments#7"
    assert datetime.fromisoformat(line["timestamp"]).tzinfo is not None


def test_every_record_is_one_line_of_json_whatever_the_message_holds(lines):
    log.warning('multi\nline "quoted" \\ text \u2603')
    log.info("tab\there")
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("step failed")
    parsed = lines()
    assert [p["message"] for p in parsed] == [
        'multi\nline "quoted" \\ text \u2603',
        "tab\there",
        "step failed",
    ]
    assert "ValueError: boom" in parsed[2]["exception"]


def test_log_context_ids_are_on_every_line_inside_the_block_and_gone_after(lines):
    with log_context(delivery_id="d-1", session_id="acme/payments#7"):
        log.info("received")
        with log_context(job_id="delivery-abc"):
            log.info("running")
        log.info("done")
    log.info("outside")
    received, running, done, outside = lines()
    assert (received["delivery_id"], received["session_id"]) == ("d-1", "acme/payments#7")
    assert "job_id" not in received
    assert running["job_id"] == "delivery-abc" and running["delivery_id"] == "d-1"
    assert "job_id" not in done
    assert not {"delivery_id", "session_id", "job_id"} & set(outside)
    assert current_log_context() == {}


def test_concurrent_tasks_keep_their_own_ids_and_threads_inherit_them(lines):
    def in_thread() -> None:
        log.info("thread work")

    async def handle(session: str) -> None:
        with log_context(session_id=session):
            await asyncio.sleep(0)
            log.info("step 1")
            await asyncio.sleep(0)
            await asyncio.to_thread(in_thread)

    async def both() -> None:
        with log_context(job_id="job-9"):
            await asyncio.gather(handle("a#1"), handle("b#2"))

    asyncio.run(both())
    seen = sorted((line["session_id"], line["message"], line["job_id"]) for line in lines())
    assert seen == [
        ("a#1", "step 1", "job-9"),
        ("a#1", "thread work", "job-9"),
        ("b#2", "step 1", "job-9"),
        ("b#2", "thread work", "job-9"),
    ]


def test_the_active_traces_id_is_on_the_line(lines, settings):
    configure_tracing(settings, "idp-copilot-test")
    try:
        with tracer().start_as_current_span("webhook") as span:
            log.info("inside a span")
        log.info("outside a span")
    finally:
        shutdown_tracing()
    inside, outside = lines()
    assert inside["trace_id"] == format(span.get_span_context().trace_id, "032x")
    assert "trace_id" not in outside


def test_configured_secrets_are_redacted_in_messages_and_arguments(lines):
    log.info("webhook secret is %s", WEBHOOK_SECRET)
    log.info("keys: %s and %r", OPENAI_KEY, {"anthropic": ANTHROPIC_KEY})
    log.info(f"operator {OPERATOR_TOKEN} signed in")
    text = raw(lines)
    for secret in (WEBHOOK_SECRET, OPENAI_KEY, ANTHROPIC_KEY, OPERATOR_TOKEN):
        assert secret not in text
    messages = [line["message"] for line in lines()]
    assert messages == [
        f"webhook secret is {REDACTED}",
        f"keys: {REDACTED} and {{'anthropic': '{REDACTED}'}}",
        f"operator {REDACTED} signed in",
    ]


def test_secrets_in_exceptions_and_their_tracebacks_are_redacted(lines):
    def call_github(token: str) -> None:
        raise RuntimeError(f"401 for Authorization: token {token}; secret {WEBHOOK_SECRET}")

    try:
        call_github(INSTALLATION_TOKEN)
    except RuntimeError:
        log.exception("publishing failed")
    (line,) = lines()
    assert INSTALLATION_TOKEN not in line["exception"]
    assert WEBHOOK_SECRET not in line["exception"]
    assert f"RuntimeError: 401 for Authorization: token {REDACTED}" in line["exception"]
    assert "call_github" in line["exception"]  # the traceback itself is kept


def test_the_private_key_is_redacted_in_either_spelling(lines):
    key = private_key_pem()
    log.error("loaded key %s", key)
    log.error("key from env %s", key.replace("\n", "\\n"))
    log.error("cut short: %s", key[:120])
    text = raw(lines)
    body = key.splitlines()[1]
    assert body not in text
    assert "BEGIN PRIVATE KEY" not in text
    assert [line["message"] for line in lines()][0] == f"loaded key {REDACTED}"


@pytest.mark.parametrize(
    "credential",
    [
        "ghp_" + "a" * 36,
        "gho_" + "B" * 36,
        "ghs_16C7e42F292c6912E7710c838347Ae178B4a",
        "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz",
        "sk-" + "x" * 48,
        "sk-ant-api03-" + "Q" * 40,
        "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiIxMjM0NSJ9.c2lnbmF0dXJlc2lnbmF0dXJl",
    ],
    ids=["ghp", "gho", "ghs", "fine-grained-pat", "openai", "anthropic", "jwt"],
)
def test_credential_shaped_strings_are_redacted_even_when_not_configured(lines, credential):
    log.warning("request failed with header Authorization: Bearer %s", credential)
    (line,) = lines()
    assert line["message"] == f"request failed with header Authorization: Bearer {REDACTED}"


def test_ordinary_ids_are_not_mistaken_for_secrets(lines):
    message = "job delivery-0123456789abcdef for skeleton-app sha 3f2a9c1 on ghost_branch"
    log.info(message)
    assert lines()[0]["message"] == message


def test_extra_fields_are_logged_and_redacted(lines):
    log.info(
        "github call",
        extra={"status": 502, "repo": "acme/payments", "headers": {"token": INSTALLATION_TOKEN}},
    )
    (line,) = lines()
    assert line["status"] == 502 and line["repo"] == "acme/payments"
    assert INSTALLATION_TOKEN not in line["headers"] and REDACTED in line["headers"]


def test_handlers_set_up_earlier_are_replaced_so_none_writes_unredacted_lines(secrets_settings):
    earlier = io.StringIO()
    handler = logging.StreamHandler(earlier)
    logging.getLogger().addHandler(handler)
    try:
        with captured_logs(secrets_settings) as ours:
            log.warning("secret %s", WEBHOOK_SECRET)
    finally:
        logging.getLogger().removeHandler(handler)
    assert earlier.getvalue() == ""
    assert json.loads(ours.getvalue())["message"] == f"secret {REDACTED}"


def test_the_level_filters_lines(secrets_settings):
    with captured_logs(secrets_settings, "warning") as out:
        log.info("chatty")
        log.warning("worth reading")
    assert [json.loads(x)["message"] for x in out.getvalue().splitlines()] == ["worth reading"]


def test_a_broken_format_string_still_gives_a_line(lines):
    log.info("two %s %s", "only-one")
    (line,) = lines()
    assert "two %s %s" in line["message"] and "only-one" in line["message"]
