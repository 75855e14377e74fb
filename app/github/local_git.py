"""Git plumbing and locked JSON files for `LocalForge`: git runs without a shell, a fixed
identity and no user or system config; files shared by the web and worker processes are
read-modified-written under a file lock."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from app.github.errors import ForgeError

# Fixed identity and no user or system git config: works on a machine with no git setup,
# and a global `commit.gpgsign` or hook path cannot get in the way.
GIT_ENV = {
    "GIT_AUTHOR_NAME": "IDP Copilot",
    "GIT_AUTHOR_EMAIL": "idp-copilot@localhost",
    "GIT_COMMITTER_NAME": "IDP Copilot",
    "GIT_COMMITTER_EMAIL": "idp-copilot@localhost",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_TERMINAL_PROMPT": "0",
}
NO_REF = "0" * 40  # update-ref's "must not exist yet"


def git(
    cwd: Path,
    *args: str,
    stdin: str | None = None,
    env: dict[str, str] | None = None,
    check: bool = True,
    strip: bool = True,
) -> Any:
    """Run git (never through a shell); its output, or None when `check` is off and git
    fails. A failure with `check` on is a ForgeError naming the command and git's reason."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    result = subprocess.run(
        ["git", *args],
        cwd=cwd,
        input=stdin.encode() if stdin is not None else None,
        capture_output=True,
        env={**inherited, **GIT_ENV, **(env or {})},
        check=False,
    )
    if result.returncode != 0:
        if not check:
            return None
        reason = result.stderr.decode(errors="replace").strip().splitlines() or ["no output"]
        raise ForgeError(f"git {args[0]} failed in {cwd}: {reason[-1]}")
    out = result.stdout.decode("utf-8", errors="replace")
    return out.strip() if strip else out


def has_branch(cwd: Path, branch: str) -> bool:
    return git(cwd, "rev-parse", "--verify", "-q", f"refs/heads/{branch}", check=False) is not None


@contextmanager
def locked(lock_path: Path) -> Iterator[None]:
    """An exclusive lock between threads and processes (the web and worker processes may
    share one LocalForge root)."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


@contextmanager
def json_file(path: Path, default: Any) -> Iterator[Any]:
    """Read-modify-write of a JSON file under its lock; written atomically on success."""
    with locked(path.with_name(path.name + ".lock")):
        data = json.loads(path.read_text()) if path.exists() else default
        yield data
        scratch = path.with_name(path.name + ".tmp")
        scratch.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
        os.replace(scratch, path)
