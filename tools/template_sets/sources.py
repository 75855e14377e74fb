"""The operator's template sets (IDP_TEMPLATE_SETS), read through the Forge and cached.

`name=owner/repo[/folder]@ref`: the set's current version is the one at `ref`; version X of
it is read at the tag `vX`, so a repository pinning "2.1.0" gets what the tag v2.1.0 holds.
A set read from a repository is checked once (every combination rendered and validated)
before any service uses it; the result, good or refused, is cached per (source, ref) for the
life of the process. Name tags or commit SHAs as refs: a branch is read once per process.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING

from tools.template_sets.loader import (
    MAX_FILES,
    TemplateSet,
    TemplateSetError,
    load_files,
    parse_manifest,
)
from tools.template_sets.manifest import MANIFEST_NAME, SET_NAME_RE, VERSION_RE
from tools.templates import BUILTIN_SET, builtin_set

if TYPE_CHECKING:
    from app.config import Settings
    from app.github.forge import Forge

_SOURCE_RE = re.compile(
    r"^(?P<name>[a-z][a-z0-9-]{0,39})=(?P<owner>[A-Za-z0-9][A-Za-z0-9-]{0,38})/"
    r"(?P<repo>[A-Za-z0-9._-]{1,100})(?P<folder>(/[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}){0,5})"
    r"@(?P<ref>[A-Za-z0-9][A-Za-z0-9._/-]{0,99})$"
)


@dataclass(frozen=True)
class SetSource:
    """Where the operator keeps one template set."""

    name: str
    owner: str
    repo: str
    folder: str  # '' for the repository root
    ref: str

    def path(self, rel: str) -> str:
        return f"{self.folder}/{rel}" if self.folder else rel

    def where(self, ref: str) -> str:
        folder = f"/{self.folder}" if self.folder else ""
        return f"{self.owner}/{self.repo}{folder}@{ref}"


def parse_sources(text: str) -> dict[str, SetSource]:
    """IDP_TEMPLATE_SETS as name → source; a bad entry raises with the expected shape."""
    sources: dict[str, SetSource] = {}
    for entry in (part.strip() for part in text.split(",")):
        if not entry:
            continue
        match = _SOURCE_RE.match(entry)
        if match is None:
            raise TemplateSetError(
                f"IDP_TEMPLATE_SETS entry {entry[:120]!r} is not name=owner/repo[/folder]@ref, "
                "e.g. acme=acme/idp-templates@v2.1.0"
            )
        if match["name"] == BUILTIN_SET or match["name"] in sources:
            raise TemplateSetError(f"IDP_TEMPLATE_SETS names the set {match['name']} twice")
        sources[match["name"]] = SetSource(
            match["name"], match["owner"], match["repo"], match["folder"].strip("/"), match["ref"]
        )
    return sources


def _default_check(tset: TemplateSet) -> None:
    from tools.template_sets.check import check_set

    check_set(tset)


@dataclass
class TemplateSetCatalog:
    """The sets a repository may pick: `builtin` plus the operator's sources."""

    sources: dict[str, SetSource]
    check: Callable[[TemplateSet], None] = _default_check
    _cache: dict[tuple[str, str], TemplateSet | TemplateSetError] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: Settings) -> TemplateSetCatalog:
        return catalog_for(settings.template_sets)

    @property
    def names(self) -> list[str]:
        return [BUILTIN_SET, *self.sources]

    async def load(
        self,
        forge: Forge | None,
        name: str,
        version: str | None = None,
        installation_id: int | None = None,
    ) -> TemplateSet:
        """Set `name` at `version` (None: its current one), read, compiled and checked.
        `installation_id`: the installation whose token reads the set's repository (the
        asking repository's: the set's must be one that installation can read)."""
        if name == BUILTIN_SET:
            tset = builtin_set()
            if version not in (None, tset.version):
                raise TemplateSetError(
                    f"version {version} of the template set builtin is not available; "
                    f"the App has {tset.version}"
                )
            return tset
        source = self.sources.get(name)
        if source is None:
            raise TemplateSetError(
                f"set {name!r} is not a template set of this App; it has {', '.join(self.names)}"
            )
        if version is not None and not VERSION_RE.fullmatch(version):
            raise TemplateSetError(f"version {version!r} is not a version such as 2.1.0")
        if forge is None:
            raise TemplateSetError(f"the template set {name} is read from GitHub, not here")
        ref = source.ref if version is None else f"v{version}"
        key = (source.where(ref), ref)
        cached = self._cache.get(key)
        if cached is None:
            try:
                cached = await self._read(forge, source, ref, version, installation_id)
            except TemplateSetError as exc:
                cached = exc
            self._cache[key] = cached
        if isinstance(cached, TemplateSetError):
            raise cached
        return cached

    async def _read(
        self,
        forge: Forge,
        source: SetSource,
        ref: str,
        version: str | None,
        installation_id: int | None = None,
    ) -> TemplateSet:
        from app.github.forge import ForgeError, RepoRef

        repo = RepoRef(source.owner, source.repo, installation_id)
        where = source.where(ref)
        try:
            text = await forge.read_file(repo, source.path(MANIFEST_NAME), ref)
            if text is None:
                what = f"version {version} of " if version else ""
                raise TemplateSetError(
                    f"{what}the template set {source.name} is not available: "
                    f"{where} has no {MANIFEST_NAME}"
                )
            manifest = parse_manifest(text, where)
            files = {MANIFEST_NAME: text}
            paths = sorted(manifest.template_paths())
            if len(paths) > MAX_FILES:  # before reading them, not after
                raise TemplateSetError(f"{where}: the manifest names more than {MAX_FILES} files")
            for rel in paths:
                content = await forge.read_file(repo, source.path(rel), ref)
                if content is not None:
                    files[rel] = content
        except ForgeError as exc:
            raise TemplateSetError(
                f"the template set at {where} could not be read: {exc}"
            ) from None
        tset = load_files(files, where)
        if tset.name != source.name:
            raise TemplateSetError(
                f"{where} holds the template set {tset.name}, not {source.name}; "
                "fix IDP_TEMPLATE_SETS or the manifest's name"
            )
        if version is not None and tset.version != version:
            raise TemplateSetError(
                f"version {version} of the template set {source.name} is not available: "
                f"the tag v{version} holds {tset.version}"
            )
        # Rendering and validating every combination runs the zizmor subprocess: off the loop.
        await asyncio.to_thread(self.check, tset)
        return tset

    async def check_choice(
        self,
        forge: Forge | None,
        name: str,
        version: str | None,
        installation_id: int | None = None,
    ) -> tuple[str, str] | None:
        """(key, plain sentence) for a `templates:` choice that cannot be used, or None."""
        if name != BUILTIN_SET and name not in self.sources:
            return "set", (
                f"{name} is not a template set of this App; choose one of {', '.join(self.names)}"
            )
        try:
            current = await self.load(forge, name, installation_id=installation_id)
        except TemplateSetError as exc:
            return "set", str(exc)
        if version is None:
            return None
        if version not in current.manifest.release_notes:
            known = ", ".join(current.manifest.release_notes)
            return "version", f"{version} is not a version of the set {name}; it has {known}"
        try:
            await self.load(forge, name, version, installation_id)
        except TemplateSetError as exc:
            return "version", str(exc)
        return None


@cache
def catalog_for(template_sets: str) -> TemplateSetCatalog:
    """One catalog (and so one cache) per configuration string, for the process."""
    return TemplateSetCatalog(parse_sources(template_sets))


__all__ = ["SET_NAME_RE", "SetSource", "TemplateSetCatalog", "catalog_for", "parse_sources"]
