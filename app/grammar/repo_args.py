"""The arguments of `/idp create-repo NAME [--from-service SERVICE]`: a repository name
(DNS-1123, like a service's), optionally as OWNER/NAME, and the service whose generated files
go into it. Which owners are allowed is the handler's rule (app/handling/create_repo.py);
here only the shapes are checked, each error naming the fix."""

from __future__ import annotations

import shlex

from app.domain.service import NAME_RE, NAME_RULE, suggest_name
from app.grammar.options import words_and_options
from app.grammar.values import CommandError, escape_user_text
from app.untrusted import linear

USAGE = "/idp create-repo NAME [--from-service SERVICE]"
# A GitHub account name: letters, digits and single inner hyphens, at most 39 characters
# (app.github.forge.is_login says the same; the grammar sits below the forge).
_LOGIN_RE = linear(r"[A-Za-z0-9](?:[A-Za-z0-9]|-[A-Za-z0-9]){0,38}")
_OPTIONS = ("--from-service",)
REPO_RULE = NAME_RULE.replace("service", "repository")


def _name(value: str, rule: str, what: str) -> str:
    if not NAME_RE.fullmatch(value):
        raise CommandError(
            f"{escape_user_text(value, 80)} is not a valid {what}: {rule}. "
            f"Try `{suggest_name(value)}`."
        )
    return value


def read_create_repo(rest: str) -> tuple[str | None, str, str | None]:
    """(owner or None, repository name, service or None) of a `create-repo` line."""
    try:
        args = shlex.split(rest)
    except ValueError as exc:
        raise CommandError(
            f"The arguments of `/idp create-repo` could not be read ({exc}): close the quote. "
            f"Usage: `{USAGE}`."
        ) from None
    names, pairs = words_and_options("create-repo", args, _OPTIONS, f"Usage: `{USAGE}`.")
    service = None
    for _, value in pairs:
        service = _name(value, NAME_RULE, "service name")
    if len(names) != 1:
        got = f"; got {escape_user_text(' '.join(names), 120)}" if names else ""
        raise CommandError(f"`/idp create-repo` takes one repository name{got}. Usage: `{USAGE}`.")
    owner, slash, name = names[0].rpartition("/")
    if slash and not _LOGIN_RE.fullmatch(owner):
        raise CommandError(
            f"{escape_user_text(owner, 60)} is not a GitHub account name: letters, digits and "
            f"single hyphens, at most 39 characters. Or leave the owner out: `/idp create-repo "
            f"{suggest_name(name)}`."
        )
    return (owner or None), _name(name, REPO_RULE, "repository name"), service
