"""The settings in force for a repository, layered (README "Organization defaults"):

    built-in defaults < the org's `.github` file < files `_extends` names < the repository's file

The organization's `OWNER/.github` repository may hold `.github/idp-copilot.yml`: the default
of every repository of the installation, whether or not a repository's file says
`_extends: .github`. A repository's file may override its keys, but never go below it (nor
the org file below the built-in defaults): a command's permission, the approval-required
tools, the allowed tools and the reviewers' permission may only become stricter
(app/config_floor.py). `_extends: other-repo`, `_extends: owner/other-repo` (same owner
only) and `_extends: repo:path.yml` name files layered between the org file and the
repository's file, checked against the same floor; the chain is bounded (MAX_EXTENDS files,
no file twice).

A file that is invalid is left out with one comment naming it: an invalid org file leaves the
built-in defaults under the repository's file; an invalid repository file (or a file it
extends) leaves the org's settings. Files of other repositories (the org file, extended
files) are cached in Redis for OTHER_FILE_TTL seconds per installation; the repository's own
file is read at every job.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

import yaml

from app.config_floor import DEFAULT, Floor
from app.github.forge import Forge, ForgeError, RepoRef, validate_path
from app.repo_config import (
    BUILTIN_FLOOR,
    CONFIG_PATH,
    DEFAULT_PERMISSIONS,
    EXTENDS_KEY,
    MAX_CONFIG_BYTES,
    RepoConfig,
    check_config_text,
)
from app.repo_config_errors import code_span, error_text, line_of, show_value
from app.untrusted import linear

if TYPE_CHECKING:
    import redis

    from app.config import Settings
    from tools.registry import ToolRegistry
    from tools.template_sets.sources import TemplateSetCatalog

ORG_REPO = ".github"
MAX_EXTENDS = 3  # files an `_extends` chain may name beyond the repository's own
OTHER_FILE_TTL = 60  # seconds: a change to the org file applies within a minute
BUILTIN = "built-in default"
# Probot's forms (octokit-plugin-config's EXTENDS_REGEX): repo, owner/repo, and either with
# `:path.yml`. RE2: the value comes from a file anyone with push access writes.
_EXTENDS_RE = linear(
    r"^(?:([A-Za-z0-9][A-Za-z0-9-]{0,38})/)?([A-Za-z0-9._-]{1,100})"
    r"(?::([A-Za-z0-9._/-]{1,200}\.ya?ml))?$"
)
_LABELS = {"org": "org .github file", "extends": "extended file", "repository": "repository file"}


@dataclass(frozen=True)
class ConfigFile:
    """One settings file: what it is to the repository and where it lives."""

    kind: Literal["org", "extends", "repository"]
    repo: str  # owner/name
    path: str

    @property
    def where(self) -> str:
        return f"{self.repo}:{self.path}"

    @property
    def label(self) -> str:
        """E.g. `org .github file acme/.github:.github/idp-copilot.yml`."""
        return f"{_LABELS[self.kind]} {self.where}"

    @property
    def markdown(self) -> str:
        return f"{_LABELS[self.kind]} `{self.where}`"


@dataclass(frozen=True)
class RepoConfigResult:
    """The config in force, the files it was merged from (base first), where each key's value
    came from, and the comment-ready `error` when a file was left out."""

    config: RepoConfig
    found: bool = False
    error: str | None = None
    files: tuple[ConfigFile, ...] = ()
    origins: Mapping[str, ConfigFile] = field(default_factory=dict)

    def origin(self, key: str) -> str:
        """Where the value of dotted `key` (e.g. `permissions.apply`) came from."""
        file = self.origins.get(key)
        return file.label if file is not None else BUILTIN

    def origin_markdown(self, key: str) -> str:
        file = self.origins.get(key)
        return file.markdown if file is not None else BUILTIN

    def origin_file(self, key: str) -> ConfigFile | None:
        return self.origins.get(key)


class FileCache(Protocol):
    """Files of other repositories, kept briefly between jobs."""

    def get(self, repo: RepoRef, path: str) -> tuple[bool, str | None]: ...

    def put(self, repo: RepoRef, path: str, text: str | None) -> None: ...


class RedisFileCache:
    """`FileCache` in Redis for `ttl` seconds, per installation: the org file costs one
    contents read a minute, not one per job. A missing file is cached too."""

    def __init__(self, connection: redis.Redis, settings: Settings, ttl: int = OTHER_FILE_TTL):
        self.connection, self.settings, self.ttl = connection, settings, ttl

    def _key(self, repo: RepoRef, path: str) -> str:
        where = f"{repo.installation_id or 0}\0{repo.full_name.lower()}\0{path}"
        return self.settings.key("config-file", hashlib.sha256(where.encode()).hexdigest()[:32])

    def get(self, repo: RepoRef, path: str) -> tuple[bool, str | None]:
        raw = self.connection.get(self._key(repo, path))
        if raw is None:
            return False, None
        text = raw.decode() if isinstance(raw, bytes) else str(raw)
        return True, (text[1:] if text.startswith("+") else None)

    def put(self, repo: RepoRef, path: str, text: str | None) -> None:
        # One byte past the bound keeps "larger than 64 KiB" true without storing more.
        value = "-" if text is None else "+" + text[: MAX_CONFIG_BYTES + 1]
        self.connection.set(self._key(repo, path), value, ex=self.ttl)


@dataclass
class _Layer:
    file: ConfigFile
    data: dict[str, Any]
    text: str


class _LayerError(Exception):
    """A file left out: the comment-ready sentence naming it."""


async def load_repo_config(
    forge: Forge,
    repo: RepoRef,
    registry: ToolRegistry | None = None,
    template_sets: TemplateSetCatalog | None = None,
    cache: FileCache | None = None,
) -> RepoConfigResult:
    """The settings in force for `repo`, read from the default branches (module docstring).

    With a `registry`, tool names must be known tools; with `template_sets`, `templates:`
    must name a set (and version) of the operator's. A `ForgeError` (GitHub down after
    retries) propagates: guessing the defaults then could run a command a file forbids.
    """
    reader = _Reader(forge, repo, cache)
    errors: list[str] = []
    layers: list[_Layer] = []
    floor = BUILTIN_FLOOR
    org = ConfigFile("org", f"{repo.owner}/{ORG_REPO}", CONFIG_PATH)
    org_text = await reader.read(RepoRef(repo.owner, ORG_REPO, repo.installation_id), CONFIG_PATH)
    found = org_text is not None
    if org_text is not None:
        try:
            layer, floor = await _org_layer(org, org_text, forge, registry, template_sets, repo)
            layers.append(layer)
        except _LayerError as exc:
            errors.append(str(exc))
    if repo.name.lower() != ORG_REPO:
        fallback = (
            f"this repository uses the organization's settings (`{org.where}`)"
            if layers
            else "this repository uses the default settings"
        )
        try:
            chain = await _repository_chain(reader, repo, registry, floor, fallback)
            found = found or bool(chain)
            if chain:
                merged = layers + chain
                await _check_templates(merged, forge, template_sets, fallback, repo.installation_id)
                layers = merged
        except _LayerError as exc:
            found = True
            errors.append(str(exc))
    data, origins = merge_layers(layers)
    return RepoConfigResult(
        RepoConfig.model_validate(data),
        found=found,
        error="\n\n".join(errors) or None,
        files=tuple(layer.file for layer in layers),
        origins=origins,
    )


class _Reader:
    """Reads through the forge; files of other repositories through the cache."""

    def __init__(self, forge: Forge, home: RepoRef, cache: FileCache | None) -> None:
        self.forge, self.home, self.cache = forge, home, cache
        self.reads = 0

    async def read(self, repo: RepoRef, path: str) -> str | None:
        other = repo.full_name.lower() != self.home.full_name.lower()
        if other and self.cache is not None:
            hit, text = self.cache.get(repo, path)
            if hit:
                return text
        self.reads += 1
        # GitHub answers 404 for a repository outside the installation: read as no file.
        text = await self.forge.read_file(repo, path)
        if other and self.cache is not None:
            self.cache.put(repo, path, text)
        return text


async def _org_layer(
    org: ConfigFile,
    text: str,
    forge: Forge,
    registry: ToolRegistry | None,
    template_sets: TemplateSetCatalog | None,
    repo: RepoRef,
) -> tuple[_Layer, Floor]:
    uses = f"the repositories of {repo.owner} use the built-in defaults under their own files"
    checked = check_config_text(text, registry)
    if checked.problems or checked.config is None:
        raise _LayerError(error_text(checked.problems, org.where, uses))
    layer = _Layer(org, checked.data, text)
    await _check_templates([layer], forge, template_sets, uses, repo.installation_id)
    return layer, org_floor(checked.config, checked.data, org)


def org_floor(config: RepoConfig, data: Mapping[str, Any], org: ConfigFile) -> Floor:
    """The least a repository's files may ask for under the org file `config`."""
    whose = f"the organization's file {org.where}"
    permissions = {
        verb: (config.permissions[verb], whose)  # type: ignore[index]
        if verb in config.permissions
        else (level, DEFAULT)
        for verb, level in DEFAULT_PERMISSIONS.items()
    }
    reviewers = data.get("reviewers")
    sets_reviewers = isinstance(reviewers, Mapping) and "min_permission" in reviewers
    protection = data.get("branch_protection")
    return Floor(
        permissions,
        approval_required=tuple(config.approval_required) if "approval_required" in data else (),
        tools=tuple(config.tools) if config.tools is not None else None,
        reviewer_permission=config.reviewers.min_permission if sets_reviewers else None,
        apply_requirements=tuple(config.apply_requirements) if "apply_requirements" in data else (),
        branch_protection={
            key: getattr(config.branch_protection, key)
            for key in protection
            if key in type(config.branch_protection).model_fields
        }
        if isinstance(protection, Mapping)
        else None,
        owner=whose,
    )


async def _repository_chain(
    reader: _Reader,
    repo: RepoRef,
    registry: ToolRegistry | None,
    floor: Floor,
    uses: str,
) -> list[_Layer]:
    """The repository's file and the files its `_extends` names, base first; [] when the
    repository has no file."""
    file = ConfigFile("repository", repo.full_name, CONFIG_PATH)
    text = await reader.read(repo, CONFIG_PATH)
    if text is None:
        return []
    chain: list[_Layer] = []
    seen = {(repo.full_name.lower(), CONFIG_PATH)}
    while True:
        shown = CONFIG_PATH if file.kind == "repository" else file.where
        subject = (
            uses if file.kind == "repository" else f"{uses} (this repository's file extends it)"
        )
        checked = check_config_text(text, registry, floor, may_extend=True)
        if checked.problems:
            raise _LayerError(error_text(checked.problems, shown, subject))
        chain.append(_Layer(file, checked.data, text))
        if checked.extends is None:
            return chain[::-1]
        target, problem = parse_extends(checked.extends, repo)
        if problem is None and target is not None:
            key = (target.repo.lower(), target.path)
            if key == (f"{repo.owner}/{ORG_REPO}".lower(), CONFIG_PATH):
                return chain[::-1]  # the org file: the base of every repository already
            if key in seen:
                problem = f"{target.where} is already in the chain; a file may be extended once"
            elif len(chain) > MAX_EXTENDS:
                problem = f"the chain of `_extends` is longer than {MAX_EXTENDS} files"
        if problem is None and target is not None:
            seen.add((target.repo.lower(), target.path))
            owner, _, name = target.repo.partition("/")
            text = await reader.read(RepoRef(owner, name, repo.installation_id), target.path)
            if text is None:
                problem = (
                    f"{target.where} cannot be read: it does not exist, or the repository is "
                    "not one the App is installed on"
                )
            else:
                file = target
                continue
        line = line_of(yaml.compose(chain[-1].text, Loader=yaml.SafeLoader), (EXTENDS_KEY,))
        message = f"{code_span(f'{EXTENDS_KEY}: {show_value(checked.extends)}')}: {problem}"
        raise _LayerError(
            error_text([f"line {line}: {message}" if line else message], shown, subject)
        )


def parse_extends(value: Any, repo: RepoRef) -> tuple[ConfigFile | None, str | None]:
    """`_extends` as the file it names, or the sentence saying why it names none."""
    forms = "`.github`, `other-repo`, `owner/other-repo` or `other-repo:path/file.yml`"
    if not isinstance(value, str) or len(value) > 320:
        return None, f"must be a repository name such as {forms}"
    match = _EXTENDS_RE.fullmatch(value.strip())
    if match is None:
        return None, f"is not one of the forms {forms}"
    owner, name, path = match.group(1) or repo.owner, match.group(2), match.group(3)
    if owner.lower() != repo.owner.lower():
        return None, (
            f"names a repository of {owner}; only repositories of {repo.owner} may be "
            f"extended, since {repo.owner}'s policy comes from {repo.owner}/{ORG_REPO}"
        )
    try:
        validate_path(path or CONFIG_PATH)
    except ForgeError:
        return None, "the path must be relative, without '..' or empty parts"
    return ConfigFile("extends", f"{repo.owner}/{name}", path or CONFIG_PATH), None


async def _check_templates(
    layers: list[_Layer],
    forge: Forge,
    template_sets: TemplateSetCatalog | None,
    uses: str,
    installation_id: int | None,
) -> None:
    """The merged `templates:` choice against the operator's sets; the file that made it
    is named when it cannot be used."""
    if template_sets is None:
        return
    data, origins = merge_layers(layers)
    choice = RepoConfig.model_validate(data).templates
    problem = await template_sets.check_choice(forge, choice.set, choice.version, installation_id)
    if problem is None:
        return
    key, sentence = problem
    culprit = origins.get(f"templates.{key}") or origins.get("templates.set")
    layer = next((item for item in layers if item.file == culprit), layers[-1])
    # The sentence may quote a set's files: a code span keeps it inert.
    message = f"{code_span(f'templates.{key}')}: {code_span(sentence[:600])}"
    line = line_of(yaml.compose(layer.text, Loader=yaml.SafeLoader), ("templates", key))
    shown = CONFIG_PATH if layer.file.kind == "repository" else layer.file.where
    raise _LayerError(error_text([f"line {line}: {message}" if line else message], shown, uses))


def merge_layers(layers: list[_Layer]) -> tuple[dict[str, Any], dict[str, ConfigFile]]:
    """The layers' mappings merged (a mapping key by key, a list or value whole), and the
    file that set each dotted key."""
    merged: dict[str, Any] = {}
    origins: dict[str, ConfigFile] = {}
    for layer in layers:
        _merge_into(merged, layer.data, layer.file, origins, "")
    return merged, origins


def _merge_into(
    target: dict[str, Any],
    data: Mapping[str, Any],
    file: ConfigFile,
    origins: dict[str, ConfigFile],
    prefix: str,
) -> None:
    for key, value in data.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping):
            inner = target.get(key)
            if not isinstance(inner, dict):
                inner = target[key] = {}
            _merge_into(inner, value, file, origins, path + ".")
        else:
            target[key] = value
            origins[path] = file
