"""Load a template set from its files into a `TemplateSet` that renders in a sandbox.

Templates from a repository are untrusted code: they are bounded in size, compiled once in a
`SandboxedEnvironment` (no attribute access to internals, `range` capped) with
`StrictUndefined`, and may include only other files the manifest names. Every problem is one
`TemplateSetError` sentence that names the set, the version and the file.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from jinja2 import DictLoader, StrictUndefined, TemplateError, TemplateSyntaxError
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context
from jinja2.sandbox import SandboxedEnvironment
from pydantic import ValidationError

from app.domain.service import ServiceRequest
from tools.template_sets.manifest import MANIFEST_NAME, Combination, LanguageProfile, Manifest

MAX_FILE_BYTES = 256 * 1024
MAX_SET_BYTES = 2 * 1024 * 1024
MAX_FILES = 300
# Schema keywords whose regular expressions would run on what users type (the description,
# names): Python's `re` backtracks, so a set may not bring them.
_REGEX_KEYWORDS = ("pattern", "patternProperties")


# The most a `*` or `**` in a template may make: the sandbox bounds `range` but not
# arithmetic, and `[[ 9 ** 9 ** 9 ]]` or `[[ "x" * 10 ** 9 ]]` would stall the worker.
MAX_OPERAND = 100_000


class TemplateSetError(ValueError):
    """A template set that cannot be used; the message is the one sentence users see."""


class _Sandbox(SandboxedEnvironment):
    intercepted_binops = frozenset(["*", "**"])

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        numbers = [v for v in (left, right) if isinstance(v, int) and not isinstance(v, bool)]
        if any(abs(n) > MAX_OPERAND for n in numbers) and (
            operator == "**" or any(isinstance(v, str | list | tuple) for v in (left, right))
        ):
            raise SecurityError(f"{operator} with an operand above {MAX_OPERAND} is not allowed")
        if operator == "**" and isinstance(right, int) and abs(right) > 64:
            raise SecurityError("** with an exponent above 64 is not allowed")
        return super().call_binop(context, operator, left, right)


@dataclass(frozen=True)
class TemplateSet:
    """A loaded, compiled set: its manifest, its templates and its parameter schemas."""

    manifest: Manifest
    source: str  # "builtin" or "owner/repo/folder@ref": where it was read, for messages
    templates: Mapping[str, str]
    schemas: Mapping[str, dict[str, Any]]
    _env: _Sandbox = field(repr=False, compare=False)

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def version(self) -> str:
        return self.manifest.version

    @property
    def label(self) -> str:
        return f"template set {self.name} {self.version}"

    def combinations(self) -> list[tuple[str, str]]:
        """Every (language, type) the set renders, in manifest order."""
        return [(c.language, kind) for c in self.manifest.combinations for kind in c.types]

    def languages(self) -> list[str]:
        return list(dict.fromkeys(c.language for c in self.manifest.combinations))

    def combination(self, language: str, kind: str) -> Combination:
        """The combination for `language` × `kind`; a ValueError names what the set offers."""
        for combo in self.manifest.combinations:
            if combo.language == language and kind in combo.types:
                return combo
        offers = ", ".join(f"{lang} {k}" for lang, k in self.combinations())
        raise TemplateSetError(
            f"{self.label} has no template for {language} {kind}; it has {offers}"
        )

    def profile(self, language: str, kind: str) -> LanguageProfile:
        return self.combination(language, kind).language_profile()

    def render(self, template: str, context: Mapping[str, Any]) -> str:
        """Render one template of the set; a template error becomes one sentence."""
        try:
            return self._env.get_template(template).render(**context)
        except TemplateError as exc:
            raise TemplateSetError(f"{self.label}: {template} failed to render: {exc}") from None
        except (ArithmeticError, TypeError, ValueError, LookupError, RecursionError) as exc:
            # A set's template is code: `[[ 1 / 0 ]]` is its author's bug, shown as a sentence.
            raise TemplateSetError(
                f"{self.label}: {template} failed to render: {type(exc).__name__}: {exc}"
            ) from None

    def check_parameters(self, req: ServiceRequest, language: str) -> None:
        """`req` against the combination's JSON Schema; the error names each bad field."""
        combo = self.combination(language, req.type)
        validator = jsonschema.Draft202012Validator(self.schemas[combo.schema_path])
        instance = req.model_dump(mode="json", exclude_none=True)
        errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))
        if errors:
            problems = [_parameter_problem(err) for err in errors[:5]]
            raise ValueError(f"{self.label} ({language} {req.type}): " + "; ".join(problems))


def _parameter_problem(err: jsonschema.ValidationError) -> str:
    path = ".".join(str(part) for part in err.absolute_path)
    if not path and err.validator == "required":
        return err.message
    return f"parameter `{path or '(request)'}`: {err.message[:200]}"


def environment(templates: Mapping[str, str]) -> _Sandbox:
    """The sandbox every set renders in. Square-bracket delimiters: the templates are Go,
    Java, JavaScript and Python sources full of curly braces."""
    return _Sandbox(
        loader=DictLoader(dict(templates)),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,  # renders source code and markdown, never HTML pages
        variable_start_string="[[",
        variable_end_string="]]",
        block_start_string="[%",
        block_end_string="%]",
        comment_start_string="[#",
        comment_end_string="#]",
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
        cache_size=-1,
    )


def parse_manifest(text: str, where: str) -> Manifest:
    """`template-set.yaml` text as a `Manifest`, or one sentence naming the first problem."""
    if len(text.encode()) > MAX_FILE_BYTES:
        raise TemplateSetError(f"{where}: {MANIFEST_NAME} is larger than 256 KiB")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise TemplateSetError(f"{where}: {MANIFEST_NAME} is not valid YAML ({exc})") from None
    if not isinstance(data, dict):
        raise TemplateSetError(f"{where}: {MANIFEST_NAME} must be a mapping")
    try:
        return Manifest.model_validate(data)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        loc = ".".join(str(part) for part in err["loc"]) or "(top)"
        raise TemplateSetError(f"{where}: {MANIFEST_NAME} {loc}: {err['msg']}") from None


def _check_schema(path: str, text: str, label: str) -> dict[str, Any]:
    try:
        schema = json.loads(text)
    except json.JSONDecodeError as exc:
        raise TemplateSetError(f"{label}: {path} is not valid JSON ({exc})") from None
    if not isinstance(schema, dict):
        raise TemplateSetError(f"{label}: {path} must be a JSON Schema object")
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "(root)"
        raise TemplateSetError(
            f"{label}: {path} is not a valid JSON Schema (draft 2020-12) at {where}: "
            f"{exc.message[:200]}"
        ) from None
    if any(word in text for word in (f'"{k}"' for k in _REGEX_KEYWORDS)):
        raise TemplateSetError(
            f"{label}: {path} uses `pattern`; regular expressions from a template set would run "
            "on what users type, so use enum, minLength/maxLength or a range instead"
        )
    return schema


def load_files(files: Mapping[str, str], source: str) -> TemplateSet:
    """A set from its files (set-relative path → text), compiled; raises `TemplateSetError`."""
    manifest_text = files.get(MANIFEST_NAME)
    if manifest_text is None:
        raise TemplateSetError(f"{source}: no {MANIFEST_NAME} at the set's folder")
    manifest = parse_manifest(manifest_text, source)
    label = f"template set {manifest.name} {manifest.version}"
    needed = manifest.template_paths()
    if len(needed) > MAX_FILES:
        raise TemplateSetError(f"{label}: more than {MAX_FILES} files")
    missing = sorted(path for path in needed if path not in files)
    if missing:
        raise TemplateSetError(
            f"{label}: {', '.join(missing[:5])} named in the manifest is missing"
        )
    total = sum(len(files[path].encode()) for path in needed)
    if total > MAX_SET_BYTES or any(len(files[p].encode()) > MAX_FILE_BYTES for p in needed):
        raise TemplateSetError(f"{label}: files over 256 KiB or over 2 MiB in all")
    schema_paths = {combo.schema_path for combo in manifest.combinations}
    schemas = {path: _check_schema(path, files[path], label) for path in sorted(schema_paths)}
    templates = {path: files[path] for path in needed if path not in schema_paths}
    env = environment(templates)
    for path in sorted(templates):
        try:
            env.get_template(path)
        except TemplateSyntaxError as exc:
            raise TemplateSetError(
                f"{label}: {path} line {exc.lineno}: {exc.message} (Jinja syntax with [[ ]], "
                "[% %] and [# #] delimiters)"
            ) from None
        except TemplateError as exc:
            raise TemplateSetError(f"{label}: {path}: {exc}") from None
    return TemplateSet(manifest, source, templates, schemas, env)


def load_dir(path: Path, source: str | None = None) -> TemplateSet:
    """A set from a folder on disk (the built-in set, examples, a checkout)."""
    manifest_file = path / MANIFEST_NAME
    if not manifest_file.is_file():
        raise TemplateSetError(f"{path}: no {MANIFEST_NAME}")
    manifest = parse_manifest(manifest_file.read_text(), str(path))
    files = {MANIFEST_NAME: manifest_file.read_text()}
    for rel in manifest.template_paths():
        file = path / rel
        if file.is_file():
            files[rel] = file.read_text()
    return load_files(files, source or str(path))
