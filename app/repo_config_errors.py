"""Sentences about a bad `.github/idp-copilot.yml`: where a problem is and how to quote it.

The schema and its checks live in `app.repo_config`; this module only words their findings for
a comment. Everything it quotes from the file goes into a code span, so it stays inert.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import yaml

CONFIG_PATH = ".github/idp-copilot.yml"


def expected_options(err: Any) -> list[str]:
    """The allowed values a pydantic `literal_error` lists, for a hint."""
    return re.findall(r"'([^']*)'", str(err.get("ctx", {}).get("expected", "")))


def line_of(node: yaml.Node | None, loc: Sequence[Any]) -> int | None:
    """The 1-based line of the YAML node at `loc` (a key's own line for a bad key)."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if str(key.value) == str(part):
                    line, node = key.start_mark.line + 1, value
                    break
            else:
                return line
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                return line
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line


def error_text(
    problems: list[str],
    file: str = CONFIG_PATH,
    uses: str = "this repository uses the default settings",
) -> str:
    """The comment-ready sentence naming each problem with the file's path and the fix.
    `file` names the file (`owner/repo:path` for another repository's); `uses` says what is
    in force instead."""
    lines = "\n".join(f"- {p}" if p.endswith(("?", ".")) else f"- {p}." for p in problems)
    return (
        f"`{file}` is not valid, so {uses} until it is fixed:\n\n{lines}\n\nFix it on the "
        "default branch; `idp-copilot init-repo` prints a commented example."
    )


def dotted_path(loc: Sequence[Any]) -> str:
    """A pydantic location as the reader writes it: `staging.reviewers[0]`."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def show_value(value: Any) -> str:
    """A value from the file, quoted for a code span: one line, no backticks, shortened."""
    if isinstance(value, dict | list):
        return kind_of(value)
    flat = " ".join(str(value).replace("`", "'").split())
    flat = flat if len(flat) <= 60 else flat[:59] + "…"
    return f"'{flat}'" if isinstance(value, str) else flat


def code_span(text: str) -> str:
    """`text` on one line as an inline code span."""
    # A code span keeps file content inert: no @-mentions, no markdown.
    return "`" + " ".join(text.replace("`", "'").split()) + "`"


def kind_of(value: Any) -> str:
    """What sort of YAML value this is, in words: "a mapping", "a list", "a str"."""
    return {dict: "a mapping", list: "a list"}.get(type(value), f"a {type(value).__name__}")
