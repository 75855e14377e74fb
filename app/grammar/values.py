"""What a user typed, checked: the `/idp set` keys and values, numbers within their range,
service names, and user text made safe to echo. For the comment grammar (app/grammar/commands.py)
and the issue form (app/grammar/issue_form.py); each error is a `CommandError` whose sentence names
the rule and the fix.
"""

from __future__ import annotations

import operator
from typing import Any

from pydantic import ValidationError

from app.domain.service import (
    LANGUAGE_RE,
    LANGUAGES,
    NAME_RULE,
    SERVICE_TYPES,
    ServiceRequest,
    suggest_name,
)
from app.text.suggest import did_you_mean
from app.untrusted import MAX_VALUE_CHARS, linear


class CommandError(Exception):
    """Bad input from a user; `message` is the sentence (with the fix) we answer with."""

    def __init__(self, message: str, line: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.line = line


# Canonical `/idp set` keys: every ServiceRequest field but the name (the identity of the
# service) and the description (free text, not a rendering value).
SET_KEYS: tuple[str, ...] = tuple(
    field
    for field in ServiceRequest.model_fields
    if field not in ("name", "description", "namespace_prefix")  # the prefix is the config's
)
# Friendlier spellings. Keys are also matched case-insensitively with '-' and '.' read as '_',
# so `cpu.request`, `memory-limit` and `Max_Replicas` work without an entry here.
SET_ALIASES: dict[str, str] = {
    "lang": "language",
    "service_type": "type",
    "owner": "team",
    "host": "ingress_host",
    "probe_liveness": "liveness_path",
    "probe_readiness": "readiness_path",
    "replicas_max": "max_replicas",
    "slo": "availability_slo",
    "slo_availability": "availability_slo",
    "latency": "latency_p99_ms",
    "slo_latency": "latency_p99_ms",
    "latency_p99": "latency_p99_ms",
}

# Values that land in YAML and must look like what Kubernetes accepts (ServiceRequest keeps
# them as plain strings), each with the sentence that tells the user the rule. Whole values
# only (`fullmatch`: a trailing newline is refused), after the MAX_VALUE_CHARS bound; a host
# name's 253-character limit is checked by length, as RE2 has no look-ahead.
_VALUE_RULES: dict[str, tuple[Any, str]] = {
    "cpu": (linear(r"[0-9]+(\.[0-9]+)?m?"), "a CPU quantity such as 250m or 1"),
    "memory": (
        linear(r"[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|k|M|G|T)?"),
        "a memory quantity such as 256Mi or 1Gi",
    ),
    "host": (
        linear(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)+"),
        "a lower-case DNS host name such as payments.example.com",
    ),
    "path": (linear(r"/[A-Za-z0-9._~/-]{0,200}"), "a URL path such as /healthz"),
}
_MAX_HOST_CHARS = 253
_COMPARE = {"ge": operator.ge, "gt": operator.gt, "le": operator.le, "lt": operator.lt}
_WORDS = {"ge": "at least", "gt": "above", "le": "at most", "lt": "below"}
_RULE_OF_KEY = {
    f"{kind}_{bound}": kind for kind in ("cpu", "memory") for bound in ("request", "limit")
}
_RULE_OF_KEY |= {"ingress_host": "host", "liveness_path": "path", "readiness_path": "path"}


def escape_user_text(text: str, limit: int = 80) -> str:
    """User text made safe to echo in a comment: one line, no backticks, no live @-mentions,
    shortened, in a code span."""
    # isprintable() drops zero-width and bidi controls, so what is echoed is what was typed.
    text = text[: limit * 4]  # what is shown is `limit` long: cleaning more is wasted work
    flat = "".join(ch for ch in " ".join(text.replace("`", "").split()) if ch.isprintable())
    if len(flat) > limit:
        flat = flat[: limit - 1] + "…"
    flat = flat.replace("@", "@\u200b")
    return f"`{flat}`" if flat else "(nothing)"


def _check_number(field: str, raw: str, shown: str) -> int | float:
    """`raw` as the number `field` takes, or a CommandError that states the allowed range."""
    info = ServiceRequest.model_fields[field]
    kind = float if info.annotation is float else int
    limits = {a: getattr(m, a) for m in info.metadata for a in _COMPARE if hasattr(m, a)}
    try:
        value = kind(raw.strip())
    except ValueError:
        value = None
    if value is None or not all(_COMPARE[a](value, bound) for a, bound in limits.items()):
        if "ge" in limits and "le" in limits:
            rule = f"from {limits['ge']:g} to {limits['le']:g}"
        else:
            rule = " and ".join(f"{_WORDS[a]} {bound:g}" for a, bound in limits.items())
        noun = "a whole number" if kind is int else "a number"
        raise CommandError(f"{shown} must be {noun} {rule}; got {escape_user_text(raw)}.")
    return value


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    return str(error["msg"]).removeprefix("Value error, ")


def _option_value(field: str, value: str, shown: str) -> object:
    if field in ("port", "replicas"):
        return _check_number(field, value, shown)
    if field == "language" and value.lower() not in LANGUAGES:
        # Which languages exist is the repository's template set's to say, and the grammar
        # runs before its config is read: a language word passes here, the job checks it
        # against the set (app/handling/languages.py).
        word = value.lower()
        if not LANGUAGE_RE.fullmatch(word):
            raise CommandError(
                f"{shown} must be a language name such as {', '.join(LANGUAGES)} (or one of "
                f"your template set's); got {escape_user_text(value)}."
                f"{did_you_mean(word, LANGUAGES)}"
            )
        return word
    if field in ("language", "type"):
        choices = LANGUAGES if field == "language" else SERVICE_TYPES
        if value.lower() not in choices:
            raise CommandError(
                f"{shown} must be one of {', '.join(choices)}; got {escape_user_text(value)}."
                f"{did_you_mean(value.lower(), choices)}"
            )
        return value.lower()
    if field == "team":
        return value.strip().lower()  # GitHub team slugs and Backstage owners are lower-case
    return value


def _service(name: str, fields: dict[str, object]) -> ServiceRequest:
    """A ServiceRequest or a CommandError that states the name rule and a fixed name."""
    if not name:
        raise CommandError("A service name is needed. Try `/idp create-service my-service`.")
    try:
        return ServiceRequest(name=name, **fields)  # type: ignore[arg-type]
    except ValidationError as exc:
        field = str(exc.errors()[0]["loc"][0])
        if field == "name":
            raise CommandError(
                f"{escape_user_text(name)} is not a valid service name: {NAME_RULE}. "
                f"Try `{suggest_name(name)}`."
            ) from None
        raise CommandError(f"`{field}` is not valid: {_first_error(exc)}.") from None


_KEY_SEPARATORS = str.maketrans("-. \t", "____")


def canonical_set_key(key: str) -> str | None:
    """The ServiceRequest field a `/idp set` key names (aliases and spellings), or None."""
    norm = key.strip().lower().translate(_KEY_SEPARATORS)
    if norm in SET_KEYS:
        return norm
    return SET_ALIASES.get(norm)


def validate_set_value(key: str, value: str) -> str:
    """`value` checked (and normalised) for the canonical `key`; CommandError names the key."""
    if key in ("language", "type"):
        return str(_option_value(key, value, f"`{key}`"))
    if key == "team":
        value = str(_option_value(key, value, f"`{key}`"))
    if key in ("replicas", "max_replicas", "port", "latency_p99_ms", "availability_slo"):
        return str(_check_number(key, value, f"`{key}`"))
    if len(value) > MAX_VALUE_CHARS:
        raise CommandError(
            f"`{key}` takes at most {MAX_VALUE_CHARS} characters; got {len(value):,}."
        )
    rule = _VALUE_RULES.get(_RULE_OF_KEY.get(key, ""))
    too_long = key == "ingress_host" and len(value) > _MAX_HOST_CHARS
    if rule and (too_long or not rule[0].fullmatch(value)):
        raise CommandError(f"`{key}` must be {rule[1]}; got {escape_user_text(value)}.")
    data = ServiceRequest(name="example").model_dump()
    data[key] = value
    try:
        ServiceRequest.model_validate(data)
    except ValidationError as exc:
        raise CommandError(
            f"`{key}={escape_user_text(value, 40)[1:-1]}` is not valid: {_first_error(exc)}."
        ) from None
    return value
