"""The schema of `.github/idp-copilot.yml` and the checks of one such file.

Job handlers load the settings in force once per job (app/config_layers.py
`load_repo_config`: the org's `.github` file under the repository's) and read from the
`RepoConfig` who may run which command, which tools wait for approval, where manifests go
and how pull requests look. A missing file means the defaults; an invalid file is left out,
with an `error` sentence for a comment that names each bad key, its line and the fix.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from app.config_floor import DEFAULT, Floor, Problem, floor_problems
from app.config_yaml import load_bounded
from app.domain.ci import MAX_FIX_ATTEMPTS
from app.domain.service import (
    LANGUAGE_RE,
    TEAM_RULE,
    ServiceType,
    checked_name,
)
from app.github.forge import ForgeError, validate_path
from app.github.protection_settings import BranchProtectionSettings
from app.grammar.commands import Verb
from app.repo_config_errors import CONFIG_PATH as CONFIG_PATH
from app.repo_config_errors import (
    code_span,
    dotted_path,
    error_text,
    expected_options,
    kind_of,
    line_of,
    show_value,
)
from app.repo_config_example import EXAMPLE_CONFIG as EXAMPLE_CONFIG
from app.repo_config_example import render_example_config as render_example_config
from app.text.suggest import did_you_mean
from app.untrusted import scrub
from tools.template_sets.manifest import SET_NAME_RE, VERSION_RE
from tools.templates import BUILTIN_SET

if TYPE_CHECKING:
    from tools.registry import ToolRegistry

MAX_CONFIG_BYTES = 64 * 1024
# Problems named in one error comment; a file with hundreds names the first ones and counts
# the rest (each is located by a walk of the file, and a comment holds 65,536 characters).
MAX_PROBLEMS = 20
Level = Literal["read", "triage", "write", "maintain", "admin"]

# Who may run what (DESIGN.md "Who may run what"). The file may only make a command stricter:
# anyone who can push to the default branch can edit it, so lowering `apply` would let a
# writer approve their own deploys.
_WRITE_VERBS = (
    "create-service",
    "request",
    "plan",
    "retry",
    "cancel",
    "answer",
    "set",
    "upgrade",
)
DEFAULT_PERMISSIONS: dict[str, Level] = {
    **dict.fromkeys(("help", "status", "ask", "feedback"), "read"),
    **dict.fromkeys(_WRITE_VERBS, "write"),
    **dict.fromkeys(("apply", "deploy", "unlock"), "maintain"),
    # Asks for a repository in the organization; its creation still waits for `/idp apply`.
    "create-repo": "maintain",
    # Not a command: GitHub reports a merge, and merging already took write permission.
    "merged": "write",
    # Not a command: GitHub reports the App's pull request closed; closing took write.
    "closed": "write",
    # Not a command: a review steering the App's pull request; `reviewers.min_permission`
    # may ask for more.
    "review": "write",
    # Not a command: GitHub reports a failed workflow run on the App's pull request.
    "ci": "write",
    # Not a command: the scheduled upkeep sweep, which the operator's schedule starts.
    "sweep": "write",
}
BUILTIN_FLOOR = Floor({verb: (level, DEFAULT) for verb, level in DEFAULT_PERMISSIONS.items()})
# Probot's key for "these settings extend another file" (README "Organization defaults").
EXTENDS_KEY = "_extends"
DEFAULT_APPROVAL_REQUIRED: tuple[str, ...] = (
    "create_k8s_namespace",
    "deploy_to_staging",
    "create_repository",
    "create_git_repository_with_branch_protection",
)
# `/idp apply` (and `/idp deploy staging`) run only when the App's pull request meets these,
# as Atlantis's `apply_requirements`: `approved` (an approving review by someone who may
# apply), `mergeable` (GitHub says it can merge) and `checks` (the required checks green).
ApplyRequirement = Literal["approved", "mergeable", "checks"]
DEFAULT_APPLY_REQUIREMENTS: tuple[ApplyRequirement, ...] = ("mergeable",)
# Keys the file no longer has, with where the setting went: named instead of "not a known key".
_MOVED_KEYS = {
    ("staging", "namespace_prefix"): "the staging namespace is the operator's setting now "
    "(IDP_STAGING_NAMESPACE_PREFIX, IDP_STAGING_NAMESPACES); remove the key",
}


class _Strict(BaseModel):
    # extra="forbid": a misspelt key is reported instead of silently ignored.
    model_config = ConfigDict(extra="forbid")


class Defaults(_Strict):
    """Values a request gets when it does not say."""

    language: str | None = Field(None, description="None: the todo asks the requester")
    team: str = Field("platform", description="Owning team of new services")
    type: ServiceType = "api"

    @field_validator("language")
    @classmethod
    def _language(cls, value: str | None) -> str | None:
        # Which languages exist is the template set's to say; the file only needs a word.
        if value is not None and not LANGUAGE_RE.fullmatch(value):
            raise ValueError(
                f"{show_value(value)} is not a language name such as python, go, node or java "
                "(or one of the template set's)"
            )
        return value

    @field_validator("team")
    @classmethod
    def _team(cls, value: str) -> str:
        return checked_name(value, TEAM_RULE)


class StagingConfig(_Strict):
    """Which of the operator's staging clusters `/idp deploy staging` goes to. The namespace
    is not the repository's to choose: the operator's rule derives it (IDP_STAGING_*)."""

    context: str | None = Field(
        None,
        max_length=253,
        description="One of the operator's IDP_STAGING_CONTEXTS; None: the operator's default",
    )


class ReviewersConfig(_Strict):
    min_permission: Level = Field(
        "write", description="Permission a reviewer needs for the App to act on their review"
    )


class CiConfig(_Strict):
    """What the App does when CI fails on its pull request (README "CI on the App's pull
    requests"). The failure is always reported in the todo."""

    fix: bool = Field(True, description="With a language model: try a fix commit on the branch")
    max_attempts: int = Field(
        MAX_FIX_ATTEMPTS,
        ge=0,
        le=MAX_FIX_ATTEMPTS,
        description="Fix commits for one failing commit and the fixes after it (0 to 2)",
    )


class TemplatesConfig(_Strict):
    """Which template set renders this repository's services (README "Template sets")."""

    set: str = Field(
        BUILTIN_SET, description="`builtin` or a set the operator lists in IDP_TEMPLATE_SETS"
    )
    version: str | None = Field(None, description="A version of the set; None: its current one")

    @field_validator("set")
    @classmethod
    def _set(cls, value: str) -> str:
        if not SET_NAME_RE.fullmatch(value):
            raise ValueError(f"{show_value(value)} is not a template set name such as `builtin`")
        return value

    @field_validator("version")
    @classmethod
    def _version(cls, value: str | None) -> str | None:
        if value is not None and not VERSION_RE.fullmatch(value):
            raise ValueError(f'{show_value(value)} is not a version such as "2.1.0" (quote it)')
        return value


class RepoConfig(_Strict):
    """The validated `.github/idp-copilot.yml`; every key optional."""

    manifests_path: str = Field(
        "services/{name}", description="Folder of a service's generated files; {name} required"
    )
    defaults: Defaults = Field(default_factory=Defaults)
    permissions: dict[Verb, Level] = Field(
        default_factory=dict, description="Command -> permission, stricter than the defaults"
    )
    approval_required: list[str] = Field(
        default_factory=lambda: list(DEFAULT_APPROVAL_REQUIRED),
        description="Tools that wait for `/idp apply` (besides those that always do)",
    )
    tools: list[str] | None = Field(None, description="Only these tools; None: all of them")
    staging: StagingConfig = Field(default_factory=StagingConfig)
    auto_deploy_on_merge: bool = False
    apply_requirements: list[ApplyRequirement] = Field(
        default_factory=lambda: list(DEFAULT_APPLY_REQUIREMENTS),
        description="What the App's pull request must be before `/idp apply` runs anything "
        "(README 'Apply requirements')",
    )
    labels: list[str] = Field(default_factory=lambda: ["idp-copilot"])
    draft_pull_requests: bool = False
    agent_system: str = Field("default", pattern=r"^[a-z0-9][-a-z0-9_]{0,62}$")
    reviewers: ReviewersConfig = Field(default_factory=ReviewersConfig)
    templates: TemplatesConfig = Field(default_factory=TemplatesConfig)
    branch_protection: BranchProtectionSettings = Field(
        default_factory=BranchProtectionSettings,
        description="The least protection `/idp create-repo` gives a new repository's branch",
    )
    ci: CiConfig = Field(default_factory=CiConfig)

    @field_validator("manifests_path")
    @classmethod
    def _manifests_path(cls, value: str) -> str:
        if "{name}" not in value:
            raise ValueError("must contain {name}, e.g. 'services/{name}'")
        try:
            sample = value.format(name="svc")
        except (KeyError, IndexError, ValueError):
            raise ValueError("may hold no placeholder but {name}, e.g. 'services/{name}'") from None
        try:
            validate_path(sample.rstrip("/"))
        except ForgeError:
            raise ValueError(
                "must be a relative folder without '..', '.' or empty parts, e.g. 'services/{name}'"
            ) from None
        return value.rstrip("/")

    @field_validator("labels")
    @classmethod
    def _labels(cls, value: list[str]) -> list[str]:
        for label in value:
            if not label.strip() or len(label) > 50:  # GitHub's limit on label names
                raise ValueError("a label must be 1 to 50 characters")
        return value

    def manifests_dir(self, name: str) -> str:
        """The folder of service `name`'s generated files, e.g. `services/payments`."""
        return self.manifests_path.format(name=name)


def required_permission(config: RepoConfig | None, verb: str) -> Level:
    """The permission `verb` needs in this repository: the file's override or the default.
    A verb nobody configured fails closed (admin)."""
    if config is not None and verb in config.permissions:
        return config.permissions[verb]  # type: ignore[index]
    return DEFAULT_PERMISSIONS.get(verb, "admin")


def parse_repo_config(
    text: str, registry: ToolRegistry | None = None
) -> tuple[RepoConfig | None, str | None]:
    """`text` as a `RepoConfig`, or None and the error sentence (see app/config_layers.py)."""
    checked = check_config_text(text, registry, may_extend=True)
    if checked.problems:
        return None, error_text(checked.problems)
    return checked.config, None


@dataclass(frozen=True)
class CheckedFile:
    """One settings file checked on its own: its mapping (without `_extends`), its config,
    the `_extends` value it holds, or the located problems (sentences for `error_text`)."""

    data: dict[str, Any] = field(default_factory=dict)
    config: RepoConfig | None = None
    extends: Any = None
    problems: list[str] = field(default_factory=list)


def check_config_text(
    text: str,
    registry: ToolRegistry | None = None,
    floor: Floor | None = None,
    *,
    may_extend: bool = False,
) -> CheckedFile:
    """Parse and check one file: the schema, the tool names, and the `floor` it may not go
    below (None: the built-in defaults). `_extends` is taken out when `may_extend`."""
    text = scrub(text)
    if len(text.encode()) > MAX_CONFIG_BYTES:
        return CheckedFile(problems=[f"the file is larger than {MAX_CONFIG_BYTES // 1024} KiB"])
    try:
        data, root, too_deep = load_bounded(text)
        if too_deep is not None:
            return CheckedFile(problems=[too_deep])
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or "it cannot be parsed"
        return CheckedFile(problems=[f"it is not valid YAML ({where}{code_span(problem)})"])
    if data is None:
        return CheckedFile(config=RepoConfig())
    if not isinstance(data, dict):
        return CheckedFile(
            problems=[
                f"line 1: the file must be a mapping such as `manifests_path: services/{{name}}`, "
                f"not {kind_of(data)}"
            ]
        )
    data = dict(data)
    extends = data.pop(EXTENDS_KEY, None)
    problems: list[Problem] = []
    if extends is not None and not may_extend:
        problems.append(
            (
                (EXTENDS_KEY,),
                f"{code_span(EXTENDS_KEY)}: the organization's file is the base of every "
                "repository's settings and extends no other file; remove the key",
            )
        )
    try:
        config = RepoConfig.model_validate(data)
    except ValidationError as exc:
        problems += [_problem(err) for err in exc.errors(include_url=False)]
        config = None
    else:
        problems += _policy_problems(config, data, registry, floor or BUILTIN_FLOOR)
    if not problems:
        return CheckedFile(data=data, config=config, extends=extends)
    more = len(problems) - MAX_PROBLEMS
    located = sorted((line_of(root, loc) or 0, msg) for loc, msg in problems[:MAX_PROBLEMS])
    shown = [f"line {line}: {msg}" if line else msg for line, msg in located]
    if more > 0:
        shown.append(f"and {more} more problems like these")
    return CheckedFile(data=data, extends=extends, problems=shown)


# -- checks beyond the schema --------------------------------------------------------------


def _policy_problems(
    config: RepoConfig, data: dict[str, Any], registry: ToolRegistry | None, floor: Floor
) -> list[Problem]:
    problems = floor_problems(config, data, floor)
    if registry is not None:
        for key in ("tools", "approval_required"):
            for i, name in enumerate(data.get(key) or []):
                if name in registry or (key == "approval_required" and _is_default(name)):
                    continue
                close = difflib.get_close_matches(name, registry.names, n=1, cutoff=0.6)
                hint = f"did you mean `{close[0]}`?" if close else "`idp-copilot tools` lists them"
                problems.append(
                    (
                        (key, i),
                        code_span(f"{key}[{i}]: {show_value(name)}")
                        + f" is not a known tool; {hint}",
                    )
                )
    return problems


def _is_default(name: str) -> bool:
    # Approval for a default tool that is not installed is harmless: the example file lists
    # them all, and it must validate wherever the App runs.
    return name in DEFAULT_APPROVAL_REQUIRED


# -- error sentences -----------------------------------------------------------------------


def _problem(err: Any) -> Problem:
    loc, kind, value = tuple(err["loc"]), err["type"], err.get("input")
    if kind == "literal_error" and loc[-1] == "[key]":
        loc = loc[:-1]
        options = expected_options(err)
        hint = did_you_mean(str(value), options, after=";") or f"commands: {', '.join(options)}"
        return loc, f"{code_span(f'{dotted_path(loc)}: not a command')}; {hint}"
    if kind == "literal_error":
        options = ", ".join(expected_options(err))
        return (
            loc,
            f"{code_span(f'{dotted_path(loc)}: {show_value(value)} is not one of {options}')}",
        )
    if kind == "extra_forbidden" and tuple(loc) in _MOVED_KEYS:
        return (
            loc,
            f"{code_span(f'{dotted_path(loc)}: no longer a key')}; {_MOVED_KEYS[tuple(loc)]}",
        )
    if kind == "extra_forbidden":
        known = _fields_at(loc[:-1])
        hint = did_you_mean(str(loc[-1]), known, after=";") or (
            f"known keys here: {', '.join(known)}; remove it or fix its spelling"
        )
        return loc, f"{code_span(f'{dotted_path(loc)}: not a known key')}; {hint}"
    message = str(err["msg"]).removeprefix("Value error, ")
    message = message[:1].lower() + message[1:]
    if kind == "string_pattern_mismatch" and loc == ("agent_system",):
        message = "must be a name of lower-case letters, digits, '-' and '_'"
    return loc, f"{code_span(f'{dotted_path(loc)}: {message}')}"


def _fields_at(loc: Sequence[Any]) -> list[str]:
    model: type[BaseModel] = RepoConfig
    for part in loc:
        field = model.model_fields.get(str(part))
        annotation = field.annotation if field is not None else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        model = annotation
    return list(model.model_fields)
