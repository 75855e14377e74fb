"""Secrets out of everything that leaves the process: one set of patterns for every sink.

Logs (app/logs.py), comments and pull requests (the publisher, job replies), model traffic
(the agent's model turns, provider error text), the audit stream, feedback, the event stream
and the operator API all redact through a `Redactor` built once from `Settings`
(`Redactor.from_settings`) or from a list of secret values (`redactor_for`, cached). It
replaces the configured secret values (each also as JSON escapes it, with literal `\\n` turned
into newlines, and each long line of a multi-line key), and every credential-shaped string,
ours or not: GitHub tokens, OpenAI and Anthropic keys, JWTs, PEM private keys, AWS keys,
authorization headers, bearer tokens and passwords in URLs.

The shapes run on RE2 (app/untrusted.py): log lines and model output can hold anything, so
the patterns run in time linear in the text. This module imports nothing from the agent,
the jobs or the tools; they import it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from app.untrusted import linear, replace_all

if TYPE_CHECKING:
    from app.config import Settings

REDACTED = "[redacted]"
# Configured values shorter than this are not searched for (they would hit ordinary words).
MIN_SECRET_CHARS = 4
# A line of a multi-line secret (a PEM body line) redacted on its own from this length.
MIN_LINE_CHARS = 16

# Credential shapes, one alternative each. Where an alternative has a group, only the group
# is replaced, so the text around the credential still reads ("Authorization: [redacted]",
# "https://user:[redacted]@host/…"); otherwise the whole match is.
_SHAPES = (
    # GitHub: ghp_ personal, gho_ OAuth, ghu_ user-to-server, ghs_ installation, ghr_ refresh.
    rb"\bgh[pousr]_[A-Za-z0-9]{20,}",
    rb"\bgithub_pat_[A-Za-z0-9_]{20,}",
    # OpenAI sk-…, sk-proj-…, Anthropic sk-ant-…; an API's error text may echo a key masked
    # with `*` or `...`, which is caught too.
    rb"\bsk-[A-Za-z0-9_*.-]{6,}",
    # JWTs (the App's own, valid for ten minutes).
    rb"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}",
    # PEM private keys; one cut short by a truncated message is redacted to the end.
    rb"(?s)-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|\z)",
    # AWS access key ids, and a secret access key where it is named.
    rb"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b",
    rb"(?i)aws_?secret_?access_?key[\"']?\s*[:=]\s*[\"']?([A-Za-z0-9/+=]{40})",
    # HTTP authorization headers, whatever the scheme, and bearer tokens on their own.
    rb"(?i)\b(?:proxy-)?authorization[\"']?\s*[:=]\s*[\"']?"
    rb"(?:(?:bearer|token|basic|digest)\s+)?([^\s\"',}]+)",
    rb"(?i)\bbearer\s+([A-Za-z0-9._~+/=-]{8,})",
    # The password of user:password@ in a URL.
    rb"(?i)\b[a-z][a-z0-9+.-]*://[^/\s:@\"']+:([^/\s@\"']+)@",
)
CREDENTIAL_RE = linear(b"|".join(b"(?:" + s + b")" for s in _SHAPES))
# A text with none of these (lower-cased) cannot hold a shape: a substring search spares the
# automaton on nearly every log line.
_LITERALS = (
    "gh",
    "github_pat_",
    "sk-",
    "eyj",
    "-----begin",
    "akia",
    "asia",
    "secret",
    "authorization",
    "bearer",
    "://",
)


def _needles(secrets: Iterable[str]) -> list[str]:
    """Every spelling of the configured values worth searching for, longest first: as is, as
    JSON escapes it, with literal `\\n` as newlines, and each long line of a multi-line one."""
    found: set[str] = set()
    for secret in secrets:
        if not secret:
            continue
        found |= {secret, json.dumps(secret)[1:-1], secret.replace("\\n", "\n")}
        if "\n" in secret or "\\n" in secret:
            lines = (line.strip() for line in re.split(r"\n|\\n", secret))
            found |= {line for line in lines if len(line) >= MIN_LINE_CHARS}
    return sorted((f for f in found if len(f) >= MIN_SECRET_CHARS), key=len, reverse=True)


def redact_shapes(text: str) -> str:
    """`text` with every credential-shaped string replaced by `[redacted]`."""
    lowered = text.lower()
    if not any(literal in lowered for literal in _LITERALS):
        return text
    return replace_all(CREDENTIAL_RE, text, REDACTED, group=True)


class Redactor:
    """Replaces secrets in text: the given values in every spelling, then credential shapes."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self.needles = tuple(_needles(secrets))
        self._values = (
            re.compile("|".join(re.escape(n) for n in self.needles)) if self.needles else None
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> Redactor:
        return redactor_for(settings.secret_values())

    def redact(self, text: str | None) -> str:
        """`text` without secrets (None: empty)."""
        if not text:
            return text or ""
        if self._values is not None and any(n in text for n in self.needles):
            # An alternation of escaped literals: no backtracking, linear in the text.
            text = self._values.sub(REDACTED, text)
        return redact_shapes(text)

    def scrub(self, value: Any) -> Any:
        """`value` (text, or JSON-like dicts and lists) redacted, keys included."""
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, dict):
            return {self.redact(str(k)): self.scrub(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.scrub(v) for v in value]
        return value


@lru_cache(maxsize=64)
def _cached(secrets: tuple[str, ...]) -> Redactor:
    return Redactor(secrets)


def redactor_for(secrets: Iterable[str]) -> Redactor:
    """The `Redactor` for these secret values, built once per distinct set."""
    return _cached(tuple(sorted({s for s in secrets if s})))


def redact(text: str | None, secrets: Iterable[str] = ()) -> str:
    """`text` with `secrets` and every credential shape replaced by `[redacted]`."""
    return redactor_for(secrets).redact(text)


def scrub(value: Any, secrets: Iterable[str] = ()) -> Any:
    """`value` (text or JSON-like) with `secrets` and credential shapes redacted."""
    return redactor_for(secrets).scrub(value)
