"""Repository administration on the local forge, for `LocalForge`: repositories it creates
(empty with a README, or from a local template repository) and branch protection, recorded
under `settings/` and `protection/` as GitHub's API spells them."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from app.github.errors import ForgeError
from app.github.forge import RepoInfo, RepoRef, template_ref, validate_branch, validate_repo_name
from app.github.local_files import LocalFiles
from app.github.local_git import NO_REF as _NO_REF
from app.github.local_git import git as _git
from app.github.local_git import has_branch as _has_branch
from app.github.local_git import json_file as _json_file
from app.github.local_git import locked as _locked
from app.github.protection import BranchRules, branch_protection


class LocalRepositories(LocalFiles):
    """`create_repository` and `protect_branch` of the Forge protocol (mixed into
    `LocalForge`)."""

    def repository_settings(self, repo: RepoRef) -> dict[str, Any] | None:
        """What `create_repository` was asked for (private, description, template), or None
        for a repository it did not create."""
        path = self._area("settings", repo).with_suffix(".json")
        return json.loads(path.read_text()) if path.exists() else None

    async def get_branch_protection(self, repo: RepoRef, branch: str) -> BranchRules | None:
        validate_branch(branch)
        found = await asyncio.to_thread(self.protection, repo)
        return BranchRules.from_github(found[branch]) if branch in found else None

    def protection(self, repo: RepoRef) -> dict[str, dict[str, Any]]:
        """Branch → the protection `protect_branch` recorded, as GitHub's API spells it."""
        path = self._area("protection", repo).with_suffix(".json")
        return json.loads(path.read_text()) if path.exists() else {}

    async def create_repository(
        self,
        owner: str,
        name: str,
        *,
        private: bool = True,
        description: str = "",
        template: str | None = None,
    ) -> RepoInfo:
        """A new local repository with a README on `main`, or with the files of the local
        template repository's `main` in one fresh commit; an existing one is returned."""
        repo = validate_repo_name(owner, name)
        source = template_ref(template)
        return await asyncio.to_thread(self._create_repo, repo, private, description, source)

    def _create_repo(
        self, repo: RepoRef, private: bool, description: str, source: RepoRef | None
    ) -> RepoInfo:
        with _locked(self._area("settings", repo).with_suffix(".lock")):
            created = not (self.repo_path(repo) / ".git").is_dir()
            if created and source is not None:
                self._generate(repo, source)
            cwd = self._ensure_repo(repo)
            if created:
                wanted = {"private": private, "description": description}
                wanted["template"] = source.full_name if source else None
                with _json_file(self._area("settings", repo).with_suffix(".json"), {}) as data:
                    data.update(wanted)
                self.writes["create_repository"] += 1
        recorded = self.repository_settings(repo) or {}
        private = bool(recorded.get("private", True))
        return RepoInfo(repo.owner, repo.name, cwd.as_uri(), "main", private, created)

    def _generate(self, repo: RepoRef, source: RepoRef) -> None:
        """Like GitHub's generate: the template's files in one new commit, not its history."""
        template = self.repo_path(source)
        if not (template / ".git").is_dir() or not _has_branch(template, "main"):
            raise ForgeError(
                f"There is no template repository {source.full_name} in {self.root / 'repos'}: "
                "create it there (a git repository with a main branch), or leave template empty."
            )
        path = self.repo_path(repo)
        path.mkdir(parents=True, exist_ok=True)
        with self._init_lock:
            _git(path, "init", "-q", "-b", "main")
            _git(path, "fetch", "-q", "--no-tags", str(template), "refs/heads/main")
            tree = _git(path, "rev-parse", "FETCH_HEAD^{tree}")
            message = f"Initial commit from template {source.full_name}"
            sha = _git(path, "commit-tree", tree, "--no-gpg-sign", "-m", message)
            _git(path, "update-ref", "refs/heads/main", sha, _NO_REF)

    async def protect_branch(
        self,
        repo: RepoRef,
        branch: str,
        *,
        required_reviews: int = 1,
        required_checks: list[str] = (),  # type: ignore[assignment]
        enforce_admins: bool = True,
        rules: BranchRules | None = None,
    ) -> None:
        validate_branch(branch)
        body = (
            rules.body()
            if rules is not None
            else branch_protection(required_reviews, list(required_checks), enforce_admins)
        )

        def record() -> None:
            cwd = self._ensure_repo(repo)
            if not _has_branch(cwd, branch):
                raise ForgeError(f"Branch {branch} does not exist in {cwd}: push it first.")
            with _json_file(self._area("protection", repo).with_suffix(".json"), {}) as rules_of:
                rules_of[branch] = body
            self.writes["protect_branch"] += 1

        await asyncio.to_thread(record)
