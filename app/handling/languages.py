"""The languages a repository's requests may name: those of the template set its settings
choose (README "Template sets"). The grammar runs before the settings are read, so it takes
any language word; the job checks the word here, before any plan or file.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from app.domain.service import LANGUAGES
from app.text.suggest import did_you_mean
from tools.template_sets import TemplateSetError
from tools.template_sets.sources import TemplateSetCatalog

if TYPE_CHECKING:
    from app.handling.context import JobContext


@dataclass(frozen=True)
class SetLanguages:
    """The chosen set (its label, e.g. "template set acme 1.1.0") and its languages."""

    label: str
    languages: tuple[str, ...]


async def set_languages(ctx: JobContext) -> SetLanguages:
    """The languages of the repository's template set. A set that cannot be read gives the
    built-in languages: the config's error comment has said why, and the generating tools
    refuse to render with it anyway."""
    choice = ctx.config.templates
    try:
        tset = await TemplateSetCatalog.from_settings(ctx.settings).load(
            ctx.forge, choice.set, choice.version, ctx.repo.installation_id
        )
    except TemplateSetError:
        return SetLanguages("built-in template set", LANGUAGES)
    return SetLanguages(tset.label, tuple(tset.languages()))


def language_problem(language: str | None, where: str, offered: SetLanguages) -> str | None:
    """The sentence refusing `language` (named by `where`: `--lang`, `defaults.language`)
    when the set has no template for it; None when it has, or no language is given yet."""
    if language is None or language in offered.languages:
        return None
    return (
        f"`{where} {language}`: the {offered.label}, which this repository's settings choose, "
        f"has no template for {language}; it has {', '.join(offered.languages)}."
        f"{did_you_mean(language, offered.languages)}"
    )
