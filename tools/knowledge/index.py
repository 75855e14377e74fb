"""Ranked search over platform guidelines: the bundled markdown plus a repository's own.

Documents are split into sections at their headings; each section is one BM25 document, so a
hit cites a file and a heading (`resources.md#memory-requests-and-limits`) that a reader can
open. Used by `search_knowledge_base_for_guidelines` and `/idp ask`.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

BUNDLED_PREFIX = "idp-copilot/guidelines/"
SNIPPET_CHARS = 280

_STOP_WORDS = """
a about after all also am an and any are as at be been before but by can could do does for
from had has have how i if in into is it its just me might much must my no not of on or our
out should so than that the their them then there these they this those to too up us was we
were what when where which while who why will with would you your
"""
STOP_WORDS = frozenset(_STOP_WORDS.split())
_FENCE = re.compile(r"^\s*(```|~~~)")
_WORD = re.compile(r"[a-z0-9]+")


def _heading(line: str) -> tuple[int, str] | None:
    """An ATX heading line's level and text (closing `#`s dropped), else None. String work,
    not a pattern: the files may hold text a user wrote."""
    text = line.rstrip()
    level = len(text) - len(text.lstrip("#"))
    if not 1 <= level <= 6 or not text[level : level + 1].isspace():
        return None
    title = text[level:].strip()
    title = title.rstrip("#").rstrip() or title
    return (level, title) if title else None


def stem(word: str) -> str:
    """Naive plural stemming: probes → probe, policies → policy, passes → pass."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 4 and word.endswith("sses"):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def tokenize(text: str) -> list[str]:
    """Lower-case words without punctuation or stop words, plurals folded."""
    return [stem(w) for w in _WORD.findall(text.lower()) if w not in STOP_WORDS]


def anchor(heading: str) -> str:
    """GitHub's heading anchor: lower-case, punctuation dropped, spaces to hyphens."""
    slug = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return slug.replace(" ", "-")


@dataclass(frozen=True)
class Section:
    """One headed part of a guideline file: what is indexed and what a hit points at."""

    source: str
    title: str
    heading: str
    body: str


@dataclass(frozen=True)
class Hit:
    """A ranked section: `citation` is `path#anchor`, ready to quote in an answer."""

    source: str
    heading: str
    score: float
    snippet: str

    @property
    def citation(self) -> str:
        return f"{self.source}#{anchor(self.heading)}"


def split_sections(source: str, markdown: str) -> list[Section]:
    """Sections at every heading (code fences respected); text before the first heading
    belongs to a section named after the file. Sections without text are dropped."""
    title = source.rsplit("/", 1)[-1].removesuffix(".md")
    heading = title
    sections: list[Section] = []
    lines: list[str] = []
    in_fence = False

    def close() -> None:
        body = "\n".join(lines).strip()
        if body:
            sections.append(Section(source, title, heading, body))

    for line in markdown.splitlines():
        if _FENCE.match(line):
            in_fence = not in_fence
        found = None if in_fence else _heading(line)
        if found is None:
            lines.append(line)
            continue
        close()
        lines = []
        level, heading = found
        if level == 1:
            title = heading
    close()
    return sections


@lru_cache(maxsize=1)
def bundled_docs() -> dict[str, str]:
    """The guidelines shipped with the App (the README is a table of contents, not indexed)."""
    folder = resources.files("tools.knowledge")
    return {
        BUNDLED_PREFIX + item.name: item.read_text(encoding="utf-8")
        for item in sorted(folder.iterdir(), key=lambda i: i.name)
        if item.name.endswith(".md") and item.name != "README.md"
    }


class KnowledgeBase:
    """BM25 (Okapi, k1=1.5, b=0.75) over guideline sections.

    `extra_docs` are a repository's own guidelines (path → markdown, e.g. from
    `docs/guidelines/**/*.md`); fetching them is the caller's job, since the Forge cannot
    list a folder. They rank together with the bundled ones; no source gets a bonus."""

    def __init__(
        self,
        extra_docs: dict[str, str] | None = None,
        *,
        include_bundled: bool = True,
        k1: float = 1.5,
        b: float = 0.75,
    ) -> None:
        docs = dict(bundled_docs()) if include_bundled else {}
        docs.update(extra_docs or {})
        self.sections = [s for path, text in docs.items() for s in split_sections(path, text)]
        self.k1, self.b = k1, b
        # The heading counts twice and the file title once: they name what the section is about.
        self._terms = [
            Counter(tokenize(f"{s.title} {s.heading} {s.heading} {s.body}")) for s in self.sections
        ]
        self._lengths = [sum(t.values()) for t in self._terms]
        self._avg = sum(self._lengths) / len(self._lengths) if self._lengths else 0.0
        df: Counter[str] = Counter()
        for terms in self._terms:
            df.update(terms.keys())
        n = len(self.sections)
        self._idf = {t: math.log(1 + (n - f + 0.5) / (f + 0.5)) for t, f in df.items()}

    def search(self, query: str, k: int = 3) -> list[Hit]:
        """The `k` best sections for `query`, best first; empty when no word matches."""
        words = [w for w in dict.fromkeys(tokenize(query)) if w in self._idf]
        if not words or k < 1:
            return []
        scored: list[tuple[float, int]] = []
        for i, terms in enumerate(self._terms):
            norm = self.k1 * (1 - self.b + self.b * self._lengths[i] / self._avg)
            score = sum(
                self._idf[w] * terms[w] * (self.k1 + 1) / (terms[w] + norm)
                for w in words
                if terms[w]
            )
            if score > 0:
                scored.append((score, i))
        scored.sort(key=lambda pair: (-pair[0], pair[1]))
        return [self._hit(self.sections[i], score, words) for score, i in scored[:k]]

    @staticmethod
    def _hit(section: Section, score: float, words: list[str]) -> Hit:
        paragraphs = [p for p in re.split(r"\n\s*\n", section.body) if p.strip()]
        wanted = set(words)
        best = max(paragraphs, key=lambda p: len(wanted.intersection(tokenize(p))))
        text = " ".join(best.split())
        if len(text) > SNIPPET_CHARS:
            text = text[:SNIPPET_CHARS].rsplit(" ", 1)[0] + " …"
        return Hit(section.source, section.heading, round(score, 4), text)
