"""YAML of a repository's config file, read within bounds: PyYAML's parser keeps its own
stack, so the events are read first (lazily, stopping at the first level too deep), and only
a file within MAX_CONFIG_DEPTH has its nodes built, which PyYAML does recursively.
"""

from __future__ import annotations

from typing import Any

import yaml

# Nesting of mappings and lists the file may use (the schema needs 2). PyYAML builds nodes
# recursively: a few thousand `[` raised RecursionError in every job of the repository.
MAX_CONFIG_DEPTH = 20


def _events(text: str) -> tuple[list[yaml.Event], str | None]:
    """The file's YAML events, or the sentence saying it nests deeper than MAX_CONFIG_DEPTH.
    Read lazily and stopped at the first level too deep: PyYAML's scanner slows with every
    open `[` (5,000 of them took 8 s), and building nodes recurses once per level."""
    events: list[yaml.Event] = []
    depth = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        events.append(event)
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_CONFIG_DEPTH:
                line = event.start_mark.line + 1 if event.start_mark else 1
                return events, (
                    f"line {line}: mappings and lists nest deeper than {MAX_CONFIG_DEPTH} "
                    "levels; the settings need two"
                )
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
    return events, None


class _Replay(yaml.composer.Composer, yaml.constructor.SafeConstructor, yaml.resolver.Resolver):
    """PyYAML's safe loader fed from parsed events: the file is scanned and parsed once
    (PyYAML's parser keeps its own stack, no recursion), its depth checked, and only then
    are nodes built, which PyYAML does recursively."""

    def __init__(self, events: list[yaml.Event]) -> None:
        self._events, self._next = events, 0
        yaml.composer.Composer.__init__(self)
        yaml.constructor.SafeConstructor.__init__(self)
        yaml.resolver.Resolver.__init__(self)

    def check_event(self, *choices: type) -> bool:
        if self._next >= len(self._events):
            return False
        return not choices or isinstance(self._events[self._next], choices)

    def peek_event(self) -> yaml.Event:
        return self._events[self._next]

    def get_event(self) -> yaml.Event:
        self._next += 1
        return self._events[self._next - 1]


def load_bounded(text: str) -> tuple[Any, yaml.Node | None, str | None]:
    """The file's data and root node, or the sentence saying it nests too deep."""
    events, too_deep = _events(text)
    if too_deep is not None:
        return None, None, too_deep
    loader = _Replay(events)
    root = loader.get_single_node()
    return (loader.construct_document(root) if root is not None else None), root, None
