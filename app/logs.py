"""Structured JSON logs for the web and worker processes, for operators and their log stack.

One JSON object per line: timestamp, level, logger, message, the ids of the work in hand
(delivery, session, job, trace) and any `extra=` fields. The ids come from `log_context`,
which sets context variables: asyncio tasks started inside inherit them, and so does work
handed to threads through `asyncio.to_thread` or Starlette's `run_in_threadpool`.
Every configured secret, and anything credential-shaped, is replaced with `[redacted]` before a
line is written, by the same `Redactor` as every other sink (app/redaction.py).
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import IO, Any

from app.config import Settings
from app.redaction import REDACTED as REDACTED
from app.redaction import Redactor as Redactor

CONTEXT_FIELDS = ("delivery_id", "session_id", "job_id", "trace_id")

# The default dict is never mutated: log_context always sets a new one.
_context: ContextVar[dict[str, str]] = ContextVar("idp_log_context", default={})  # noqa: B039

# Attributes every LogRecord has; anything else on a record came from `extra=`.
_RECORD_ATTRIBUTES = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
# One encoder for every line (json.dumps with options builds a new one per call).
_ENCODER = json.JSONEncoder(default=str, ensure_ascii=False)


@contextmanager
def log_context(**fields: object) -> Iterator[None]:
    """Attach ids (delivery_id, session_id, job_id, trace_id, or any other) to every log line
    written inside the block, including by tasks it starts. None values are left out."""
    added = {key: str(value) for key, value in fields.items() if value is not None}
    token = _context.set({**_context.get(), **added})
    try:
        yield
    finally:
        _context.reset(token)


def current_log_context() -> dict[str, str]:
    """The ids `log_context` set for the code running now."""
    return dict(_context.get())


class RedactingFilter(logging.Filter):
    """A handler filter that redacts the message, its arguments, the exception and the stack
    text of every record in place, so later handlers see the redacted record too."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        redact = self.redactor.redact
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not lose the line
            message = f"{record.msg!r} {record.args!r}"
        record.msg, record.args = redact(message), None
        if record.exc_info:
            # The formatted traceback holds the exception message (and maybe locals' reprs);
            # keep only its redacted text so no formatter prints the original.
            text = record.exc_text or logging.Formatter().formatException(record.exc_info)
            record.exc_text, record.exc_info = redact(text), None
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        fields = vars(record)
        for key in fields.keys() - _RECORD_ATTRIBUTES:
            value = fields[key]
            if value is None or isinstance(value, bool | int | float):
                continue
            # Containers and objects are logged as their text; redact that text.
            setattr(record, key, redact(value if isinstance(value, str) else str(value)))
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        context = _context.get()
        fields = vars(record)
        for key in CONTEXT_FIELDS:
            value = context.get(key) or fields.get(key)
            if value is None and key == "trace_id":
                value = _trace_id()
            if value is not None:
                line[key] = str(value)
        for key, value in context.items():
            line.setdefault(key, value)
        extra = fields.keys() - _RECORD_ATTRIBUTES
        if extra:
            for key, value in fields.items():  # in the record's order
                if key in extra:
                    line.setdefault(key, value)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = record.stack_info
        return _ENCODER.encode(line)


def _trace_id() -> str | None:
    from app.tracing import current_trace_id  # app.tracing loads OpenTelemetry: on first use

    global _trace_id
    _trace_id = current_trace_id
    return current_trace_id()


def configure_logging(
    settings: Settings, level: int | str = "INFO", stream: IO[str] | None = None
) -> logging.Handler:
    """Send every log record of this process, as redacted JSON lines, to `stream` (stderr by
    default). Replaces the root logger's handlers; call once at start-up of `serve` and
    `worker`. Returns the installed handler."""
    # Nothing here prints a record's caller, thread or process: not computing them saves a
    # stack walk and three look-ups per record (the "Optimization" section of Python's
    # logging HOWTO), a tenth of the receiver's log line.
    logging._srcfile = None  # type: ignore[attr-defined]
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RedactingFilter(Redactor.from_settings(settings)))
    root = logging.getLogger()
    # Ours is the only root handler, so no other one writes an unredacted line.
    for old in root.handlers[:]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)
    # Warnings (e.g. a deprecation in a library) become log records too, also redacted.
    logging.captureWarnings(True)
    return handler
