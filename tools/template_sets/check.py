"""Check a whole template set: render every combination in memory and run the validators
the App runs before publishing (tools/validate.py). A set that fails is refused with one
sentence; nothing it rendered is kept.
"""

from __future__ import annotations

from tools.render import all_combinations, render_service
from tools.template_sets.loader import TemplateSet, TemplateSetError
from tools.templates import BUILTIN_SET
from tools.validate import validate_files

MAX_NAMED_PROBLEMS = 3


def _name_format(tset: TemplateSet) -> str:
    # Every set's services side by side in one tree (make check-generated): names, and so
    # workflow files, must not collide. The built-in set keeps its historical names.
    if tset.name == BUILTIN_SET:
        return "{language}-{type}"
    return tset.name[:20].rstrip("-") + "-{language}-{type}"


def set_services(tset: TemplateSet) -> dict[str, dict[str, str]]:
    """'language type' → the files of a default service of that combination."""
    services = {}
    for req in all_combinations(_name_format(tset), tset):
        try:
            services[f"{req.language} {req.type}"] = render_service(req, template_set=tset)
        except ValueError as exc:
            raise TemplateSetError(
                f"{tset.label} is refused: {req.language} {req.type} does not render: {exc}"
            ) from None
    return services


def check_set(tset: TemplateSet) -> None:
    """Raise `TemplateSetError` naming the first problems when any combination of `tset`
    fails to render or fails a validator (Kubernetes schemas, workflow schema, zizmor)."""
    problems: list[str] = []
    for combination, files in set_services(tset).items():
        report = validate_files(files)
        problems += [
            f"{combination}: {f.path}: {f.validator}: {f.message}" for f in report.errors()
        ]
    if problems:
        more = len(problems) - MAX_NAMED_PROBLEMS
        tail = f" (and {more} more)" if more > 0 else ""
        raise TemplateSetError(
            f"{tset.label} is refused: a service it renders fails validation: "
            + "; ".join(problems[:MAX_NAMED_PROBLEMS])
            + tail
        )
