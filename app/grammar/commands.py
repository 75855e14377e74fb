"""The `/idp` grammar: comment text in, typed `Command` out.

Used by the webhook router (which commands a comment holds) and by jobs (which answer the
`CommandError` sentences). Every error names the fix; user text echoed back goes through
`escape_user_text` so it can neither @-mention people nor break the comment's markdown.
Values are checked in app/grammar/values.py and the issue form read in app/grammar/issue_form.py;
their names are re-exported here, where callers have always found them.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable
from typing import Literal

from pydantic import BaseModel, Field

from app.domain.ci import CiEvent
from app.domain.service import NAME_RE, NAME_RULE, ServiceRequest, suggest_name
from app.grammar.issue_form import form_sections as form_sections
from app.grammar.issue_form import is_issue_form as is_issue_form
from app.grammar.issue_form import parse_issue_form as parse_issue_form
from app.grammar.options import words_and_options
from app.grammar.repo_args import read_create_repo

# `X as X`: re-exported, where callers have always found them.
from app.grammar.values import SET_ALIASES as SET_ALIASES
from app.grammar.values import SET_KEYS as SET_KEYS
from app.grammar.values import CommandError as CommandError
from app.grammar.values import _option_value, _service
from app.grammar.values import canonical_set_key as canonical_set_key
from app.grammar.values import escape_user_text as escape_user_text
from app.grammar.values import validate_set_value as validate_set_value
from app.text.suggest import did_you_mean
from app.untrusted import (
    MAX_BODY_CHARS,
    MAX_COMMAND_CHARS,
    MAX_PARSED_COMMANDS,
    linear,
    replace_all,
    scrub,
)

Verb = Literal[
    "help",
    "create-service",
    "plan",
    "apply",
    "status",
    "retry",
    "cancel",
    "deploy",
    "feedback",
    "answer",
    "set",
    "ask",
    "create-repo",
    "unlock",
    "upgrade",
    # not typed by users: a repository's scheduled upkeep sweep (app/handling/sweep.py)
    "sweep",
    # not typed by users: an `idp:new-service` issue whose body is free text
    "request",
    # not typed by users: the App's pull request was merged (`pull_request.closed`)
    "merged",
    # not typed by users: the App's pull request was closed without merging
    "closed",
    # not typed by users: a review, a review comment or a free-text comment on the App's
    # pull request (app/handling/review.py)
    "review",
    # not typed by users: a workflow run or check suite failed on the App's pull request
    # (`workflow_run` / `check_suite` completed; app/handling/ci.py)
    "ci",
]
VERBS: tuple[str, ...] = Verb.__args__  # type: ignore[attr-defined]


class Command(BaseModel):
    """One parsed command. Only the fields its verb uses are set."""

    verb: Verb
    service: ServiceRequest | None = None
    text: str | None = None
    environment: str | None = None
    values: dict[str, str] = Field(default_factory=dict)
    line: str = ""


class Trigger(BaseModel):
    """What the receiver hands to a job: where the request came from and what it asks."""

    delivery_id: str
    event: str
    action: str | None = None
    repo: str
    installation_id: int | None = None
    number: int
    is_pull_request: bool = False
    sender: str
    comment_id: int | None = None
    title: str = ""
    state: str = "open"
    locked: bool = False
    commands: list[Command] = Field(default_factory=list)
    errors: list[str] = Field(default_factory=list)
    # How many `/idp` lines the comment held, parsed or not (only the first
    # MAX_PARSED_COMMANDS are parsed): the job refuses a comment past its command budget.
    command_lines: int = 0
    received_at: float = Field(default_factory=time.time)
    # Sessions started from the operator console or `idp-copilot run` without a repo answer
    # on the LocalForge, whatever the worker's forge is.
    dry_run: bool = False
    # `pull_request_review` and `pull_request_review_comment`: the review to read (its body
    # and line comments are fetched by the job, so one review is handled once).
    review_id: int | None = None
    # Requests from the operator API with an operator token: the permission the API already
    # granted, which the worker uses instead of asking the forge about `sender` (an operator
    # is not a GitHub user). Never set from a webhook.
    authorized_permission: str | None = None
    # `workflow_run` and `check_suite` (completed) on the App's pull request: what failed.
    ci: CiEvent | None = None


# -- usage and help ------------------------------------------------------------------------

USAGE: dict[str, tuple[str, str]] = {
    "help": ("/idp help", "lists the commands"),
    "create-service": (
        "/idp create-service NAME [--lang LANG] [--type api|worker|web] "
        "[--team TEAM] [--port N] [--replicas N]",
        "plans and builds a new service; opens a pull request. LANG: a language of the "
        "repository's template set (built-in: python, go, node, java)",
    ),
    "plan": (
        "/idp plan",
        "re-plans and shows what `/idp apply` would change: a server-side dry run of each "
        "cluster step against the live objects; writes nothing to the cluster",
    ),
    "apply": ("/idp apply", "runs the steps that wait for approval (namespace, deploy, repo)"),
    "status": ("/idp status", "shows the session's status"),
    "retry": (
        "/idp retry",
        "re-runs the failed steps only; with none, the failed CI jobs of the App's pull request",
    ),
    "cancel": ("/idp cancel", "stops the running job"),
    "deploy": ("/idp deploy staging", "deploys the merged manifests to the staging cluster"),
    "feedback": ("/idp feedback TEXT", "stores feedback on this session"),
    "answer": ("/idp answer TEXT", "answers the todo's open question; the session resumes"),
    "set": ("/idp set KEY=VALUE ...", "on the App's pull request: re-render with new values"),
    "ask": ("/idp ask QUESTION", "answers from the platform knowledge base"),
    "create-repo": (
        "/idp create-repo NAME [--from-service SERVICE]",
        "creates a repository (after `/idp apply`), pushes the service's files, protects it",
    ),
    "unlock": ("/idp unlock", "releases the staging namespace lock this session holds"),
    "upgrade": (
        "/idp upgrade [SERVICE]",
        "re-renders a generated service with its template set's current version; one PR",
    ),
}
USER_VERBS: tuple[str, ...] = tuple(USAGE)


def _help_text() -> str:
    # A '|' inside a table cell ends the cell, even in a code span, unless escaped.
    rows = "\n".join(f"| `{u.replace('|', chr(92) + '|')}` | {d} |" for u, d in USAGE.values())
    keys = ", ".join(f"`{k}`" for k in SET_KEYS)
    aliases = ", ".join(f"`{a}`→`{k}`" for a, k in SET_ALIASES.items())
    return (
        "**IDP Copilot commands** (one per line, in an issue or pull request comment):\n\n"
        "| command | does |\n| --- | --- |\n"
        f"{rows}\n\n"
        f"`/idp set` keys: {keys}. Also accepted: {aliases}; `.` or `-` may replace `_`.\n\n"
        "CI on the App's pull requests: a failed workflow run shows in the todo (workflow, job, "
        "step). With a language model the App tries a fix commit (at most 2 per failing "
        "commit; `ci: {fix: false}` in `.github/idp-copilot.yml` turns it off); without one, "
        "`/idp retry` re-runs the failed jobs.\n"
    )


HELP_TEXT = _help_text()


# -- comments ----------------------------------------------------------------------------

_HTML_COMMENT_RE = linear(rb"(?s)<!--.*?(?:-->|\z)")


def _fence(line: str) -> str | None:
    """The code fence (```` ``` ```` or `~~~`, three or more) that `line` opens or closes
    after at most three spaces of indentation, else None. Plain string work: one pass."""
    rest = line.lstrip(" \t")
    if len(line) - len(rest) > 3 or rest[:3] not in ("```", "~~~"):
        return None
    return rest[: len(rest) - len(rest.lstrip(rest[0]))]


def _command_rest(line: str) -> str | None:
    """What follows `/idp` (case-insensitive, after optional blanks) on a command line, or
    None when `line` is not one."""
    text = line.strip()
    if text[:4].lower() != "/idp" or (len(text) > 4 and not text[4].isspace()):
        return None
    return text[4:].strip()


def _command_lines(body: str) -> list[str]:
    """The lines that are commands: not in a code fence, not quoted, not in an HTML comment
    (hidden text must not run a command a reader cannot see). Only the first
    MAX_BODY_CHARS of `body` are read (GitHub's own limit)."""
    lines: list[str] = []
    fence: str | None = None
    for line in replace_all(_HTML_COMMENT_RE, scrub(body[:MAX_BODY_CHARS])).splitlines():
        opener = _fence(line)
        if fence is not None:
            if opener and opener[0] == fence[0] and len(opener) >= len(fence):
                fence = None
            continue
        if opener:
            fence = opener
        elif not line.lstrip().startswith(">") and _command_rest(line) is not None:
            lines.append(line.strip())
    return lines


def read_comment(body: str) -> tuple[list[Command], list[CommandError], int]:
    """The first MAX_PARSED_COMMANDS `/idp` lines of a comment, parsed (bad lines become
    errors, good ones commands), and how many `/idp` lines it holds in all."""
    commands: list[Command] = []
    errors: list[CommandError] = []
    lines = _command_lines(body)
    for line in lines[:MAX_PARSED_COMMANDS]:
        try:
            commands.append(parse_line(line))
        except CommandError as exc:
            exc.line = line
            errors.append(exc)
    return commands, errors, len(lines)


def parse_comment(body: str) -> tuple[list[Command], list[CommandError]]:
    """The `/idp` lines of a comment, parsed (see `read_comment`)."""
    commands, errors, _ = read_comment(body)
    return commands, errors


def parse_line(line: str) -> Command:
    """One `/idp …` line → Command; raises CommandError with the fix."""
    line = scrub(line)
    rest = _command_rest(line)
    if rest is None:
        raise CommandError("A command starts with `/idp`; `/idp help` lists them.", line)
    if len(line) > MAX_COMMAND_CHARS:
        raise CommandError(
            f"A command line holds at most {MAX_COMMAND_CHARS:,} characters; this one has "
            f"{len(line):,}. Shorten it, or split the text over several comments.",
            line,
        )
    parts = rest.split(None, 1)
    if not parts:
        return Command(verb="help", line=line)
    verb, rest = parts[0].lower(), (parts[1] if len(parts) > 1 else "")
    parser = _PARSERS.get(verb)
    if parser is None:
        raise CommandError(
            f"{escape_user_text('/idp ' + parts[0])} is not a command."
            f"{did_you_mean(verb, USER_VERBS, '/idp ')} "
            f"Commands: {', '.join(USER_VERBS)}; `/idp help` explains each.",
            line,
        )
    command = parser(verb, rest)
    command.line = line
    return command


def _usage(verb: str) -> str:
    return f"Usage: `{USAGE[verb][0]}`."


def _split(verb: str, rest: str) -> list[str]:
    try:
        return shlex.split(rest)
    except ValueError as exc:
        raise CommandError(
            f"The arguments of `/idp {verb}` could not be read ({exc}): close the quote. "
            f"{_usage(verb)}"
        ) from None


def _no_arguments(verb: str, rest: str) -> Command:
    if rest.strip() and verb != "help":
        raise CommandError(f"`/idp {verb}` takes no arguments. {_usage(verb)}")
    return Command(verb=verb, text=rest.strip() or None)  # type: ignore[arg-type]


def _text(verb: str, rest: str) -> Command:
    # Free text is kept as typed (no shlex): apostrophes and quotes are ordinary characters.
    if not rest.strip():
        raise CommandError(f"`/idp {verb}` needs some text. {_usage(verb)}")
    return Command(verb=verb, text=rest.strip())  # type: ignore[arg-type]


def _deploy(verb: str, rest: str) -> Command:
    args = _split(verb, rest)
    if not args:
        raise CommandError(f"`/idp deploy` needs an environment. {_usage(verb)}")
    if len(args) > 1 or args[0].lower() != "staging":
        raise CommandError(
            f"Only `staging` can be deployed from a comment (got {escape_user_text(rest)}); "
            "production goes through your release process. Use `/idp deploy staging`."
        )
    return Command(verb="deploy", environment="staging")


_OPTIONS = {"--lang": "language", "--language": "language", "--type": "type", "--team": "team"}
_OPTIONS |= {"--port": "port", "--replicas": "replicas"}


def _create_service(verb: str, rest: str) -> Command:
    valid = "--lang, --type, --team, --port, --replicas"  # one name each, not the aliases
    names, pairs = words_and_options(verb, _split(verb, rest), _OPTIONS, _usage(verb), valid)
    fields: dict[str, object] = {}
    for option, value in pairs:
        fields[_OPTIONS[option]] = _option_value(_OPTIONS[option], value, f"`{option}`")
    if not names:
        raise CommandError(f"`/idp create-service` needs a service name. {_usage(verb)}")
    if len(names) > 1:
        raise CommandError(
            f"`/idp create-service` takes one name; got {escape_user_text(' '.join(names))}. "
            f"Try `/idp create-service {suggest_name('-'.join(names))}`."
        )
    return Command(verb="create-service", service=_service(names[0], fields))


def _set(verb: str, rest: str) -> Command:
    args = _split(verb, rest)
    if not args:
        raise CommandError(f"`/idp set` needs at least one KEY=VALUE. {_usage(verb)}")
    values: dict[str, str] = {}
    for arg in args:
        raw_key, has_value, value = arg.partition("=")
        if not has_value or not raw_key:
            raise CommandError(
                f"`/idp set` takes KEY=VALUE pairs such as `replicas=3`; "
                f"got {escape_user_text(arg)}."
            )
        key = canonical_set_key(raw_key)
        if key is None:
            raise CommandError(
                f"{escape_user_text(raw_key)} is not a key `/idp set` knows."
                f"{did_you_mean(raw_key.lower(), SET_KEYS)} Keys: {', '.join(SET_KEYS)}."
            )
        values[key] = validate_set_value(key, value)
    return Command(verb="set", values=values)


def _create_repo(verb: str, rest: str) -> Command:
    """`text`: the repository (NAME or OWNER/NAME); `values["from_service"]`: the service."""
    owner, name, service = read_create_repo(rest)
    values = {"from_service": service} if service else {}
    return Command(verb="create-repo", text=f"{owner}/{name}" if owner else name, values=values)


def _upgrade(verb: str, rest: str) -> Command:
    args = _split(verb, rest)
    if len(args) > 1:
        raise CommandError(f"`/idp upgrade` takes at most one service name. {_usage(verb)}")
    if args and not NAME_RE.fullmatch(args[0]):
        raise CommandError(f"{NAME_RULE}. {_usage(verb)}")
    return Command(verb="upgrade", text=args[0] if args else None)


_PARSERS: dict[str, Callable[[str, str], Command]] = {
    "help": _no_arguments,
    "create-service": _create_service,
    "plan": _no_arguments,
    "apply": _no_arguments,
    "status": _no_arguments,
    "retry": _no_arguments,
    "cancel": _no_arguments,
    "deploy": _deploy,
    "feedback": _text,
    "answer": _text,
    "set": _set,
    "ask": _text,
    "create-repo": _create_repo,
    "unlock": _no_arguments,
    "upgrade": _upgrade,
}
