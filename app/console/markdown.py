"""Markdown for the console: CommonMark (markdown-it-py, raw HTML off) cleaned by an
allow-list sanitizer (nh3, Ammonia's rules) before it reaches a page.

Requests, model turns and tool output are untrusted: whatever they hold ends up as text or
as one of the few tags below, never as a script, a style or an event handler. The page's CSP
(script nonces, no inline handlers) is the second wall.
"""

from __future__ import annotations

from functools import lru_cache

import nh3
from markdown_it import MarkdownIt
from markupsafe import Markup

# Longer text is cut before parsing: the parser is linear, but its constant is large (20,000
# `[` take about 0.5 s), and a page needs no novel.
MAX_MARKDOWN = 20_000
TAGS = {
    "a", "blockquote", "br", "code", "del", "em", "h1", "h2", "h3", "h4", "h5", "h6", "hr",
    "li", "ol", "p", "pre", "s", "strong", "table", "tbody", "td", "th", "thead", "tr", "ul",
}  # fmt: skip
ATTRIBUTES = {"a": {"href", "title"}, "th": {"align"}, "td": {"align"}, "ol": {"start"}}
URL_SCHEMES = {"http", "https", "mailto"}
# GitHub's task-list items, as the sanitized HTML shows them: drawn as disabled checkboxes.
_TASKS = {
    "<li>[ ] ": '<li class="task"><input type="checkbox" disabled> ',
    "<li>[x] ": '<li class="task"><input type="checkbox" disabled checked> ',
    "<li>[X] ": '<li class="task"><input type="checkbox" disabled checked> ',
    "<li><p>[ ] ": '<li class="task"><p><input type="checkbox" disabled> ',
    "<li><p>[x] ": '<li class="task"><p><input type="checkbox" disabled checked> ',
}

_parser = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable(
    ["table", "strikethrough"]
)


def to_inline_html(text: str | None) -> Markup:
    """Safe HTML for one line of Markdown (a todo note, a task's detail): no paragraph."""
    return to_html(text, inline=True)


# The session page re-renders its conversation on every burst of events: the same texts.
@lru_cache(maxsize=2048)
def to_html(text: str | None, inline: bool = False) -> Markup:
    """Safe HTML for `text` written in (GitHub-flavoured) Markdown."""
    if not text:
        return Markup("")
    if len(text) > MAX_MARKDOWN:
        text = text[:MAX_MARKDOWN] + "\n\n… (cut)"
    html = _parser.renderInline(text) if inline else _parser.render(text)
    clean = nh3.clean(
        html,
        tags=TAGS,
        attributes=ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )
    # Our own markup, added after the sanitizer to fixed prefixes it left in place.
    for plain, box in _TASKS.items():
        clean = clean.replace(plain, box)
    return Markup(clean)  # noqa: S704 - sanitized by nh3 just above
