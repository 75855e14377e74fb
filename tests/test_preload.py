"""jobs/preload.py: what the worker imports and builds before it forks its work horses."""

from __future__ import annotations

import subprocess
import sys

from jobs.preload import forge_rest_calls


def test_the_forge_rest_calls_are_found_in_every_form_the_forge_writes_them():
    calls = forge_rest_calls()
    # `github.rest.git.async_…(` and `self._rest(repo).pulls.async_…(` alike.
    assert {("git", "async_create_commit"), ("pulls", "async_create")} <= calls
    assert {("checks", "async_create"), ("issues", "async_add_labels")} <= calls


def test_after_preload_a_job_imports_no_github_model_nor_http_stack():
    """In a fresh process: preload, then touch what a horse's first GitHub call touches (the
    models of a pull request, a check run and an installation token; an httpx client):
    nothing more is imported."""
    script = """
import importlib, sys
from app.config import Settings
from jobs.preload import preload
settings = Settings(redis_url="redis://127.0.0.1:6379/3", forge="github", github_app_id="1",
                    github_app_private_key="k", github_webhook_secret="s")
preload(settings)
before = set(sys.modules)
from githubkit_schemas.core import VERSIONS
from app.github.auth import api_version
import githubkit_schemas.latest.models as latest
import httpx
models = importlib.import_module(f"githubkit_schemas.{VERSIONS[api_version(settings)]}.models")
models.PullRequest, models.CheckRun, latest.InstallationToken
httpx.AsyncClient()
print(sorted(set(sys.modules) - before))
"""
    run = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip() == "[]"
