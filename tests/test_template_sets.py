"""Template sets: the built-in one renders what the App rendered before sets existed, a
second set with a new language is picked by a repository's config and passes the
validators, and a set that is broken is refused with one sentence and renders nothing."""

from __future__ import annotations

import asyncio
import hashlib
import json
import shutil
from pathlib import Path

import pytest
import yaml

from app.config_layers import load_repo_config
from app.domain.service import ServiceRequest
from app.github.forge import RepoRef
from app.repo_config import CONFIG_PATH, parse_repo_config
from tests.fakes import FakeForge
from tools.render import (
    TEMPLATE_SET_ANNOTATION,
    TEMPLATE_VERSION_ANNOTATION,
    all_combinations,
    render_service,
)
from tools.render_all import main
from tools.template_sets import MANIFEST_NAME, TemplateSetError, load_dir, load_files
from tools.template_sets.check import check_set
from tools.template_sets.sources import TemplateSetCatalog, parse_sources
from tools.templates import builtin_set
from tools.validate import validate_files

ROOT = Path(__file__).resolve().parents[1]
ACME = ROOT / "examples" / "template-sets" / "acme"
# sha256 of every file main's renderer wrote for the 12 built-in combinations, computed
# before templates became data (commit 5dd996b).
GOLDEN = json.loads((ROOT / "tests" / "fixtures" / "builtin_render_sha256.json").read_text())
REPO = RepoRef("acme", "payments")


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def set_files(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): p.read_text() for p in folder.rglob("*") if p.is_file()}


def acme_copy(tmp_path: Path) -> Path:
    target = tmp_path / "acme"
    shutil.copytree(ACME, target)
    return target


def request_json(req: ServiceRequest) -> str:
    values = {"language": req.language} | ({"type": req.type} if req.type != "api" else {})
    return json.dumps(values, separators=(",", ":"))


def no_check(_tset: object) -> None:
    """Catalog tests that are about reading and caching skip the (slow) validators."""


# -- the built-in set ----------------------------------------------------------------------


@pytest.mark.parametrize("req", all_combinations(), ids=lambda r: f"{r.language}-{r.type}")
def test_builtin_set_renders_byte_identical_files_to_the_renderer_before_sets(req):
    files = render_service(req)
    golden = GOLDEN[f"{req.language}-{req.type}"]

    assert sorted(files) == sorted(golden)
    for path, text in files.items():
        if path.endswith("catalog-info.yaml"):
            # The only change: the three annotations upkeep reads, and nothing else.
            lines = text.splitlines(keepends=True)
            added = [line for line in lines if "idp-copilot.dev/" in line]
            assert added == [
                "    idp-copilot.dev/template-set: builtin\n",
                "    idp-copilot.dev/template-version: 1.0.0\n",
                f"    idp-copilot.dev/request: '{request_json(req)}'\n",
            ]
            text = "".join(line for line in lines if line not in added)
        assert sha(text) == golden[path], path


def test_the_builtin_set_is_described_by_its_manifest():
    tset = builtin_set()

    assert (tset.name, tset.version) == ("builtin", "1.0.0")
    assert len(tset.combinations()) == 12
    assert tset.profile("java", "web").slow_start is True
    assert tset.manifest.release_notes["1.0.0"]


def test_catalog_info_records_the_template_set_and_version():
    tset = load_dir(ACME)
    files = render_service(ServiceRequest(name="ledger", language="rust"), template_set=tset)

    catalog = yaml.safe_load(files["services/ledger/catalog-info.yaml"])
    annotations = catalog["metadata"]["annotations"]
    assert annotations[TEMPLATE_SET_ANNOTATION] == "acme"
    assert annotations[TEMPLATE_VERSION_ANNOTATION] == "1.1.0"
    assert catalog["metadata"]["tags"] == ["rust", "api"]


# -- a second set, chosen by config --------------------------------------------------------


def acme_forge() -> FakeForge:
    """The service repository's config plus the acme set at main (1.1.0) and at v1.0.0."""
    files = {f"sets/acme/{path}": text for path, text in set_files(ACME).items()}
    old = dict(files)
    manifest = yaml.safe_load(files[f"sets/acme/{MANIFEST_NAME}"])
    manifest["version"] = "1.0.0"
    manifest["release_notes"].pop("1.1.0")
    old[f"sets/acme/{MANIFEST_NAME}"] = yaml.safe_dump(manifest)
    forge = FakeForge(base_files=files)
    forge.branches["v1.0.0"] = old
    return forge


def test_a_repository_picks_a_second_set_with_a_new_language_that_passes_the_validators():
    forge = acme_forge()
    forge.base_files[CONFIG_PATH] = "templates:\n  set: acme\n  version: '1.0.0'\n"
    catalog = TemplateSetCatalog(parse_sources("acme=acme/idp-templates/sets/acme@main"))

    result = asyncio.run(load_repo_config(forge, REPO, template_sets=catalog))
    assert result.error is None
    choice = result.config.templates
    tset = asyncio.run(catalog.load(forge, choice.set, choice.version))
    files = render_service(ServiceRequest(name="ledger", language="rust"), template_set=tset)

    assert tset.version == "1.0.0"
    assert "services/ledger/Cargo.toml" in files
    assert "services/ledger/src/main.rs" in files
    assert "FROM rust:1.82.0-slim-bookworm AS build" in files["services/ledger/Dockerfile"]
    workflow = yaml.safe_load(files[".github/workflows/ledger.yml"])
    lint = workflow["jobs"]["lint"]["steps"]
    assert [step.get("uses", "").split("@")[0] for step in lint][:1] == ["actions/checkout"]
    assert lint[-1]["run"] == "cargo fmt --check\ncargo clippy --locked -- -D warnings\n"
    report = validate_files(files)
    assert report.ok, report.failure_summary()


def test_the_example_set_passes_every_validator():
    check_set(load_dir(ACME))


def test_a_language_the_chosen_set_lacks_is_named_with_what_it_has():
    with pytest.raises(ValueError, match="has no template for go api; it has rust api"):
        render_service(ServiceRequest(name="ledger", language="go"), template_set=load_dir(ACME))
    with pytest.raises(ValueError, match="builtin 1.0.0 has no template for rust api"):
        render_service(ServiceRequest(name="ledger", language="rust"))


def test_request_parameters_are_checked_against_the_combination_schema_by_field():
    tset = load_dir(ACME)
    req = ServiceRequest(name="ledger", language="rust", port=9100, memory_limit="1Gi")

    with pytest.raises(ValueError) as caught:
        render_service(req, template_set=tset)
    message = str(caught.value)
    assert "parameter `memory_limit`: '1Gi' is not one of ['64Mi', '128Mi', '256Mi']" in message
    assert "parameter `port`: 9100 is greater than the maximum of 8999" in message


@pytest.mark.parametrize(
    ("config", "line", "expected"),
    [
        ("templates:\n  set: nope\n", 2, "`templates.set`: `nope is not a template set of this"),
        (
            "templates:\n  set: acme\n  version: '3.0.0'\n",
            3,
            "`3.0.0 is not a version of the set acme; it has 1.0.0, 1.1.0`",
        ),
        ("templates:\n  version: '2.0.0'\n", 2, "`2.0.0 is not a version of the set builtin"),
    ],
)
def test_an_unknown_set_or_version_is_the_one_config_error(config, line, expected):
    forge = acme_forge()
    forge.base_files[CONFIG_PATH] = config
    catalog = TemplateSetCatalog(parse_sources("acme=acme/idp-templates/sets/acme@main"), no_check)

    result = asyncio.run(load_repo_config(forge, REPO, template_sets=catalog))

    assert result.error is not None
    assert f"line {line}: " in result.error
    assert expected in result.error
    assert result.config.templates.set == "builtin"  # the defaults until it is fixed


def test_the_templates_key_is_checked_by_shape_without_the_operator_list():
    config, error = parse_repo_config("templates:\n  set: Acme Corp\n  version: 2.1\n")

    assert config is None
    assert "`templates.set: 'Acme Corp' is not a template set name" in error
    assert "`templates.version: " in error  # 2.1 is a float, not "2.1.0"


def test_a_set_is_read_once_per_source_and_ref():
    forge = acme_forge()
    catalog = TemplateSetCatalog(parse_sources("acme=acme/idp-templates/sets/acme@main"), no_check)

    first = asyncio.run(catalog.load(forge, "acme"))
    reads = forge.count("read_file")
    again = asyncio.run(catalog.load(forge, "acme"))
    pinned = asyncio.run(catalog.load(forge, "acme", "1.0.0"))

    assert again is first
    assert reads == len(first.manifest.template_paths()) + 1  # each file once, the manifest too
    assert forge.count("read_file") == 2 * reads  # v1.0.0 read once more, nothing else
    assert pinned.version == "1.0.0" and first.version == "1.1.0"
    assert {c[1]["ref"] for c in forge.calls if c[0] == "read_file"} == {"main", "v1.0.0"}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("acme=acme/templates", "is not name=owner/repo[/folder]@ref"),
        ("builtin=acme/templates@v1", "names the set builtin twice"),
        ("a=o/r@v1,a=o/s@v2", "names the set a twice"),
    ],
)
def test_operator_sources_are_parsed_with_the_expected_shape(value, expected):
    with pytest.raises(TemplateSetError, match=expected.replace("[", r"\[")):
        parse_sources(value)


# -- refused sets --------------------------------------------------------------------------


def test_a_set_with_an_invalid_schema_is_refused_with_one_sentence(tmp_path):
    folder = acme_copy(tmp_path)
    (folder / "rust" / "schema.json").write_text('{"type": "objekt"}')

    with pytest.raises(TemplateSetError) as caught:
        load_dir(folder)

    assert str(caught.value) == (
        "template set acme 1.1.0: rust/schema.json is not a valid JSON Schema (draft 2020-12) "
        "at type: 'objekt' is not valid under any of the given schemas"
    )


def test_a_schema_with_regular_expressions_is_refused(tmp_path):
    folder = acme_copy(tmp_path)
    (folder / "rust" / "schema.json").write_text(
        '{"properties": {"description": {"pattern": "^(a+)+$"}}}'
    )

    with pytest.raises(TemplateSetError, match="uses `pattern`"):
        load_dir(folder)


def test_a_template_that_renders_an_invalid_manifest_refuses_the_whole_set(tmp_path):
    folder = acme_copy(tmp_path)
    manifest = yaml.safe_load((folder / MANIFEST_NAME).read_text())
    manifest["combinations"][0]["sources"]["deploy/configmap.yaml"] = "rust/configmap.yaml.j2"
    (folder / MANIFEST_NAME).write_text(yaml.safe_dump(manifest))
    (folder / "rust" / "configmap.yaml.j2").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [[ name ]]\n"
        "data:\n  port: [[ port ]]\n"
    )
    tset = load_dir(folder)

    with pytest.raises(TemplateSetError) as caught:
        check_set(tset)

    message = str(caught.value)
    assert message.startswith("template set acme 1.1.0 is refused: a service it renders fails")
    assert "rust api: services/acme-rust-api/deploy/configmap.yaml: kubernetes:" in message
    assert "ConfigMap acme-rust-api: data.port" in message


def test_a_set_that_fails_the_validators_is_refused_by_the_catalog_and_the_config(tmp_path):
    forge = acme_forge()
    forge.base_files["sets/acme/common/dockerignore.j2"] = "[[ no_such_value ]]\n"
    forge.base_files[CONFIG_PATH] = "templates:\n  set: acme\n"
    catalog = TemplateSetCatalog(parse_sources("acme=acme/idp-templates/sets/acme@main"))

    result = asyncio.run(load_repo_config(forge, REPO, template_sets=catalog))

    assert "line 2: `templates.set`: `template set acme 1.1.0 is refused: rust api" in result.error
    assert "'no_such_value' is undefined" in result.error
    with pytest.raises(TemplateSetError, match="is refused"):  # and cached as refused
        asyncio.run(catalog.load(forge, "acme"))


def test_a_template_failing_midway_renders_nothing(tmp_path):
    folder = acme_copy(tmp_path)
    (folder / "common" / "runbook.md.j2").write_text("# [[ name ]]\n[[ undefined_thing ]]\n")
    tset = load_dir(folder)

    with pytest.raises(TemplateSetError, match="common/runbook.md.j2 failed to render"):
        render_service(ServiceRequest(name="ledger", language="rust"), template_set=tset)


def test_templates_run_in_a_sandbox():
    files = set_files(ACME)
    files["common/dockerignore.j2"] = "[[ profile.__class__.__init__.__globals__ ]]\n"
    tset = load_files(files, "test")

    with pytest.raises(TemplateSetError, match="common/dockerignore.j2 failed to render.*unsafe"):
        render_service(ServiceRequest(name="ledger", language="rust"), template_set=tset)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"version": "two"}, "template-set.yaml version: String should match pattern"),
        ({"release_notes": {"1.0.0": "x"}}, "release_notes has no entry for the version 1.1.0"),
        (
            {"release_notes": {"1.1.0": "now", "1.10.0": "later"}},
            "release_notes has 1.10.0, newer than the set's version 1.1.0",
        ),
        ({"release_notes": {"1.1.0": "  "}}, "release_notes 1.1.0 must say what changed"),
        (
            {"profile": {"setup_action": "evil/setup@main"}},
            "action 'evil/setup@main' is not one the App pins",
        ),
        ({"sources": {"k8s/base/deployment.yaml": "rust/main.rs.j2"}}, "a file the App writes"),
        ({"sources": {"../escape.rs": "rust/main.rs.j2"}}, "is not a plain relative path"),
        ({"sources": {"src/main.rs": "rust/missing.j2"}}, "rust/missing.j2 named in the manifest"),
    ],
)
def test_a_broken_manifest_is_refused_with_what_to_fix(tmp_path, change, expected):
    folder = acme_copy(tmp_path)
    manifest = yaml.safe_load((folder / MANIFEST_NAME).read_text())
    combo = manifest["combinations"][0]
    for key, value in change.items():
        if key in ("profile", "sources"):
            combo[key].update(value)
        else:
            manifest[key] = value
    (folder / MANIFEST_NAME).write_text(yaml.safe_dump(manifest))

    with pytest.raises(TemplateSetError, match=expected.replace("(", r"\(")) as caught:
        check_set(load_dir(folder))
    assert "\n" not in str(caught.value)


def test_check_generated_renders_every_set_and_refuses_a_broken_one(tmp_path, capsys):
    broken = acme_copy(tmp_path)
    (broken / "rust" / "schema.json").write_text("[]")

    assert main(["--all", str(tmp_path / "ok"), "--set", str(ACME)]) == 0
    assert (tmp_path / "ok/services/acme-rust-api/src/main.rs").is_file()
    assert (tmp_path / "ok/services/java-web/pom.xml").is_file()
    assert main(["--all", str(tmp_path / "out"), "--set", str(broken)]) == 1
    assert "rust/schema.json must be a JSON Schema object" in capsys.readouterr().err


# -- the generating tools ------------------------------------------------------------------


def test_the_generating_tools_render_with_the_set_the_config_names():
    from app.config import Settings
    from tools.builtin.generate import TOOLS
    from tools.registry import ToolRegistry
    from tools.spec import ToolContext

    settings = Settings(template_sets="acme=acme/idp-templates/sets/acme@main")
    ctx = ToolContext(settings=settings, forge=acme_forge(), repo=REPO)
    args = {"name": "ledger", "language": "rust", "template_set": "acme"}
    registry = ToolRegistry(TOOLS)

    result = asyncio.run(registry.call("apply_template", args, ctx))
    unknown = asyncio.run(registry.call("apply_template", {**args, "template_set": "zeta"}, ctx))

    assert result.ok, result.error
    assert "services/ledger/src/main.rs" in result.output["files"]
    assert not unknown.ok
    assert "set 'zeta' is not a template set of this App; it has builtin, acme" in unknown.error


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("9 ** 9 ** 9", "not allowed"),
        ("'x' * 10 ** 9", "not allowed"),
        ("1 / 0", "ZeroDivisionError"),
    ],
)
def test_template_arithmetic_is_bounded_and_its_errors_are_sentences(expression, expected):
    files = set_files(ACME)
    files["common/dockerignore.j2"] = f"[[ {expression} ]]\n"
    tset = load_files(files, "test")

    with pytest.raises(TemplateSetError, match=f"dockerignore.j2 failed to render.*{expected}"):
        render_service(ServiceRequest(name="ledger", language="rust"), template_set=tset)
