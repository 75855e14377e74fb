"""Reading `NAME --option VALUE --option=VALUE …` command arguments: the positional words,
and each option with its value, refused with the valid options when unknown. Shared by the
verbs that take options (create-service, create-repo)."""

from __future__ import annotations

from collections.abc import Collection

from app.grammar.values import CommandError, escape_user_text
from app.text.suggest import did_you_mean


def words_and_options(
    verb: str, args: list[str], options: Collection[str], usage: str, valid: str = ""
) -> tuple[list[str], list[tuple[str, str]]]:
    """(positional words, (option, value) pairs in order; options lower-cased). `usage` is
    the sentence that ends an error, e.g. "Usage: `/idp create-repo NAME`."; `valid` the
    options as an error lists them (default: all of `options`)."""
    words: list[str] = []
    pairs: list[tuple[str, str]] = []
    args = list(args)
    while args:
        arg = args.pop(0)
        if not arg.startswith("--"):
            words.append(arg)
            continue
        option, has_value, value = arg.partition("=")
        option = option.lower()
        if option not in options:
            listed = valid or ", ".join(options)
            raise CommandError(
                f"`/idp {verb}` has no option {escape_user_text(option)}."
                f"{did_you_mean(option, list(options))} Valid options: {listed}."
            )
        if not has_value:
            if not args or args[0].startswith("--"):
                raise CommandError(f"`{option}` needs a value. {usage}")
            value = args.pop(0)
        pairs.append((option, value))
    return words, pairs
