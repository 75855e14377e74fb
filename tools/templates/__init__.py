"""Service templates: one profile per language plus the Jinja2 text templates beside it.

The profile holds what differs between languages (base images, CI commands, health check);
the renderers in `tools/render*.py` hold what every service shares. Base images are pinned
to exact version tags; digests are not written here because they can only be known from the
registry (see tools/CHECKOV_SKIPS.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

TEMPLATE_DIR = Path(__file__).parent
# UID/GID the images and pods run as: not root, and above 10000 so it never maps to a host
# user (checkov CKV_K8S_40).
RUN_AS_ID = 10001


@dataclass(frozen=True)
class LanguageProfile:
    """What a language brings to a service: images, source files, CI steps, health check."""

    language: str
    build_image: str
    runtime_image: str
    # output path (relative to the service folder) -> template name under tools/templates/
    sources: dict[str, str]
    setup_action: str
    setup_with: dict[str, Any]
    lint: list[str]
    test: list[str]
    env: dict[str, str] = field(default_factory=dict)
    # The JVM takes seconds to start: a startup probe keeps liveness from killing it early.
    slow_start: bool = False
    tmp_size: str = "64Mi"


PROFILES: dict[str, LanguageProfile] = {
    "python": LanguageProfile(
        language="python",
        build_image="python:3.12.7-slim-bookworm",
        runtime_image="python:3.12.7-slim-bookworm",
        sources={
            "requirements.txt": "python/requirements.txt.j2",
            "pyproject.toml": "python/pyproject.toml.j2",
            "app/__init__.py": "python/init.py.j2",
            "app/main.py": "python/main.py.j2",
            "tests/__init__.py": "python/init.py.j2",
            "tests/test_main.py": "python/test_main.py.j2",
        },
        setup_action="actions/setup-python",
        setup_with={"python-version": "3.12"},
        lint=[
            "python -m pip install --disable-pip-version-check ruff==0.8.1",
            "ruff check .",
            "ruff format --check .",
        ],
        test=[
            "python -m pip install --disable-pip-version-check -r requirements.txt",
            "python -m unittest discover -s tests -t . -v",
        ],
    ),
    "go": LanguageProfile(
        language="go",
        build_image="golang:1.23.2-bookworm",
        runtime_image="alpine:3.20.3",
        sources={
            "go.mod": "go/go.mod.j2",
            "main.go": "go/main.go.j2",
            "main_test.go": "go/main_test.go.j2",
        },
        setup_action="actions/setup-go",
        # No dependency caches in any language: a cache restored into a workflow that pushes
        # images can be poisoned by a pull request (zizmor cache-poisoning).
        setup_with={"go-version-file": "{service_dir}/go.mod", "cache": False},
        lint=['test -z "$(gofmt -l .)"', "go vet ./..."],
        test=["go test -race ./..."],
    ),
    "node": LanguageProfile(
        language="node",
        build_image="node:22.11.0-bookworm-slim",
        runtime_image="node:22.11.0-bookworm-slim",
        sources={
            "package.json": "node/package.json.j2",
            "package-lock.json": "node/package-lock.json.j2",
            "src/server.js": "node/server.js.j2",
            "test/server.test.js": "node/server.test.js.j2",
        },
        setup_action="actions/setup-node",
        setup_with={"node-version": "22.11.0", "package-manager-cache": False},
        lint=["npm ci --ignore-scripts", "npm run lint"],
        test=["npm ci --ignore-scripts", "npm test"],
        env={"NODE_ENV": "production"},
    ),
    "java": LanguageProfile(
        language="java",
        build_image="maven:3.9.9-eclipse-temurin-21",
        runtime_image="eclipse-temurin:21.0.5_11-jre",
        sources={
            "pom.xml": "java/pom.xml.j2",
            "src/main/java/app/App.java": "java/App.java.j2",
            "src/test/java/app/AppTest.java": "java/AppTest.java.j2",
        },
        setup_action="actions/setup-java",
        setup_with={"distribution": "temurin", "java-version": "21"},
        lint=["mvn -B -ntp -DskipTests compile"],
        test=["mvn -B -ntp verify"],
        # Size the heap from the container's memory limit, not the node's.
        env={"JAVA_TOOL_OPTIONS": "-XX:MaxRAMPercentage=75 -XX:+ExitOnOutOfMemoryError"},
        slow_start=True,
        tmp_size="128Mi",
    ),
}


@cache
def _environment() -> Environment:
    # Square-bracket delimiters: the templates are Go, Java, JavaScript and Python sources
    # full of curly braces, which Jinja's default delimiters would fight with.
    return Environment(
        loader=FileSystemLoader(str(TEMPLATE_DIR)),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,  # noqa: S701 - renders source code and markdown, never HTML pages
        variable_start_string="[[",
        variable_end_string="]]",
        block_start_string="[%",
        block_end_string="%]",
        comment_start_string="[#",
        comment_end_string="#]",
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_template(template: str, /, **context: Any) -> str:
    """Render one text template under tools/templates/ with `context`."""
    return _environment().get_template(template).render(**context)
