"""Text anyone can type: the size bound of each field and patterns that run in linear time.

Used by the router, the comment grammar, the issue-form parser, the hidden-content cleaner
and the validators. A pattern applied to untrusted text is compiled here, for RE2
(`google-re2`): an automaton without backtracking, so its time grows with the length of the
text and never with its shape. Python's `re` took 7.8 s on one 2,000-character line of the
issue form's heading pattern (issue 16). RE2 has no look-around and no back-references
(https://github.com/google/re2/wiki/Syntax); a pattern that needs them is rewritten as
linear code instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import re2

# GitHub's own limits: an issue, comment or review body holds at most 65,536 characters
# (GitHub refuses more with "body is too long (maximum is 65536 characters)") and an issue
# title 256. A longer field cannot come from GitHub; it is cut, not parsed whole.
MAX_BODY_CHARS = 65_536
MAX_TITLE_CHARS = 256
# One `/idp` line: a question or feedback fits easily; longer lines are refused with a word.
MAX_COMMAND_CHARS = 2_000
# One `/idp set` KEY=VALUE: the longest legal value is a 253-character host name.
MAX_VALUE_CHARS = 256
# `/idp` lines the router parses in one comment; past the configurable budget
# (Settings.max_commands_per_comment, at most this) none of them runs, and more are only
# counted, so a 64 KB comment of commands costs the receiver one linear pass.
MAX_PARSED_COMMANDS = 100
# Words longer than this get no "did you mean" suggestion (difflib is quadratic).
MAX_SUGGEST_CHARS = 40

Pattern = Any  # re2's compiled pattern (the package ships no type information)
_UNANCHORED = re2._Anchor.UNANCHORED


def linear(pattern: str) -> Pattern:
    """`pattern` compiled for RE2. Flags go inline: `(?i)`, `(?s)`, `(?m)`. Without `(?m)`,
    `$` is the end of the text only, so a trailing newline never passes a validator."""
    return re2.compile(pattern)


def bounded(text: str | None, limit: int) -> str:
    """`text` cut to `limit` characters (None: empty)."""
    return (text or "")[:limit]


def scrub(text: str) -> str:
    """`text` with lone surrogates (JSON may carry `\\ud800`; UTF-8 cannot) turned into `?`,
    so RE2, which reads UTF-8, can take it."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode()
    return text


def scan(pattern: Pattern, data: bytes, pos: int = 0) -> Iterator[list[tuple[int, int]]]:
    """Every match of `pattern` in `data` from `pos`, left to right, as its group spans
    (`[(start, end), …]`, group 0 first, `(-1, -1)` for a group that did not take part).

    The binding's own `finditer` builds a Python match object per match (about 20 µs, so
    20,000 tiny tags in 64 KB cost 0.4 s); this loop calls RE2 directly (about 1 µs). It
    takes bytes so no offset is converted; slices of the UTF-8 text at ASCII tokens decode.
    """
    regexp, end = pattern._regexp, len(data)
    while pos <= end:
        spans = regexp.Match(_UNANCHORED, data, pos, end)
        if spans[0][0] < 0:
            return
        yield spans
        pos = spans[0][1] if spans[0][1] > spans[0][0] else spans[0][1] + 1


def replace_all(pattern: Pattern, text: str, replacement: str = "") -> str:
    """`text` with every match of `pattern` (compiled from a bytes pattern) replaced by the
    fixed `replacement`: `re.sub` without templates, at the cost of `scan`."""
    data = text.encode("utf-8", "surrogatepass")
    parts: list[bytes] = []
    kept, new = 0, replacement.encode()
    for spans in scan(pattern, data):
        start, end = spans[0]
        parts += [data[kept:start], new]
        kept = end
    if not parts:
        return text
    parts.append(data[kept:])
    return b"".join(parts).decode("utf-8", "surrogatepass")
