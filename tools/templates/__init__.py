"""The built-in template set: `template-set.yaml` beside the Jinja2 templates it names.

Each combination's profile holds what differs between languages (base images, CI commands,
health check); the renderers in `tools/render*.py` hold what every service shares. Base images
are pinned to exact version tags; digests are not written here because they can only be known
from the registry (see tools/CHECKOV_SKIPS.md). The format is the one every template set uses
(tools/template_sets, README "Template sets").
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tools.template_sets import LanguageProfile, TemplateSet

TEMPLATE_DIR = Path(__file__).parent
BUILTIN_SET = "builtin"
# UID/GID the images and pods run as: not root, and above 10000 so it never maps to a host
# user (checkov CKV_K8S_40).
RUN_AS_ID = 10001


@cache
def builtin_set() -> TemplateSet:
    """The set every repository gets unless its config names another."""
    from tools.template_sets.loader import load_dir

    return load_dir(TEMPLATE_DIR, source=BUILTIN_SET)


@cache
def builtin_profiles() -> dict[str, LanguageProfile]:
    """language → profile of the built-in set (every type of a language shares one)."""
    tset = builtin_set()
    return {combo.language: combo.language_profile() for combo in tset.manifest.combinations}


def render_template(template: str, /, **context: Any) -> str:
    """Render one template of the built-in set with `context`."""
    return builtin_set().render(template, context)


def __getattr__(name: str) -> Any:
    # PROFILES is read from template-set.yaml on first use, not at import: the manifest's
    # models import app.domain.service, which must not wait for the templates.
    if name == "PROFILES":
        return builtin_profiles()
    raise AttributeError(name)
