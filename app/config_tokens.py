"""The comma-separated secret lists of the environment: webhook secrets and operator tokens.

`Settings` keeps them as one `SecretStr` each (never printed); these parse the raw value.
"""

from __future__ import annotations

import re

# An operator token's name (`IDP_API_TOKENS=name:token,…`): what the audit log shows.
_TOKEN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def split_webhook_secrets(raw: str) -> list[bytes]:
    """Each secret of `GITHUB_WEBHOOK_SECRET` (comma-separated, so one can be rotated)."""
    return [s.strip().encode() for s in raw.split(",") if s.strip()]


def parse_operator_tokens(raw: str) -> list[tuple[str, str]]:
    """(name, token) of each IDP_API_TOKENS entry: `name:token`, or a bare token, named
    `operator` (the first) and `operator-N` (the Nth bare one)."""
    named: list[tuple[str, str]] = []
    bare = 0
    for entry in (e.strip() for e in raw.split(",")):
        if not entry:
            continue
        name, sep, token = entry.partition(":")
        if sep and _TOKEN_NAME.fullmatch(name.strip()) and token.strip():
            named.append((name.strip(), token.strip()))
            continue
        bare += 1
        named.append(("operator" if bare == 1 else f"operator-{bare}", entry))
    return named


def names_given_twice(named: list[tuple[str, str]]) -> list[str]:
    """The token names that appear more than once, sorted: each operator needs their own."""
    names = [name for name, _ in named]
    return sorted({n for n in names if names.count(n) > 1})
