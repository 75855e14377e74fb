"""Tools written in the prototype's format, registered without a rewrite.

The prototype declared a tool as `name`, `description`, `input_schema` / `output_schema`
(JSON Schema dicts), `func(**kwargs)` (sync or async), `is_async`, `timeout` and `aliases`,
as a dict or as its `ToolSpec` dataclass. `adapt` turns one into our `ToolSpec`: the schemas
become pydantic models whose validation is the JSON Schema itself (Draft 2020-12), so the
registry checks arguments and results exactly as it does for typed tools, and the schema the
model sees is the one the plug-in wrote.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from pydantic import BaseModel, ConfigDict, model_validator

from tools.spec import ToolContext, ToolSpec

FIELDS = ("name", "description", "input_schema", "output_schema", "func")
ANY_OBJECT: dict[str, Any] = {"type": "object"}
# A schema error is reported with at most this many problems, each one line.
MAX_PROBLEMS = 5


class SchemaModel(BaseModel):
    """A JSON object checked against `schema`; subclasses are made per tool by `_model`."""

    model_config = ConfigDict(extra="allow")
    schema_dict: ClassVar[dict[str, Any]] = ANY_OBJECT
    validator: ClassVar[Draft202012Validator] = Draft202012Validator(ANY_OBJECT)

    @model_validator(mode="before")
    @classmethod
    def _check(cls, data: Any) -> Any:
        if isinstance(data, BaseModel):
            data = data.model_dump()
        if not isinstance(data, Mapping):
            raise ValueError(f"expected a JSON object, got {type(data).__name__}")
        errors = sorted(cls.validator.iter_errors(dict(data)), key=lambda e: list(e.path))
        if errors:
            problems = [
                f"{'.'.join(str(p) for p in e.path) or '(arguments)'}: {e.message}"
                for e in errors[:MAX_PROBLEMS]
            ]
            raise ValueError("; ".join(problems))
        return data

    @classmethod
    def model_json_schema(cls, *args: Any, **kwargs: Any) -> dict[str, Any]:  # type: ignore[override]
        return dict(cls.schema_dict)


def is_prototype_tool(obj: Any) -> bool:
    """True for a dict or object with the prototype's fields (and not our own `ToolSpec`)."""
    if isinstance(obj, ToolSpec):
        return False
    if isinstance(obj, Mapping):
        return "input_schema" in obj and "func" in obj
    return all(hasattr(obj, f) for f in FIELDS)


def adapt(obj: Any) -> ToolSpec:
    """Our `ToolSpec` for a prototype-format tool; a missing field or an invalid schema is a
    `TypeError` / `ValueError` that names it."""
    get: Callable[[str, Any], Any] = (
        (lambda k, d=None: obj.get(k, d))
        if isinstance(obj, Mapping)
        else (lambda k, d=None: getattr(obj, k, d))
    )
    missing = [f for f in FIELDS if get(f, None) is None and f != "output_schema"]
    if missing:
        raise TypeError(f"a prototype tool needs {', '.join(missing)}")
    name, func = str(get("name", "")), get("func", None)
    if not callable(func):
        raise TypeError(f"{name}: func is not callable")
    input_model = _model(name, "Input", get("input_schema", None))
    output_model = _model(name, "Output", get("output_schema", None) or ANY_OBJECT)
    # Whatever `is_async` says, a plain function runs in a thread (it must not block the
    # worker's event loop) and an awaitable it returns is awaited.
    coroutine = inspect.iscoroutinefunction(func)

    async def run(args: BaseModel, ctx: ToolContext) -> Any:
        kwargs = args.model_dump()
        result = func(**kwargs) if coroutine else await asyncio.to_thread(func, **kwargs)
        return await result if inspect.isawaitable(result) else result

    timeout = get("timeout", None)
    return ToolSpec(
        name=name,
        description=str(get("description", "")),
        input_model=input_model,
        output_model=output_model,
        func=run,
        is_async=True,
        timeout=float(timeout) if timeout is not None else 60.0,
        aliases=list(get("aliases", None) or []),
        capabilities_provider=get("capabilities_provider", None),
    )


def _model(tool: str, kind: str, schema: Any) -> type[SchemaModel]:
    if not isinstance(schema, Mapping):
        raise TypeError(f"{tool}: the {kind.lower()} schema must be a dict")
    schema = dict(schema)
    if schema.get("type", "object") != "object":
        raise ValueError(f"{tool}: the {kind.lower()} schema must describe a JSON object")
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        raise ValueError(f"{tool}: the {kind.lower()} schema is invalid: {exc.message}") from None
    namespace = {"schema_dict": schema, "validator": Draft202012Validator(schema)}
    return type(f"{tool}_{kind}", (SchemaModel,), namespace)
