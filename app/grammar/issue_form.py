"""The "New service" issue form as GitHub renders it (`### Label` headings, each followed by
its value) → `ServiceRequest`. Read with string work in one pass over the lines: a heading
pattern that backtracked held the receiver for 7.8 s on one 2,000-character line.
"""

from __future__ import annotations

from app.domain.service import ServiceRequest
from app.grammar.values import CommandError, _check_number, _option_value, _service
from app.untrusted import MAX_BODY_CHARS, scrub

_FORM_FIELDS = {
    "service name": "name",
    "language": "language",
    "service type": "type",
    "team": "team",
    "port": "port",
    "replicas": "replicas",
    "description": "description",
}
_LANGUAGE_ALIASES = {"node.js": "node", "nodejs": "node", "javascript": "node", "golang": "go"}


def _headings(body: str) -> list[tuple[int, int, str]]:
    """Each `### Label` line of `body` (a level-3 ATX heading, closing `#`s dropped) as
    (start, end, label): plain string work, one pass over the lines."""
    found: list[tuple[int, int, str]] = []
    start = 0
    for line in body.split("\n"):
        end = start + len(line)
        if line.startswith("###") and line[3:4] in (" ", "\t"):
            label = line[3:].strip(" \t")
            label = label.rstrip("#").rstrip(" \t") or label
            if label:
                found.append((start, end, label))
        start = end + 1
    return found


def is_issue_form(body: str | None) -> bool:
    """True when `body` is our "New service" issue form as GitHub renders it."""
    text = (body or "")[:MAX_BODY_CHARS]
    return any(label.strip().lower() == "service name" for _, _, label in _headings(text))


def form_sections(body: str) -> dict[str, str | None]:
    """`### Label` → value (None for `_No response_` or empty), labels lower-cased."""
    body = scrub(body[:MAX_BODY_CHARS]).replace("\r\n", "\n")
    headings = _headings(body)
    sections: dict[str, str | None] = {}
    for i, (_, end, label) in enumerate(headings):
        stop = headings[i + 1][0] if i + 1 < len(headings) else len(body)
        value = body[end:stop].strip()
        sections[label.strip().lower()] = None if not value or value == "_No response_" else value
    return sections


def parse_issue_form(body: str) -> ServiceRequest:
    """The "New service" issue form → ServiceRequest; CommandError names a bad field."""
    sections = form_sections(body)
    name = (sections.get("service name") or "").strip("` \n")
    if not name:
        raise CommandError(
            "The issue form has no service name: edit the issue and fill in "
            "**Service name**, or comment `/idp create-service NAME`."
        )
    fields: dict[str, object] = {}
    for label, value in sections.items():
        field = _FORM_FIELDS.get(label)
        if field in (None, "name") or value is None:
            continue
        shown = f"**{label.capitalize()}**"
        if field == "description":
            fields[field] = value[:2000]
        elif field == "language":
            word = value.strip().lower()
            fields[field] = _option_value(field, _LANGUAGE_ALIASES.get(word, word), shown)
        elif field == "type":
            fields[field] = _option_value(field, value.split()[0], shown)
        elif field == "team":
            fields[field] = _option_value(field, value, shown)
        else:
            fields[field] = _check_number(field, value.strip(), shown)
    return _service(name, fields)
