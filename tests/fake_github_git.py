"""Git data on `FakeGitHub`: blobs, trees, commits and branch refs, content reads, and the
check GitHub makes when a ref update brings a workflow file.

GitHub's pages: https://docs.github.com/en/rest/git/refs (create and update a reference),
https://docs.github.com/en/rest/git/trees, https://docs.github.com/en/rest/git/commits and
https://docs.github.com/en/rest/repos/contents#get-repository-content.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from typing import TYPE_CHECKING, Any

import httpx

from tests import github_rules as rules
from tests.github_api import Where, blob, blob_sha, content_file, git_commit, git_ref, git_tree
from tests.github_rules import write


class FakeGitData:
    """The repository's git objects and branches (mixed into `FakeGitHub`)."""

    at: Where
    default_branch: str
    trees: dict[str, dict[str, tuple[str, str]]]
    blobs: dict[str, str]
    commits: dict[str, dict[str, Any]]
    refs: dict[str, str]
    repo_files: dict[str, dict[str, str]]
    repo_git: dict[str, Any]
    _ids: itertools.count

    if TYPE_CHECKING:

        def _grants(self, request: httpx.Request) -> dict[str, str]: ...
        def _ok(self, data: Any, status: int = 200, headers: dict | None = None) -> Any: ...
        def _fail(self, message: str = "Not Found", status: int = 404) -> Any: ...

    def push(self, branch: str, files: dict[str, str], message: str) -> str:
        """A commit made outside the App (a human's push); returns its sha."""
        parent = self.refs.get(branch) or self.refs.get(self.default_branch)
        entries = dict(self.trees[self.commits[parent]["tree"]]) if parent else {}
        entries |= {path: ("100644", self._blob(text)) for path, text in files.items()}
        self.refs[branch] = self._commit(self._tree(entries), [parent] if parent else [], message)
        return self.refs[branch]

    def files(self, branch: str) -> dict[str, str]:
        tree = self.trees[self.commits[self.refs[branch]]["tree"]]
        return {path: self.blobs[sha] for path, (_, sha) in tree.items()}

    # -- git objects ------------------------------------------------------------------------

    def _blob(self, text: str) -> str:
        self.blobs[blob_sha(text)] = text
        return blob_sha(text)

    def _tree(self, entries: dict[str, tuple[str, str]]) -> str:
        sha = hashlib.sha1(json.dumps(sorted(entries.items())).encode()).hexdigest()  # noqa: S324
        self.trees[sha] = entries
        return sha

    def _commit(self, tree: str, parents: list[str], message: str) -> str:
        seed = json.dumps([tree, parents, message, next(self._ids)]).encode()
        sha = hashlib.sha1(seed).hexdigest()  # noqa: S324
        self.commits[sha] = {"tree": tree, "parents": parents, "message": message}
        return sha

    def _ancestors(self, sha: str) -> set[str]:
        seen, todo = set(), [sha]
        while todo:
            if (current := todo.pop()) not in seen:
                seen.add(current)
                todo += self.commits[current]["parents"]
        return seen

    def _new_commits(self, sha: str) -> list[str]:
        """The commits a ref moved to `sha` brings that no branch holds yet."""
        known: set[str] = set()
        for head in self.refs.values():
            known |= self._ancestors(head)
        return [c for c in self._ancestors(sha) if c not in known]

    def _workflow_refusal(self, request: httpx.Request, sha: str) -> httpx.Response | None:
        """GitHub's 422 when the commits a ref update brings add, change or delete a file
        under .github/workflows/ and the token lacks `workflows: write`."""
        if rules.allows(self._grants(request), write("workflows")):
            return None
        diffs = []
        for c in self._new_commits(sha):
            parents = self.commits[c]["parents"]
            old = self.trees[self.commits[parents[0]]["tree"]] if parents else {}
            diffs.append(rules.changed_paths(old, self.trees[self.commits[c]["tree"]]))
        path = rules.touched_workflow(diffs)
        return rules.workflow_refused(path) if path else None

    def _contents(self, request: httpx.Request, body: Any, path: str) -> httpx.Response:
        ref = request.url.params.get("ref", self.default_branch)
        sha = self.refs.get(ref, ref)
        if sha not in self.commits:
            return self._fail(f"No commit found for the ref {ref}")
        entry = self.trees[self.commits[sha]["tree"]].get(path)
        if entry is None:
            return self._fail()
        return self._ok(content_file(path, self.blobs[entry[1]], ref=ref, at=self.at))

    def _other_contents(
        self, request: httpx.Request, body: Any, owner: str, name: str, path: str
    ) -> httpx.Response:
        """GET /repos/{owner}/{repo}/contents/{path} of another repository (an org's
        `.github`, a file `_extends` names) from `repo_files`. A repository the installation
        does not include answers 404, as one that does not exist: GitHub does not tell them
        apart (https://docs.github.com/rest/repos/contents#get-repository-content)."""
        files = self.repo_files.get(f"{owner}/{name}")
        created = self.repo_git.get(f"{owner}/{name}")
        if files is None and created is not None:  # a repository created with a README
            return created._contents(request, body, path=path)
        if files is None or path not in files:
            return self._fail()
        at = Where(api=self.at.api, owner=owner, name=name)
        return self._ok(content_file(path, files[path], at=at))

    def _get_ref(self, request: httpx.Request, body: Any, branch: str) -> httpx.Response:
        if branch not in self.refs:
            return self._fail()
        return self._ok(git_ref(branch, self.refs[branch], at=self.at))

    def _commit_body(self, sha: str) -> dict:
        c = self.commits[sha]
        return git_commit(sha, c["tree"], c["parents"], c["message"], at=self.at)

    def _get_commit(self, request: httpx.Request, body: Any, sha: str) -> httpx.Response:
        return self._ok(self._commit_body(sha)) if sha in self.commits else self._fail()

    def _get_tree(self, request: httpx.Request, body: Any, sha: str) -> httpx.Response:
        """A tree by sha, or a branch's ("the SHA1 value or ref (branch or tag) name of the
        tree"); the fake's trees are flat, so every listing is the recursive one."""
        if sha in self.refs:
            sha = self.commits[self.refs[sha]]["tree"]
        if sha not in self.trees:
            return self._fail()
        return self._ok(git_tree(sha, self.trees[sha], at=self.at))

    def _get_blob(self, request: httpx.Request, body: Any, sha: str) -> httpx.Response:
        if sha not in self.blobs:
            return self._fail()
        return self._ok(blob(sha, self.blobs[sha], at=self.at))

    def _create_tree(self, request: httpx.Request, body: Any) -> httpx.Response:
        entries = dict(self.trees[body["base_tree"]]) if "base_tree" in body else {}
        for item in body["tree"]:
            if "content" in item:
                entries[item["path"]] = (item["mode"], self._blob(item["content"]))
            elif item.get("sha") is None:
                entries.pop(item["path"], None)
            else:
                entries[item["path"]] = (item["mode"], item["sha"])
        return self._ok(git_tree(self._tree(entries), entries, at=self.at), 201)

    def _create_commit(self, request: httpx.Request, body: Any) -> httpx.Response:
        sha = self._commit(body["tree"], body.get("parents", []), body["message"])
        return self._ok(self._commit_body(sha), 201)

    def _update_ref(self, request: httpx.Request, body: Any, branch: str) -> httpx.Response:
        if branch not in self.refs:
            return self._fail("Reference does not exist", 422)
        if not body.get("force") and self.refs[branch] not in self._ancestors(body["sha"]):
            return self._fail("Update is not a fast forward", 422)
        if (refused := self._workflow_refusal(request, body["sha"])) is not None:
            return refused
        self.refs[branch] = body["sha"]
        return self._ok(git_ref(branch, body["sha"], at=self.at))

    def _create_ref(self, request: httpx.Request, body: Any) -> httpx.Response:
        branch = body["ref"].removeprefix("refs/heads/")
        if branch in self.refs:
            return self._fail("Reference already exists", 422)
        if (refused := self._workflow_refusal(request, body["sha"])) is not None:
            return refused
        self.refs[branch] = body["sha"]
        return self._ok(git_ref(branch, body["sha"], at=self.at), 201)
