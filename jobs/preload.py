"""What a worker builds before it forks: RQ forks a work horse per job, and whatever the
worker process imported or built is shared by every horse; whatever it did not, each horse
imports or builds again, and that is lost when the horse ends.

Profiled (bench/RESULTS.md, issue 20), the horses of a worker that imported only the job's
modules still spent ~40% of their CPU importing, and ~13% parsing Kubernetes schemas:
httpcore (and trio through it) and anyio's asyncio backend, loaded by the first httpx
client; githubkit's models, loaded lazily per response type; kubernetes-validate's
definitions, parsed for every object; the GitHub-workflow schema.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

from app.config import Settings

# The githubkit REST calls the forge makes (`….rest(repo).<namespace>.<method>(`); names
# that are not a REST namespace are skipped.
_REST_CALL = re.compile(r"\.([a-z_]+)\.(async_[a-z_]+)\(")
# The models a githubkit method imports when it is called: `from ..models import (A, B)`.
_MODELS = re.compile(r"from \.\.models import \(([^)]*)\)")
# githubkit's App auth asks for installation tokens with the latest schema's models.
_AUTH_MODELS = re.compile(r"from githubkit_schemas\.latest\.models import \(([^)]*)\)")


def preload(settings: Settings) -> None:
    """Import and build, once, what the jobs would otherwise import or build in each horse."""
    import jobs.tasks  # noqa: F401  (the job function and, through it, the agent)
    from app.agent.providers import factory  # noqa: F401
    from app.github.factory import make_forge  # noqa: F401
    from tools import validate, validate_k8s
    from tools.registry import default_registry

    default_registry(settings)  # the built-in tools, their templates and validators
    _share_zizmor_findings()
    validate_k8s.warm()
    validate._workflow_validator()
    _import_http_stack()
    if settings.uses_github:
        from app.github import github_forge  # noqa: F401
        from app.github.auth import ssl_context

        ssl_context()  # the CA bundle, loaded once for every horse

        _import_github_models(settings)


def _share_zizmor_findings() -> None:
    """zizmor's findings kept in Redis by the hash of what it audited, for every worker."""
    from jobs.tasks import worker_context
    from tools import validate_zizmor

    settings, connection = worker_context()
    validate_zizmor.use_store(connection, settings.key("zizmor") + ":")


def _import_http_stack() -> None:
    import anyio._backends._asyncio  # noqa: F401  (anyio loads it on first use)
    import httpcore  # noqa: F401  (httpx imports it when it builds its first transport)


def forge_rest_calls() -> set[tuple[str, str]]:
    """The (namespace, method) of every githubkit REST call in app/github, and the App
    auth's."""
    folder = Path(__file__).resolve().parent.parent / "app" / "github"
    calls: set[tuple[str, str]] = set()
    for source in folder.glob("*.py"):
        calls.update(_REST_CALL.findall(source.read_text(encoding="utf-8")))
    return calls


def _import_github_models(settings: Settings) -> None:
    """Load the githubkit models the forge's calls parse their responses into: githubkit
    imports each lazily (a module per model group) when a response arrives."""
    import inspect

    import githubkit  # noqa: F401  (before githubkit_schemas, which it sets up)
    from githubkit_schemas.core import VERSIONS

    from app.github.auth import api_version

    package = f"githubkit_schemas.{VERSIONS[api_version(settings)]}"
    models = importlib.import_module(f"{package}.models")
    names: set[str] = set()
    for namespace, method in forge_rest_calls():
        try:
            module = importlib.import_module(f"{package}.rest.{namespace}")
        except ModuleNotFoundError:
            continue  # `.<name>.async_…(` that is not a githubkit REST call
        clients = [c for n, c in vars(module).items() if n.endswith("Client")]
        for client in clients:
            if hasattr(client, method):
                source = inspect.getsource(getattr(client, method))
                names.update(_names(_MODELS.findall(source)))
    for name in sorted(names):
        getattr(models, name)
    import githubkit.auth.app
    from githubkit_schemas.latest import models as latest

    for name in sorted(_names(_AUTH_MODELS.findall(inspect.getsource(githubkit.auth.app)))):
        getattr(latest, name)


def _names(blocks: list[str]) -> set[str]:
    return {n.strip() for block in blocks for n in block.split(",") if n.strip()}
