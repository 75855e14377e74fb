"""The built-in tools: the twelve tools of the original prototype plus the publisher."""

from __future__ import annotations

from tools.spec import ToolSpec


def builtin_tools() -> list[ToolSpec]:
    """Every built-in ToolSpec, in a stable order."""
    from importlib import import_module

    specs: list[ToolSpec] = []
    for module in ("generate", "knowledge", "cluster", "repository", "repository_push", "publish"):
        try:
            mod = import_module(f"tools.builtin.{module}")
        except ModuleNotFoundError as exc:
            if exc.name != f"tools.builtin.{module}":
                raise
            continue
        specs.extend(mod.TOOLS)
    return specs
