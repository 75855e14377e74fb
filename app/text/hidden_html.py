"""HTML a reviewer does not see on GitHub, removed in one linear pass.

For `app/text/sanitize.py`. One RE2 pattern finds the tokens (comments, start tags with
their attributes, end tags) in a single scan; a small loop drops comments, the elements
GitHub never shows (script, style, template, noscript, iframe, object) and elements hidden
by an attribute (`hidden`, `aria-hidden="true"`, a style that hides), with their content and
their nested elements of the same name. An element left open drops the rest of the text, as
it would in a browser. Everything else is kept as written. The regular expressions this
replaces backtracked: 64 KB of `<script ` took 17 s, 80 KB of `<a style="` 50 s.
"""

from __future__ import annotations

from app.untrusted import linear, scan

# Attribute and tag syntax as CommonMark's raw HTML (spec 0.31, "Raw HTML"): an attribute
# value is unquoted, 'single-quoted' or "double-quoted", so a '>' inside quotes is no end.
_ATTRIBUTE = rb"""[A-Za-z_:][A-Za-z0-9_.:-]*(?:\s*=\s*(?:[^\s"'=<>`]+|'[^']*'|"[^"]*"))?"""
# Groups: 1 comment, 2 start tag name, 3 its attributes, 4 "/" of a self-closing tag,
# 5 end tag name.
_TOKEN_RE = linear(
    rb"(?s)(<!--.*?(?:-->|\z))"
    rb"|<([A-Za-z][A-Za-z0-9-]*)((?:\s+" + _ATTRIBUTE + rb")*)\s*(/?)>"
    rb"|</([A-Za-z][A-Za-z0-9-]*)\s*>"
)
# Groups: 1 name, 2 bare value, 3 'single', 4 "double".
_ATTRIBUTE_RE = linear(
    rb"""([A-Za-z_:][A-Za-z0-9_.:-]*)(?:\s*=\s*(?:([^\s"'=<>`]+)|'([^']*)'|"([^"]*)"))?"""
)
NEVER_SHOWN = frozenset({b"script", b"style", b"template", b"noscript", b"iframe", b"object"})
# Elements without content: hiding one hides the tag alone.
VOID = frozenset(
    {b"area", b"base", b"br", b"col", b"embed", b"hr", b"img", b"input", b"link", b"meta"}
    | {b"source", b"track", b"wbr"}
)


def _attributes(tag: bytes) -> dict[bytes, str]:
    out: dict[bytes, str] = {}
    for spans in scan(_ATTRIBUTE_RE, tag):
        (k0, k1), *values = spans[1:]
        value = next((tag[a:b] for a, b in values if a >= 0), b"")
        out.setdefault(tag[k0:k1].lower(), value.decode("utf-8", "replace"))
    return out


def _is_zero(value: str) -> bool:
    """True for a CSS length or number that is zero: `0`, `0px`, `0.0em`, `.0`, `0%`."""
    number = value.strip().removesuffix("!important").strip()
    digits = number.rstrip("abcdefghijklmnopqrstuvwxyz%")
    try:
        return bool(digits) and float(digits) == 0
    except ValueError:
        return False


def _style_hides(style: str) -> bool:
    for declaration in style.lower().split(";"):
        prop, _, value = declaration.partition(":")
        prop, value = prop.strip(), " ".join(value.split())
        if (prop, value) in (("display", "none"), ("visibility", "hidden")):
            return True
        if prop in ("font-size", "opacity") and _is_zero(value):
            return True
    return False


def hides(name: bytes, attrs: bytes) -> bool:
    """True when a start tag's attributes keep its element from view (or it shows a
    `data:` image, which can spell text a reviewer reads as a picture)."""
    low = attrs.lower()
    if b"hidden" not in low and b"style" not in low and b"data:" not in low:
        return False  # most tags: no attribute can hide them, nothing to parse
    found = _attributes(attrs)
    if b"hidden" in found or found.get(b"aria-hidden", "").strip().lower() == "true":
        return True
    if name == b"img" and found.get(b"src", "").strip().lower().startswith("data:"):
        return True
    return _style_hides(found.get(b"style", ""))


def strip_hidden(text: str) -> str:
    """`text` without HTML comments and hidden elements (see the module)."""
    if "<" not in text:
        return text
    data = text.encode("utf-8", "surrogatepass")
    out: list[bytes] = []
    kept = 0  # data[kept:] is not yet copied or dropped
    hiding: bytes | None = None  # the name of the hidden element being dropped
    depth = 0  # its nesting depth
    for (start, end), comment, name, attrs, selfclose, closing in scan(_TOKEN_RE, data):
        if hiding is None:
            out.append(data[kept:start])
        kept = end
        if comment[0] >= 0:
            continue
        is_end = closing[0] >= 0
        tag = (data[closing[0] : closing[1]] if is_end else data[name[0] : name[1]]).lower()
        if hiding is not None:
            if tag == hiding:
                depth += -1 if is_end else (0 if selfclose[1] > selfclose[0] else 1)
                if depth == 0:
                    hiding = None
            continue
        if not is_end and (tag in NEVER_SHOWN or hides(tag, data[attrs[0] : attrs[1]])):
            if tag not in VOID and selfclose[1] == selfclose[0]:
                hiding, depth = tag, 1
            continue
        out.append(data[start:end])
    if hiding is None:
        out.append(data[kept:])
    return b"".join(out).decode("utf-8", "surrogatepass")
