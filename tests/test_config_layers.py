"""Org defaults: the org's `.github` file under every repository's settings, `_extends`
chains, the floor no file may go below, where each value came from, and the cache of other
repositories' files."""

from __future__ import annotations

import asyncio

import pytest

from app.config_layers import (
    MAX_EXTENDS,
    OTHER_FILE_TTL,
    RedisFileCache,
    load_repo_config,
    parse_extends,
)
from app.github.forge import RepoRef
from app.repo_config import CONFIG_PATH, DEFAULT_APPROVAL_REQUIRED, required_permission
from tools.registry import default_registry

REPO = RepoRef("acme", "payments", 42)
ORG = "acme/.github"
ORG_WHERE = f"{ORG}:{CONFIG_PATH}"


class Files:
    """Default-branch files of several repositories (full name → path → text); records reads."""

    def __init__(self, repos: dict[str, dict[str, str]]) -> None:
        self.repos = repos
        self.reads: list[str] = []

    async def read_file(self, repo: RepoRef, path: str, ref: str | None = None) -> str | None:
        assert ref is None  # settings come from default branches
        self.reads.append(f"{repo.full_name}:{path}")
        return self.repos.get(repo.full_name, {}).get(path)


def load(org: str | None = None, repo: str | None = None, others=None, at=REPO, **kw):
    repos = {name: {CONFIG_PATH: text} for name, text in (others or {}).items()}
    if org is not None:
        repos[ORG] = {CONFIG_PATH: org}
    if repo is not None:
        repos[REPO.full_name] = {CONFIG_PATH: repo}
    forge = Files(repos)
    return asyncio.run(load_repo_config(forge, at, **kw)), forge


# -- merging and provenance ------------------------------------------------------------------


def test_the_org_file_is_the_default_of_a_repository_without_a_file():
    result, _ = load(org="defaults:\n  language: go\npermissions:\n  deploy: admin\n")

    assert result.error is None and result.found
    assert result.config.defaults.language == "go"
    assert required_permission(result.config, "deploy") == "admin"
    assert result.origin("defaults.language") == f"org .github file {ORG_WHERE}"
    assert result.origin("permissions.deploy") == f"org .github file {ORG_WHERE}"
    assert result.origin("defaults.team") == "built-in default"
    assert [f.kind for f in result.files] == ["org"]


def test_a_repository_file_extends_the_org_file_and_overrides_a_key_by_key():
    org = "defaults:\n  language: go\n  team: payments\nlabels: [org-label]\n"
    repo = "_extends: .github\ndefaults:\n  language: rust\npermissions:\n  apply: admin\n"

    result, forge = load(org=org, repo=repo)

    assert result.error is None
    config = result.config
    # mappings merge key by key; the repository's file wins where both say
    assert (config.defaults.language, config.defaults.team) == ("rust", "payments")
    assert config.labels == ["org-label"]
    assert required_permission(config, "apply") == "admin"
    repo_file = f"repository file acme/payments:{CONFIG_PATH}"
    assert result.origin("defaults.language") == repo_file
    assert result.origin("defaults.team") == f"org .github file {ORG_WHERE}"
    assert result.origin("permissions.apply") == repo_file
    assert result.origin("manifests_path") == "built-in default"
    assert forge.reads.count(f"{ORG}:{CONFIG_PATH}") == 1  # `_extends: .github` reads nothing more


def test_a_repository_file_without_extends_still_sits_on_the_org_file():
    org = "permissions:\n  deploy: admin\napproval_required: [deploy_to_staging]\n"

    result, _ = load(org=org, repo="labels: [mine]\n")

    assert result.error is None
    assert required_permission(result.config, "deploy") == "admin"
    assert result.config.approval_required == ["deploy_to_staging"]
    assert result.config.labels == ["mine"]


def test_the_org_repository_itself_reads_its_file_once_as_the_org_file():
    result, forge = load(org="labels: [org]\n", at=RepoRef("acme", ".github", 42))

    assert result.config.labels == ["org"] and result.error is None
    assert forge.reads == [f"{ORG}:{CONFIG_PATH}"]
    assert result.origin("labels") == f"org .github file {ORG_WHERE}"


def test_an_extended_repository_sits_between_the_org_file_and_the_repository_file():
    others = {"acme/policies": "_extends: .github\nlabels: [policy]\ndraft_pull_requests: true\n"}
    org = "labels: [org]\nauto_deploy_on_merge: true\ndraft_pull_requests: false\n"

    result, forge = load(org=org, repo="_extends: policies\nlabels: [mine]\n", others=others)

    assert result.error is None
    assert result.config.labels == ["mine"]
    assert result.config.draft_pull_requests is True
    assert result.config.auto_deploy_on_merge is True
    assert result.origin("draft_pull_requests") == f"extended file acme/policies:{CONFIG_PATH}"
    assert [f.kind for f in result.files] == ["org", "extends", "repository"]


def test_extends_with_a_path_reads_that_file():
    forge_files = {"acme/policies": {"idp/strict.yml": "permissions:\n  apply: admin\n"}}
    forge = Files(
        {**forge_files, REPO.full_name: {CONFIG_PATH: "_extends: policies:idp/strict.yml\n"}}
    )

    result = asyncio.run(load_repo_config(forge, REPO))

    assert result.error is None
    assert required_permission(result.config, "apply") == "admin"
    assert "acme/policies:idp/strict.yml" in forge.reads


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (".github", ("acme/.github", CONFIG_PATH)),
        ("policies", ("acme/policies", CONFIG_PATH)),
        ("ACME/policies", ("acme/policies", CONFIG_PATH)),
        ("policies:.github/other.yaml", ("acme/policies", ".github/other.yaml")),
    ],
)
def test_the_extends_forms_of_probot(value, expected):
    file, problem = parse_extends(value, REPO)

    assert problem is None and file is not None
    assert (file.repo.lower(), file.path) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("other-org/policies", "only repositories of acme may be extended"),
        ("policies:../../etc/passwd.yml", "relative, without '..'"),
        ("policies:file.txt", "is not one of the forms"),
        (["policies"], "must be a repository name"),
    ],
)
def test_bad_extends_values_are_refused_with_the_forms(value, expected):
    file, problem = parse_extends(value, REPO)

    assert file is None and expected in problem


# -- the floor -------------------------------------------------------------------------------


def test_a_stricter_permission_in_the_repository_file_is_kept():
    result, _ = load(org="permissions:\n  apply: admin\n", repo="permissions:\n  set: maintain\n")

    assert result.error is None
    assert required_permission(result.config, "apply") == "admin"
    assert required_permission(result.config, "set") == "maintain"


def test_a_repository_file_cannot_lower_a_permission_the_org_file_raised():
    org = "permissions:\n  apply: admin\n"
    repo = "_extends: .github\nlabels: [mine]\npermissions:\n  apply: maintain\n"

    result, _ = load(org=org, repo=repo)

    # The repository's file is left out as a whole; the org's settings stay in force.
    assert required_permission(result.config, "apply") == "admin"
    assert result.config.labels == ["idp-copilot"]
    assert result.error.startswith(
        f"`{CONFIG_PATH}` is not valid, so this repository uses the organization's settings "
        f"(`{ORG_WHERE}`) until it is fixed"
    )
    assert (
        f"line 4: `permissions.apply: 'maintain' is below admin, which the organization's file "
        f"{ORG_WHERE} sets`. A file may only make a command stricter: use admin or above"
    ) in result.error


def test_an_org_file_cannot_go_below_the_built_in_defaults():
    result, _ = load(org="permissions:\n  deploy: write\n", repo="labels: [mine]\n")

    assert required_permission(result.config, "deploy") == "maintain"
    assert result.config.labels == ["mine"]  # the repository's file still applies
    assert result.error.startswith(f"`{ORG_WHERE}` is not valid, so the repositories of acme")
    assert "`permissions.deploy: 'write' is below the default maintain`" in result.error


def test_a_repository_file_cannot_drop_a_tool_the_org_requires_approval_for():
    org = "approval_required: [deploy_to_staging, create_repository]\n"

    result, _ = load(org=org, repo="approval_required: [create_repository, create_k8s_namespace]\n")

    assert result.config.approval_required == ["deploy_to_staging", "create_repository"]
    assert "`approval_required: leaves out deploy_to_staging`" in result.error
    assert f"which the organization's file {ORG_WHERE} requires approval for" in result.error


def test_without_an_org_list_a_repository_chooses_its_approvals_as_before():
    result, _ = load(org="labels: [org]\n", repo="approval_required: [create_repository]\n")

    assert result.error is None
    assert result.config.approval_required == ["create_repository"]
    assert list(DEFAULT_APPROVAL_REQUIRED) != ["create_repository"]


def test_a_repository_file_may_narrow_the_org_tools_but_not_widen_them():
    registry = default_registry()
    org = "tools: [validate_project_name_and_type, generate_k8s_manifests]\n"

    narrower, _ = load(org=org, repo="tools: [generate_k8s_manifests]\n", registry=registry)
    wider, _ = load(org=org, repo="tools: [generate_documentation]\n", registry=registry)
    everything, _ = load(org=org, repo="tools: null\n", registry=registry)

    assert narrower.error is None and narrower.config.tools == ["generate_k8s_manifests"]
    assert "is not among the tools the organization's file" in wider.error
    assert "`tools: all tools` widens the list" in everything.error
    assert everything.config.tools == ["validate_project_name_and_type", "generate_k8s_manifests"]


def test_a_repository_file_cannot_lower_the_reviewers_permission_the_org_sets():
    result, _ = load(
        org="reviewers:\n  min_permission: maintain\n", repo="reviewers:\n  min_permission: write\n"
    )

    assert result.config.reviewers.min_permission == "maintain"
    assert "`reviewers.min_permission: 'write' is below maintain`" in result.error


def test_a_repository_file_cannot_drop_an_apply_requirement_the_org_lists():
    org = "apply_requirements: [approved, mergeable]\n"

    more, _ = load(org=org, repo="apply_requirements: [approved, mergeable, checks]\n")
    fewer, _ = load(org=org, repo="apply_requirements: [mergeable]\n")

    assert more.error is None and more.config.apply_requirements == [
        "approved",
        "mergeable",
        "checks",
    ]
    assert fewer.config.apply_requirements == ["approved", "mergeable"]
    assert "`apply_requirements: leaves out approved`" in fewer.error


def test_a_repository_file_may_only_make_the_org_branch_protection_stricter():
    org = "branch_protection:\n  required_reviews: 2\n  required_checks: [Build]\n"

    stricter, _ = load(
        org=org,
        repo="branch_protection:\n  required_reviews: 3\n  required_checks: [Build, Test]\n"
        "  enforce_admins: true\n",
    )
    weaker, _ = load(
        org=org, repo="branch_protection:\n  required_reviews: 1\n  required_checks: [Test]\n"
    )
    admins, _ = load(
        org="branch_protection:\n  enforce_admins: true\n",
        repo="branch_protection:\n  enforce_admins: false\n",
    )

    assert stricter.error is None
    assert stricter.config.branch_protection.required_reviews == 3
    assert weaker.config.branch_protection.required_reviews == 2  # the org's holds
    assert weaker.config.branch_protection.required_checks == ["Build"]
    assert "`branch_protection.required_reviews: 1` is weaker than 2" in weaker.error
    assert "`branch_protection.required_checks: leaves out Build`, which the org" in weaker.error
    assert admins.config.branch_protection.enforce_admins is True
    assert "`branch_protection.enforce_admins: false` is weaker than true" in admins.error


def test_an_extended_file_is_held_to_the_org_floor_too():
    others = {"acme/policies": "permissions:\n  deploy: write\n"}

    result, _ = load(org="labels: [org]\n", repo="_extends: policies\n", others=others)

    assert required_permission(result.config, "deploy") == "maintain"
    assert result.error.startswith(f"`acme/policies:{CONFIG_PATH}` is not valid")
    assert "(this repository's file extends it)" in result.error


# -- bounds and bad files --------------------------------------------------------------------


def test_an_extends_loop_is_refused_and_read_once_per_file():
    others = {"acme/a": "_extends: b\n", "acme/b": "_extends: a\n"}

    result, forge = load(repo="_extends: a\nlabels: [mine]\n", others=others)

    assert result.config.labels == ["idp-copilot"]
    assert f"acme/a:{CONFIG_PATH} is already in the chain" in result.error
    assert forge.reads.count(f"acme/a:{CONFIG_PATH}") == 1


def test_an_extends_chain_longer_than_the_bound_is_refused():
    names = [f"p{i}" for i in range(MAX_EXTENDS + 2)]
    others = {f"acme/{a}": f"_extends: {b}\n" for a, b in zip(names, names[1:], strict=False)}
    others[f"acme/{names[-1]}"] = "labels: [deep]\n"

    result, forge = load(repo=f"_extends: {names[0]}\n", others=others)

    assert f"the chain of `_extends` is longer than {MAX_EXTENDS} files" in result.error
    assert len(forge.reads) <= MAX_EXTENDS + 3  # org file, repository file, the bounded chain
    assert result.config.labels == ["idp-copilot"]


def test_extends_naming_a_repository_without_the_file_is_an_error():
    result, _ = load(repo="_extends: nowhere\n")

    assert "line 1: `_extends: 'nowhere'`: acme/nowhere:.github/idp-copilot.yml cannot be read" in (
        result.error
    )


def test_the_org_file_extends_nothing():
    result, _ = load(org="_extends: policies\nlabels: [org]\n")

    assert result.config.labels == ["idp-copilot"]
    assert f"`{ORG_WHERE}` is not valid" in result.error
    assert "the organization's file is the base of every repository's settings" in result.error


def test_an_invalid_org_file_and_an_invalid_repository_file_are_both_named():
    result, _ = load(org="labels: 3\n", repo="defaults:\n  langauge: go\n")

    org_error, repo_error = result.error.split("Fix it on the default branch")[:2]
    assert f"`{ORG_WHERE}` is not valid" in org_error and "`labels:" in org_error
    assert f"`{CONFIG_PATH}` is not valid" in repo_error
    assert "defaults.langauge" in repo_error and "did you mean `language`?" in repo_error


# -- the cache -------------------------------------------------------------------------------


def test_other_repositories_files_are_cached_briefly_and_the_repository_file_never(
    settings, redis_conn
):
    cache = RedisFileCache(redis_conn, settings)
    forge = Files({ORG: {CONFIG_PATH: "labels: [org]\n"}, REPO.full_name: {}})

    for _ in range(3):
        result = asyncio.run(load_repo_config(forge, REPO, cache=cache))
        assert result.config.labels == ["org"]
    forge.repos[ORG][CONFIG_PATH] = "labels: [changed]\n"
    cached = asyncio.run(load_repo_config(forge, REPO, cache=cache))

    assert forge.reads.count(f"{ORG}:{CONFIG_PATH}") == 1
    assert forge.reads.count(f"{REPO.full_name}:{CONFIG_PATH}") == 4
    assert cached.config.labels == ["org"]  # until the entry expires
    (key,) = redis_conn.keys(settings.key("config-file", "*"))
    assert 0 < redis_conn.ttl(key) <= OTHER_FILE_TTL


def test_a_missing_org_file_is_cached_too_and_per_installation(settings, redis_conn):
    cache = RedisFileCache(redis_conn, settings)
    forge = Files({})

    asyncio.run(load_repo_config(forge, REPO, cache=cache))
    asyncio.run(load_repo_config(forge, REPO, cache=cache))
    asyncio.run(load_repo_config(forge, RepoRef("acme", "payments", 43), cache=cache))

    assert forge.reads.count(f"{ORG}:{CONFIG_PATH}") == 2
