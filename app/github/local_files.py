"""`LocalFiles`: where `LocalForge` keeps each repository's git checkout and its issue-side
records (comments, pulls, checks, reviews), shared by the parts the forge is built from."""

from __future__ import annotations

import re
import threading
from collections import Counter
from pathlib import Path

from app.github.errors import ForgeError
from app.github.forge import RepoRef
from app.github.local_git import git as _git
from app.github.permissions import APP_PERMISSIONS, REPO_CREATION

# GitHub's repository names, `.github` (an org's defaults) included; "." and ".." are not.
_NAME = re.compile(r"^[A-Za-z0-9._-]{1,100}$")


class LocalFiles:
    """Folders under `root`; `permissions` maps usernames to roles (default "admin": the
    local user owns the local repository); `granted` is what the App's installation grants
    (default: every permission the App asks for)."""

    def __init__(
        self,
        root: Path,
        *,
        permissions: dict[str, str] | None = None,
        granted: dict[str, str] | None = None,
    ) -> None:
        self.root = Path(root).resolve()  # PR links are file:// URIs: absolute
        self._permissions = {k.lower(): v for k, v in (permissions or {}).items()}
        self.granted = dict(APP_PERMISSIONS | REPO_CREATION if granted is None else granted)
        self._init_lock = threading.Lock()
        self.writes: Counter[str] = Counter()

    def repo_path(self, repo: RepoRef) -> Path:
        return self.root / "repos" / _safe(repo.owner) / _safe(repo.name)

    def _area(self, kind: str, repo: RepoRef) -> Path:
        return self.root / kind / _safe(repo.owner) / _safe(repo.name)

    def _ensure_repo(self, repo: RepoRef) -> Path:
        """The repository, created on first use with a README on `main`."""
        path = self.repo_path(repo)
        with self._init_lock:
            if not (path / ".git").is_dir():
                path.mkdir(parents=True, exist_ok=True)
                _git(path, "init", "-q", "-b", "main")
            if _git(path, "rev-parse", "--verify", "-q", "refs/heads/main", check=False) is None:
                (path / "README.md").write_text(
                    f"# {repo.name}\n\nA local stand-in for {repo.full_name}, written by "
                    "idp-copilot's LocalForge.\n"
                )
                _git(path, "add", "README.md")
                _git(path, "commit", "-q", "--no-verify", "--no-gpg-sign", "-m", "Initial commit")
        return path


def _safe(part: str) -> str:
    """An owner or repository name fit to be one folder name."""
    if not _NAME.fullmatch(part) or part in (".", ".."):
        raise ForgeError(f"{part[:60]!r} is not a valid GitHub owner or repository name.")
    return part
