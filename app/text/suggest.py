"""The nearest known word to a typo, for the sentences that refuse it (the `/idp` grammar,
`.github/idp.yml`)."""

from __future__ import annotations

import difflib
from collections.abc import Sequence

from app.untrusted import MAX_SUGGEST_CHARS


def did_you_mean(word: str, choices: Sequence[str], prefix: str = "", *, after: str = ".") -> str:
    """ " Did you mean `x`?" to follow a sentence (`after="."`), or "did you mean `x`?" to
    follow a semicolon (`after=";"`); "" when no choice is close. Words are compared in lower
    case; a long word is not compared at all (difflib's cost grows with the product of the
    lengths)."""
    if len(word) > MAX_SUGGEST_CHARS:
        return ""
    close = difflib.get_close_matches(word.lower(), list(choices), n=1, cutoff=0.6)
    if not close:
        return ""
    return f"{' D' if after == '.' else 'd'}id you mean `{prefix}{close[0]}`?"
