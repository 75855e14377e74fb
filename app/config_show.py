"""`idp-copilot config show OWNER/REPO`: the settings in force for a repository, merged from
the built-in defaults, the org's `.github` file, the files `_extends` names and the
repository's own file, each value with the file it came from (app/config_layers.py).

It reads what a job reads, through the same Forge, without the cache: an operator asking
sees the files as they are now.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import redis

from app.config import Settings
from app.config_layers import BUILTIN, RepoConfigResult, load_repo_config
from app.github.forge import Forge, RepoRef
from app.repo_config import DEFAULT_PERMISSIONS, required_permission


def settings_rows(result: RepoConfigResult) -> list[tuple[str, Any, str]]:
    """(dotted key, value, where it came from) for every setting, permissions of every
    command included (the ones no file names are the built-in defaults)."""
    rows: list[tuple[str, Any, str]] = []
    for key, value in result.config.model_dump(mode="json").items():
        if key == "permissions":
            for verb in DEFAULT_PERMISSIONS:
                dotted = f"permissions.{verb}"
                level = required_permission(result.config, verb)
                rows.append((dotted, level, result.origin(dotted)))
        elif isinstance(value, dict):
            rows += [(f"{key}.{k}", v, result.origin(f"{key}.{k}")) for k, v in value.items()]
        else:
            rows.append((key, value, result.origin(key)))
    return rows


def render_text(full_name: str, result: RepoConfigResult) -> str:
    """The settings as YAML-like lines, each with a comment naming where it came from."""
    order = " < ".join([BUILTIN + "s", *(file.label for file in result.files)])
    lines = [f"# Settings in force for {full_name}", f"# merged: {order}"]
    rows = settings_rows(result)
    shown = [(key, _value(value), origin) for key, value, origin in rows]
    width = max(len(key) + len(value) + 2 for key, value, _ in shown)
    for key, value, origin in shown:
        lines.append(f"{f'{key}: {value}':<{width}}  # {origin}")
    return "\n".join(lines) + "\n"


def render_json(full_name: str, result: RepoConfigResult) -> str:
    return json.dumps(
        {
            "repository": full_name,
            "files": [{"kind": f.kind, "repository": f.repo, "path": f.path} for f in result.files],
            "settings": {
                key: {"value": value, "from": origin}
                for key, value, origin in settings_rows(result)
            },
            "error": result.error,
        },
        indent=2,
    )


def _value(value: Any) -> str:
    return (
        value if isinstance(value, str) and value.strip() == value and value else json.dumps(value)
    )


def run_config_show(
    settings: Settings,
    connection: redis.Redis,
    full_name: str,
    *,
    installation_id: int | None = None,
    as_json: bool = False,
) -> int:
    """Print the settings in force; 1 when a file was left out (its error on stderr)."""
    from app.init_repo import on_repository
    from tools.registry import default_registry
    from tools.template_sets.sources import TemplateSetCatalog

    async def load(forge: Forge, repo: RepoRef) -> RepoConfigResult:
        catalog = TemplateSetCatalog.from_settings(settings)
        return await load_repo_config(forge, repo, default_registry(settings), catalog)

    repo, result = on_repository(settings, connection, full_name, installation_id, load)
    print(render_json(repo.full_name, result) if as_json else render_text(repo.full_name, result))
    if result.error:
        print(result.error, file=sys.stderr)
        return 1
    return 0
