"""The service's GitHub Actions workflow: lint, test, then build and push the image to GHCR.

Least privilege (no permissions at the top, `packages: write` only on the pushing job),
one run per ref at a time, every action pinned to a full commit SHA, and path filters so
that the workflow runs only when the service or the workflow itself changes.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from app.domain.service import ServiceRequest
from tools.render_common import (
    DEFAULT_BASE_PATH,
    check_request,
    dump_yaml,
    join,
    profile_of,
    service_dir,
    workflow_path,
)

if TYPE_CHECKING:
    from tools.template_sets import LanguageProfile, TemplateSet

# Every action the workflows use, pinned to the commit its release tag points at.
# Dependabot (package-ecosystem: github-actions) keeps SHA pins and their comments current.
ACTION_PINS: dict[str, tuple[str, str]] = {
    "actions/checkout": ("11bd71901bbe5b1630ceea73d27597364c9af683", "v4.2.2"),
    "actions/setup-python": ("0b93645e9fea7318ecaed2b359559ac225c90a2b", "v5.3.0"),
    "actions/setup-go": ("41dfa10bad2bb2ae585af6ee5bb4d7d973ad74ed", "v5.1.0"),
    "actions/setup-node": ("a0853c24544627f65ddf259abe73b1d18a591444", "v5.0.0"),
    "actions/setup-java": ("8df1039502a15bceb9433410b1a100fbe190c53b", "v4.5.0"),
    "docker/setup-buildx-action": ("c47758b77c9736f4b2ef4073d4d51994fabfe349", "v3.7.1"),
    "docker/login-action": ("9780b0c442fbb1117ed29e0efdff1e18412f7567", "v3.3.0"),
    "docker/build-push-action": ("4f58ea79222b3b9dc2c8bbdd6debcef730109a75", "v6.9.0"),
}
RUNNER = "ubuntu-24.04"
DEFAULT_BRANCH = "main"
# The App's pull-request branches (jobs publish to `idp/<session>`): each push there builds
# the image the staging deploy runs, tagged sha-<first SHA_TAG_LENGTH characters>.
APP_BRANCHES = "idp/**"
SHA_TAG_LENGTH = 12


def image_tag(commit_sha: str) -> str:
    """The tag the workflow pushes for a commit: what `deploy_to_staging` deploys."""
    return f"sha-{commit_sha[:SHA_TAG_LENGTH]}"


_WRITE_RE = re.compile(r"^\s+packages: write$", re.MULTILINE)
_USES_RE = re.compile(r"^(\s*(?:- )?uses: )([\w.-]+/[\w.-]+)@([0-9a-f]{40})$", re.MULTILINE)


def uses(action: str) -> str:
    """`owner/repo@sha` for a pinned action."""
    if action not in ACTION_PINS:
        raise ValueError(f"action {action!r} is not one the App pins ({', '.join(ACTION_PINS)})")
    sha, _version = ACTION_PINS[action]
    return f"{action}@{sha}"


def _checkout() -> dict[str, Any]:
    # No token left in .git/config for later steps to read (zizmor: artipacked).
    return {
        "name": "Check out",
        "uses": uses("actions/checkout"),
        "with": {"persist-credentials": False},
    }


def _setup(profile: LanguageProfile, directory: str) -> list[dict[str, Any]]:
    # A set without a setup action uses the toolchain the runner image has.
    if profile.setup_action is None:
        return []
    with_ = {
        key: value.format(service_dir=directory or ".") if isinstance(value, str) else value
        for key, value in profile.setup_with.items()
    }
    step = {"name": f"Set up {profile.language}", "uses": uses(profile.setup_action), "with": with_}
    return [step]


def _check_job(profile: LanguageProfile, directory: str, title: str, commands: list[str]) -> dict:
    return {
        "name": title,
        "runs-on": RUNNER,
        "timeout-minutes": 15,
        "permissions": {"contents": "read"},
        "steps": [
            _checkout(),
            *_setup(profile, directory),
            {"name": title, "run": "\n".join(commands) + "\n"},
        ],
    }


def _image_job(req: ServiceRequest, directory: str) -> dict[str, Any]:
    # Expressions reach the shell through env, never spliced into the script (zizmor:
    # template-injection). GHCR wants a lower-case owner.
    tags_script = (
        f'image="ghcr.io/${{OWNER,,}}/{req.name}"\n'
        f'tags="${{image}}:sha-${{SHA::{SHA_TAG_LENGTH}}}"\n'
        'if [ "$REF_TYPE" = tag ]; then\n'
        f'  tags="${{tags}},${{image}}:${{REF_NAME#{req.name}-v}}"\n'
        "fi\n"
        'echo "tags=${tags}" >> "$GITHUB_OUTPUT"\n'
    )
    return {
        "name": "Build and push image",
        "needs": ["lint", "test"],
        "if": "github.event_name == 'push'",
        "runs-on": RUNNER,
        "timeout-minutes": 30,
        "permissions": {"contents": "read", "packages": "write"},
        "steps": [
            _checkout(),
            {
                "name": "Image tags",
                "id": "tags",
                "env": {
                    "OWNER": "${{ github.repository_owner }}",
                    "REF_NAME": "${{ github.ref_name }}",
                    "REF_TYPE": "${{ github.ref_type }}",
                    "SHA": "${{ github.sha }}",
                },
                "run": tags_script,
            },
            {"name": "Set up Buildx", "uses": uses("docker/setup-buildx-action")},
            {
                "name": "Log in to GHCR",
                "uses": uses("docker/login-action"),
                "with": {
                    "registry": "ghcr.io",
                    "username": "${{ github.actor }}",
                    "password": "${{ secrets.GITHUB_TOKEN }}",
                },
            },
            {
                "name": "Build and push",
                "uses": uses("docker/build-push-action"),
                "with": {
                    "context": directory or ".",
                    "push": True,
                    "tags": "${{ steps.tags.outputs.tags }}",
                    "provenance": "mode=max",
                    "sbom": True,
                },
            },
        ],
    }


def workflow(
    req: ServiceRequest,
    base_path: str = DEFAULT_BASE_PATH,
    template_set: TemplateSet | None = None,
) -> dict[str, Any]:
    """The workflow as a dict (what `render_workflow` writes)."""
    directory = service_dir(req, base_path)
    profile = profile_of(req, template_set)
    paths = [join(directory, "**") if directory else "**", workflow_path(req)]
    return {
        "name": req.name,
        "on": {
            "push": {
                # The App's branch too: a staging deploy runs the image of its head commit.
                "branches": [DEFAULT_BRANCH, APP_BRANCHES],
                # A tag `<name>-v1.2.3` publishes the image tag 1.2.3 (path filters do not
                # apply to tag pushes).
                "tags": [f"{req.name}-v*"],
                "paths": paths,
            },
            "pull_request": {"paths": paths},
        },
        "permissions": {},
        # One run per ref; a newer push supersedes the running one. A literal boolean: some
        # schema-based scanners (checkov) skip workflows with an expression here.
        "concurrency": {
            "group": "${{ github.workflow }}-${{ github.ref }}",
            "cancel-in-progress": True,
        },
        "defaults": {"run": {"shell": "bash", "working-directory": directory or "."}},
        "jobs": {
            "lint": _check_job(profile, directory, "Lint", profile.lint),
            "test": _check_job(profile, directory, "Test", profile.test),
            "image": _image_job(req, directory),
        },
    }


def _annotate(text: str) -> str:
    """Comments YAML dumping cannot write: the release tag after each pinned `uses:` (which
    Dependabot keeps current) and why the write permission is there."""
    pins = {sha: version for sha, version in ACTION_PINS.values()}
    text = _USES_RE.sub(lambda m: f"{m.group(0)} # {pins.get(m.group(3), 'unknown')}", text)
    return _WRITE_RE.sub(r"\g<0> # push the image to GHCR", text)


def render_workflow(
    req: ServiceRequest,
    base_path: str = DEFAULT_BASE_PATH,
    template_set: TemplateSet | None = None,
) -> dict[str, str]:
    """`.github/workflows/<name>.yml` at the repository root, path → YAML text."""
    check_request(req)
    text = dump_yaml(workflow(req, base_path, template_set))
    return {workflow_path(req): _annotate(text)}
