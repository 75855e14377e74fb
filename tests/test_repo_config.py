"""`.github/idp-copilot.yml`: defaults, validation, and the error comment a bad file gets."""

from __future__ import annotations

import asyncio

import pytest

from app.config_layers import load_repo_config
from app.github.forge import RepoRef
from app.grammar.commands import VERBS
from app.repo_config import (
    CONFIG_PATH,
    DEFAULT_APPROVAL_REQUIRED,
    DEFAULT_PERMISSIONS,
    MAX_CONFIG_BYTES,
    RepoConfig,
    render_example_config,
    required_permission,
)
from tools.registry import default_registry

REPO = RepoRef("acme", "payments", 42)


class FakeForge:
    """Serves files of REPO's default branch from a dict (other repositories' from
    `others`: full name → files) and records what was read."""

    def __init__(
        self, files: dict[str, str] | None = None, others: dict[str, dict[str, str]] | None = None
    ) -> None:
        self.files = files or {}
        self.others = others or {}
        self.reads: list[tuple[str, str, str | None]] = []

    async def read_file(self, repo: RepoRef, path: str, ref: str | None = None) -> str | None:
        self.reads.append((repo.full_name, path, ref))
        if repo.full_name == REPO.full_name:
            return self.files.get(path)
        return self.others.get(repo.full_name, {}).get(path)


def load(text: str | None, registry=None):
    forge = FakeForge({} if text is None else {CONFIG_PATH: text})
    return asyncio.run(load_repo_config(forge, REPO, registry))


def test_missing_file_means_defaults_and_no_error():
    result = load(None)

    assert result.error is None
    assert result.found is False
    assert result.config == RepoConfig()
    assert result.config.manifests_dir("payments") == "services/payments"
    assert result.config.approval_required == list(DEFAULT_APPROVAL_REQUIRED)
    assert result.config.labels == ["idp-copilot"]


def test_config_is_read_from_the_default_branch():
    forge = FakeForge()

    asyncio.run(load_repo_config(forge, REPO))

    assert forge.reads == [
        ("acme/.github", ".github/idp-copilot.yml", None),
        ("acme/payments", ".github/idp-copilot.yml", None),
    ]


def test_example_config_validates_against_the_installed_tools():
    result = load(render_example_config(), default_registry())

    assert result.error is None
    assert result.found is True
    assert required_permission(result.config, "deploy") == "admin"
    assert result.config.defaults.language == "python"


def test_file_values_override_the_defaults():
    text = """
manifests_path: deploy/{name}/k8s
defaults: {language: go, team: payments, type: worker}
approval_required: [deploy_to_staging]
tools: [search_knowledge_base_for_guidelines]
staging: {context: kind-staging}
auto_deploy_on_merge: true
labels: [platform, needs-review]
draft_pull_requests: true
reviewers: {min_permission: maintain}
"""
    config = load(text).config

    assert config.manifests_dir("ledger") == "deploy/ledger/k8s"
    assert (config.defaults.language, config.defaults.team, config.defaults.type) == (
        "go",
        "payments",
        "worker",
    )
    assert config.approval_required == ["deploy_to_staging"]
    assert config.tools == ["search_knowledge_base_for_guidelines"]
    assert config.staging.context == "kind-staging"  # used only if the operator allows it
    assert config.auto_deploy_on_merge and config.draft_pull_requests
    assert config.labels == ["platform", "needs-review"]
    assert config.reviewers.min_permission == "maintain"


def test_bad_permission_names_the_key_its_line_and_the_choices():
    result = load("labels: [idp-copilot]\npermissions:\n  apply: owner\n")

    assert result.found is True
    assert (
        "line 3: `permissions.apply: 'owner' is not one of read, triage, write, maintain, admin`"
        in result.error
    )
    assert "default settings" in result.error
    assert required_permission(result.config, "apply") == "maintain"


def test_misspelt_keys_are_caught_with_a_suggestion():
    result = load("approval_requried: []\nstaging:\n  contxt: prod\n")

    assert "line 1: `approval_requried: not a known key`; did you mean `approval_required`?" in (
        result.error
    )
    assert "line 3: `staging.contxt: not a known key`; did you mean `context`?" in result.error
    assert result.config == RepoConfig()


def test_unknown_command_in_permissions_suggests_the_command():
    result = load("permissions:\n  aply: admin\n")

    assert "line 2: `permissions.aply: not a command`; did you mean `apply`?" in result.error


def test_invalid_yaml_names_the_line():
    result = load("labels: [a]\ndefaults:\n  team: x\n    language: go\n")

    assert "not valid YAML (line 4" in result.error
    assert result.config == RepoConfig()


def test_a_file_that_is_not_a_mapping_says_what_it_should_be():
    result = load("- apply\n- deploy\n")

    assert "must be a mapping" in result.error
    assert "not a list" in result.error


def test_comment_only_file_means_defaults():
    result = load("# nothing configured yet\n")

    assert result.error is None
    assert result.config == RepoConfig()


def test_an_oversized_file_is_refused():
    result = load("labels: [a]\n" + "#" * MAX_CONFIG_BYTES)

    assert "larger than 64 KiB" in result.error


@pytest.mark.parametrize(
    ("path", "rule"),
    [
        ("../{name}", "relative folder without '..'"),
        ("/srv/{name}", "relative folder"),
        ("services", "must contain {name}"),
        ("services/{team}/{name}", "no placeholder but {name}"),
    ],
)
def test_manifests_path_must_be_a_relative_template_with_name(path, rule):
    result = load(f"manifests_path: '{path}'\n")

    assert "line 1: `manifests_path: " in result.error
    assert rule in result.error
    assert result.config.manifests_dir("pay") == "services/pay"


def test_commands_can_be_made_stricter_but_not_looser():
    stricter = load("permissions:\n  deploy: admin\n  ask: write\n")
    looser = load("permissions:\n  plan: admin\n  apply: write\n")

    assert stricter.error is None
    assert required_permission(stricter.config, "deploy") == "admin"
    assert required_permission(stricter.config, "ask") == "write"
    assert "line 3: `permissions.apply: 'write' is below the default maintain`" in looser.error
    assert required_permission(looser.config, "apply") == "maintain"
    assert required_permission(looser.config, "plan") == "write"


@pytest.mark.parametrize(
    ("verb", "level"),
    [
        ("create-service", "write"),
        ("plan", "write"),
        ("retry", "write"),
        ("cancel", "write"),
        ("answer", "write"),
        ("set", "write"),
        ("apply", "maintain"),
        ("deploy", "maintain"),
        ("help", "read"),
        ("status", "read"),
        ("ask", "read"),
        ("feedback", "read"),
    ],
)
def test_default_permissions(verb, level):
    assert required_permission(None, verb) == level
    assert required_permission(RepoConfig(), verb) == level


def test_every_command_has_a_default_permission_and_unknown_ones_need_admin():
    assert set(DEFAULT_PERMISSIONS) == set(VERBS)
    assert required_permission(RepoConfig(), "format-disk") == "admin"


def test_unknown_tool_names_are_caught_when_the_tools_are_known():
    registry = default_registry()
    typo = load("tools:\n  - deploy_to_stagin\n", registry)
    alias = load("tools: [deploy_staging]\napproval_required: [create_repository]\n", registry)

    assert "line 2: `tools[0]: 'deploy_to_stagin'` is not a known tool" in typo.error
    assert "did you mean `deploy_to_staging`?" in typo.error
    assert alias.error is None
    assert alias.config.tools == ["deploy_staging"]


def test_values_from_the_file_cannot_mention_people_or_break_the_comment():
    result = load("defaults:\n  language: '@acme/everyone `rm -rf`'\n")

    assert "`defaults.language: '@acme/everyone 'rm -rf'' is not a language name" in result.error
    # every code span is closed: an even number of backticks on each line
    assert all(line.count("`") % 2 == 0 for line in result.error.splitlines())


def test_bad_team_name_suggests_a_valid_one():
    result = load("defaults:\n  team: Payments Team\n")

    assert "line 2: `defaults.team:" in result.error
    assert "try 'payments-team'" in result.error


def test_a_staging_namespace_prefix_in_the_file_names_the_operators_setting():
    """The namespace is the operator's now (IDP_STAGING_*): the key is refused by name."""
    result = load("staging:\n  namespace_prefix: team-a-\n")

    assert "line 2: `staging.namespace_prefix: no longer a key`" in result.error
    assert "IDP_STAGING_NAMESPACE_PREFIX" in result.error
