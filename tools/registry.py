"""The tool registry: names and aliases, argument validation, timeouts, schema export.

The agent loop, `idp-copilot tools list|call` and `/api/tools` all go through it. `call`
never raises for a tool's failure: bad arguments, a `ToolError`, a timeout or a crash all
come back as a `ToolResult` with an error sentence the model can act on.
"""

from __future__ import annotations

import asyncio
import difflib
import logging
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from app import telemetry
from app.redaction import redact
from tools.prototype_spec import adapt, is_prototype_tool
from tools.spec import ToolContext, ToolError, ToolSpec, to_anthropic_tool, to_openai_tool

if TYPE_CHECKING:
    from app.config import Settings

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "idp_copilot.tools"
_SEPARATORS_RE = re.compile(r"[\s_\-]+")


def normalize_name(name: str) -> str:
    """The lookup form of a tool name: case, `-`, `_` and spaces are all equivalent."""
    return _SEPARATORS_RE.sub("_", name.strip().lower()).strip("_")


@dataclass
class ToolResult:
    """What one tool call gave: `output` (JSON-ready) when ok, else an `error` sentence."""

    ok: bool
    output: dict[str, Any] | None = None
    error: str | None = None
    duration: float = 0.0
    tool: str = ""


@dataclass(frozen=True)
class SkippedPlugin:
    """A plug-in of the entry-point group that is not loaded, and why (one sentence)."""

    plugin: str
    entry_point: str
    reason: str

    def as_json(self) -> dict[str, str]:
        return {"plugin": self.plugin, "entry_point": self.entry_point, "reason": self.reason}


def validation_message(exc: ValidationError, what: str) -> str:
    """A pydantic error as one readable sentence: each bad field, what is wrong with it."""
    parts = []
    for err in exc.errors(include_url=False):
        where = ".".join(str(p) for p in err["loc"]) or "(arguments)"
        parts.append(f"`{where}`: {err['msg']}")
    return f"{what}: " + "; ".join(parts)


class ToolRegistry:
    """Every tool the agent may use, found by name or alias in any spelling."""

    def __init__(self, specs: Iterable[ToolSpec] = ()) -> None:
        self._specs: dict[str, ToolSpec] = {}
        self._index: dict[str, str] = {}
        self._sources: dict[str, str] = {}
        self.not_loaded: list[SkippedPlugin] = []
        for spec in specs:
            self.register(spec)

    def register(self, spec: ToolSpec, source: str = "builtin") -> None:
        """Add a tool. A name or alias already taken by another tool is a `ValueError`."""
        self.check_free([spec], replace=True)
        keys = {normalize_name(n) for n in [spec.name, *spec.aliases]}
        self._specs[spec.name] = spec
        self._sources[spec.name] = source
        for key in keys:
            self._index[key] = spec.name

    def check_free(self, specs: list[ToolSpec], replace: bool = False) -> None:
        """A `ValueError` when a name or alias of `specs` is taken, by a registered tool
        (unless `replace` and it is the same tool's name) or by another of `specs`; so a
        plug-in is registered whole or not at all, and never in place of a built-in."""
        taken = dict(self._index)
        for spec in specs:
            for key in {normalize_name(n) for n in [spec.name, *spec.aliases]}:
                owner = taken.get(key)
                mine = owner == spec.name and (replace or key not in self._index)
                if owner is not None and not mine:
                    raise ValueError(
                        f"tool name or alias {key!r} of {spec.name!r} is taken by {owner!r}"
                    )
                taken[key] = spec.name

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and normalize_name(name) in self._index

    def __len__(self) -> int:
        return len(self._specs)

    @property
    def names(self) -> list[str]:
        return list(self._specs)

    def get(self, name: str) -> ToolSpec:
        """The spec for `name` or one of its aliases; unknown names raise a `ToolError` that
        lists the closest known names."""
        found = self._index.get(normalize_name(name))
        if found is not None:
            return self._specs[found]
        close = difflib.get_close_matches(normalize_name(name), list(self._index), n=3, cutoff=0.6)
        suggestions = list(dict.fromkeys(self._index[c] for c in close))  # best match first
        hint = (
            f" Did you mean {', '.join(f'`{s}`' for s in suggestions)}?"
            if suggestions
            else f" Known tools: {', '.join(f'`{n}`' for n in self._specs)}."
        )
        raise ToolError(f"There is no tool named `{name}`.{hint}")

    def specs(self, allow: list[str] | None = None) -> list[ToolSpec]:
        """The tools in registration order, narrowed to `allow` (names or aliases) if given."""
        if allow is None:
            return list(self._specs.values())
        wanted: set[str] = set()
        for name in allow:
            found = self._index.get(normalize_name(name))
            if found is None:
                log.warning("allow-list names unknown tool %r; ignored", name)
            else:
                wanted.add(found)
        return [spec for name, spec in self._specs.items() if name in wanted]

    def export_openai(self, allow: list[str] | None = None) -> list[dict[str, Any]]:
        return [to_openai_tool(s) for s in self.specs(allow)]

    def export_anthropic(self, allow: list[str] | None = None) -> list[dict[str, Any]]:
        return [to_anthropic_tool(s) for s in self.specs(allow)]

    def describe(self, allow: list[str] | None = None) -> list[dict[str, Any]]:
        """The catalogue for `idp-copilot tools list` and `GET /api/tools`."""
        out = []
        for spec in self.specs(allow):
            capabilities: dict[str, Any] = {}
            if spec.capabilities_provider is not None:
                try:
                    capabilities = dict(spec.capabilities_provider())
                except Exception as exc:  # a broken probe must not hide the tool
                    log.warning("capabilities of %s failed: %s", spec.name, exc)
                    capabilities = {"error": f"{type(exc).__name__}: {exc}"}
            out.append(
                {
                    "name": spec.name,
                    "aliases": list(spec.aliases),
                    "description": spec.description,
                    "input_schema": spec.input_schema,
                    "output_schema": spec.output_schema,
                    "side_effect": spec.side_effect,
                    "requires_approval": spec.requires_approval,
                    "timeout": spec.timeout,
                    "source": self._sources.get(spec.name, "builtin"),
                    "capabilities": capabilities,
                }
            )
        return out

    async def call(
        self, name: str, raw_args: dict[str, Any] | None, ctx: ToolContext
    ) -> ToolResult:
        """Validate, run under the tool's timeout, validate the output. Only a
        `BaseException` that is not an `Exception` (cancellation, exit) propagates.
        Each call is a `tool NAME` span and moves the tool metrics (app/telemetry.py)."""
        # Names the model made up share one label, so they cannot grow the metric's series.
        label = self.get(name).name if name in self else "unknown"
        with telemetry.observe_tool(label) as record:
            result = await self._call(name, raw_args, ctx)
            record(result.ok, result.duration, result.error)
        return result

    async def _call(
        self, name: str, raw_args: dict[str, Any] | None, ctx: ToolContext
    ) -> ToolResult:
        started = time.monotonic()
        try:
            spec = self.get(name)
        except ToolError as exc:
            return ToolResult(False, error=str(exc), tool=name)

        def failed(message: str) -> ToolResult:
            secrets = ctx.settings.secret_values() if ctx.settings is not None else []
            return ToolResult(
                False,
                error=redact(message, secrets),
                duration=time.monotonic() - started,
                tool=spec.name,
            )

        if spec.requires_approval and not ctx.approved:
            return failed(
                f"`{spec.name}` needs approval: it runs only after a maintainer comments "
                "`/idp apply`. Continue without it."
            )
        try:
            args = spec.input_model.model_validate(raw_args or {})
        except ValidationError as exc:
            return failed(
                validation_message(exc, f"Invalid arguments for `{spec.name}`")
                + ". Call it again with arguments that match its schema."
            )
        try:
            result = await self._run(spec, args, ctx)
        except TimeoutError:
            return failed(f"`{spec.name}` timed out after {spec.timeout:g}s")
        except ToolError as exc:
            return failed(str(exc))
        except ValidationError as exc:
            return failed(validation_message(exc, f"`{spec.name}` failed"))
        except Exception as exc:
            log.warning("tool %s raised %s", spec.name, type(exc).__name__)
            return failed(f"`{spec.name}` failed: {type(exc).__name__}: {exc}")
        try:
            output = _dump_output(spec, result)
        except ValidationError as exc:
            return failed(
                validation_message(exc, f"`{spec.name}` returned output that breaks its schema")
            )
        return ToolResult(True, output=output, duration=time.monotonic() - started, tool=spec.name)

    async def _run(self, spec: ToolSpec, args: BaseModel, ctx: ToolContext) -> Any:
        # A thread cannot be killed: on timeout a sync call is abandoned, not stopped, so
        # sync tools must be free of side effects or idempotent (ours are).
        job = spec.func(args, ctx) if spec.is_async else asyncio.to_thread(spec.func, args, ctx)
        if spec.timeout is None:
            return await job
        async with asyncio.timeout(spec.timeout) as scope:
            try:
                return await job
            except TimeoutError:
                if scope.expired():
                    raise
                raise ToolError(f"`{spec.name}` failed: a call inside it timed out") from None


def _dump_output(spec: ToolSpec, result: Any) -> dict[str, Any]:
    if isinstance(result, spec.output_model):
        model = result
    elif isinstance(result, BaseModel):
        model = spec.output_model.model_validate(result.model_dump())
    else:
        model = spec.output_model.model_validate(result)
    return model.model_dump(mode="json")


def _load_plugin(obj: Any) -> list[ToolSpec]:
    """An entry point's object: a ToolSpec or a prototype-format tool (dict or dataclass), a
    list of them, or a callable returning either."""
    if callable(obj) and not isinstance(obj, ToolSpec):
        obj = obj()
    single = isinstance(obj, ToolSpec) or is_prototype_tool(obj)
    items = [obj] if single else list(obj) if isinstance(obj, list | tuple) else [obj]
    bad = [type(i).__name__ for i in items if not (isinstance(i, ToolSpec) or is_prototype_tool(i))]
    if bad:
        raise TypeError(
            f"expected ToolSpec objects or prototype tools (name, description, input_schema, "
            f"func), got {', '.join(bad)}"
        )
    return [i if isinstance(i, ToolSpec) else adapt(i) for i in items]


def default_registry(settings: Settings | None = None) -> ToolRegistry:
    """The built-in tools plus every plug-in of the `idp_copilot.tools` entry-point group.
    A plug-in that fails to load, or whose names clash with a tool already there, is skipped
    whole with one log line and listed in `not_loaded`; the App still starts."""
    from tools.builtin import builtin_tools

    registry = ToolRegistry(builtin_tools())
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            specs = _load_plugin(ep.load())
            registry.check_free(specs)
        except Exception as exc:
            reason = f"{type(exc).__name__}: {exc}"
            log.error("tool plug-in %r (%s) not loaded: %s", ep.name, ep.value, reason)
            registry.not_loaded.append(SkippedPlugin(ep.name, ep.value, reason))
            continue
        for spec in specs:
            registry.register(spec, source=f"plugin:{ep.name}")
    return registry
