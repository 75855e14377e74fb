"""Template sets: versioned folders of Jinja templates plus a parameter schema per language
and service type, built in (tools/templates) or read from a repository the operator names.

`manifest` parses `template-set.yaml`; `loader` compiles a set in a sandbox; `check` renders
every combination and runs the validators; `sources` reads sets through the Forge and caches
them per source and ref.
"""

from tools.template_sets.loader import TemplateSet, TemplateSetError, load_dir, load_files
from tools.template_sets.manifest import MANIFEST_NAME, LanguageProfile, Manifest

__all__ = [
    "MANIFEST_NAME",
    "LanguageProfile",
    "Manifest",
    "TemplateSet",
    "TemplateSetError",
    "load_dir",
    "load_files",
]
