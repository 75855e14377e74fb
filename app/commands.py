"""The `/idp` grammar and the issue-form parser: comment text in, typed `Command` out.

Used by the webhook router (which commands a comment holds) and by jobs (which answer the
`CommandError` sentences). Every error names the fix; user text echoed back goes through
`escape_user_text` so it can neither @-mention people nor break the comment's markdown.
"""

from __future__ import annotations

import difflib
import operator
import shlex
import time
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError

from app.untrusted import (
    MAX_BODY_CHARS,
    MAX_COMMAND_CHARS,
    MAX_PARSED_COMMANDS,
    MAX_SUGGEST_CHARS,
    MAX_VALUE_CHARS,
    linear,
    replace_all,
    scrub,
)
from tools.service import LANGUAGES, NAME_RULE, SERVICE_TYPES, ServiceRequest, suggest_name

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
    # not typed by users: an `idp:new-service` issue whose body is free text
    "request",
    # not typed by users: the App's pull request was merged (`pull_request.closed`)
    "merged",
    # not typed by users: a review, a review comment or a free-text comment on the App's
    # pull request (jobs/review.py)
    "review",
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


class CommandError(Exception):
    """Bad input from a user; `message` is the sentence (with the fix) we answer with."""

    def __init__(self, message: str, line: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.line = line


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


# -- usage and help ------------------------------------------------------------------------

USAGE: dict[str, tuple[str, str]] = {
    "help": ("/idp help", "lists the commands"),
    "create-service": (
        "/idp create-service NAME [--lang python|go|node|java] [--type api|worker|web] "
        "[--team TEAM] [--port N] [--replicas N]",
        "plans and builds a new service; opens a pull request",
    ),
    "plan": ("/idp plan", "(re)plans and shows the todo list; no side effects"),
    "apply": ("/idp apply", "runs the steps that wait for approval (namespace, deploy, repo)"),
    "status": ("/idp status", "shows the session's status"),
    "retry": ("/idp retry", "re-runs the failed steps only"),
    "cancel": ("/idp cancel", "stops the running job"),
    "deploy": ("/idp deploy staging", "deploys the merged manifests to the staging cluster"),
    "feedback": ("/idp feedback TEXT", "stores feedback on this session"),
    "answer": ("/idp answer TEXT", "answers the todo's open question; the session resumes"),
    "set": ("/idp set KEY=VALUE ...", "on the App's pull request: re-render with new values"),
    "ask": ("/idp ask QUESTION", "answers from the platform knowledge base"),
}
USER_VERBS: tuple[str, ...] = tuple(USAGE)

# Canonical `/idp set` keys: every ServiceRequest field but the name (the identity of the
# service) and the description (free text, not a rendering value).
SET_KEYS: tuple[str, ...] = tuple(
    field
    for field in ServiceRequest.model_fields
    if field not in ("name", "description", "namespace_prefix")  # the prefix is the config's
)
# Friendlier spellings. Keys are also matched case-insensitively with '-' and '.' read as '_',
# so `cpu.request`, `memory-limit` and `Max_Replicas` work without an entry here.
SET_ALIASES: dict[str, str] = {
    "lang": "language",
    "service_type": "type",
    "owner": "team",
    "host": "ingress_host",
    "probe_liveness": "liveness_path",
    "probe_readiness": "readiness_path",
    "replicas_max": "max_replicas",
    "slo": "availability_slo",
    "slo_availability": "availability_slo",
    "latency": "latency_p99_ms",
    "slo_latency": "latency_p99_ms",
    "latency_p99": "latency_p99_ms",
}

# Values that land in YAML and must look like what Kubernetes accepts (ServiceRequest keeps
# them as plain strings), each with the sentence that tells the user the rule. Whole values
# only (`fullmatch`: a trailing newline is refused), after the MAX_VALUE_CHARS bound; a host
# name's 253-character limit is checked by length, as RE2 has no look-ahead.
_VALUE_RULES: dict[str, tuple[Any, str]] = {
    "cpu": (linear(r"[0-9]+(\.[0-9]+)?m?"), "a CPU quantity such as 250m or 1"),
    "memory": (
        linear(r"[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|k|M|G|T)?"),
        "a memory quantity such as 256Mi or 1Gi",
    ),
    "host": (
        linear(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)+"),
        "a lower-case DNS host name such as payments.example.com",
    ),
    "path": (linear(r"/[A-Za-z0-9._~/-]{0,200}"), "a URL path such as /healthz"),
}
_MAX_HOST_CHARS = 253
_COMPARE = {"ge": operator.ge, "gt": operator.gt, "le": operator.le, "lt": operator.lt}
_WORDS = {"ge": "at least", "gt": "above", "le": "at most", "lt": "below"}
_RULE_OF_KEY = {
    f"{kind}_{bound}": kind for kind in ("cpu", "memory") for bound in ("request", "limit")
}
_RULE_OF_KEY |= {"ingress_host": "host", "liveness_path": "path", "readiness_path": "path"}


def _help_text() -> str:
    # A '|' inside a table cell ends the cell, even in a code span, unless escaped.
    rows = "\n".join(f"| `{u.replace('|', chr(92) + '|')}` | {d} |" for u, d in USAGE.values())
    keys = ", ".join(f"`{k}`" for k in SET_KEYS)
    aliases = ", ".join(f"`{a}`→`{k}`" for a, k in SET_ALIASES.items())
    return (
        "**IDP Copilot commands** (one per line, in an issue or pull request comment):\n\n"
        "| command | does |\n| --- | --- |\n"
        f"{rows}\n\n"
        f"`/idp set` keys: {keys}. Also accepted: {aliases}; `.` or `-` may replace `_`.\n"
    )


HELP_TEXT = _help_text()


def escape_user_text(text: str, limit: int = 80) -> str:
    """User text made safe to echo in a comment: one line, no backticks, no live @-mentions,
    shortened, in a code span."""
    # isprintable() drops zero-width and bidi controls, so what is echoed is what was typed.
    text = text[: limit * 4]  # what is shown is `limit` long: cleaning more is wasted work
    flat = "".join(ch for ch in " ".join(text.replace("`", "").split()) if ch.isprintable())
    if len(flat) > limit:
        flat = flat[: limit - 1] + "…"
    flat = flat.replace("@", "@\u200b")
    return f"`{flat}`" if flat else "(nothing)"


def _did_you_mean(word: str, choices: tuple[str, ...] | list[str], prefix: str = "") -> str:
    if len(word) > MAX_SUGGEST_CHARS:
        return ""  # difflib's cost grows with the product of the lengths
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f" Did you mean `{prefix}{close[0]}`?" if close else ""


def _check_number(field: str, raw: str, shown: str) -> int | float:
    """`raw` as the number `field` takes, or a CommandError that states the allowed range."""
    info = ServiceRequest.model_fields[field]
    kind = float if info.annotation is float else int
    limits = {a: getattr(m, a) for m in info.metadata for a in _COMPARE if hasattr(m, a)}
    try:
        value = kind(raw.strip())
    except ValueError:
        value = None
    if value is None or not all(_COMPARE[a](value, bound) for a, bound in limits.items()):
        if "ge" in limits and "le" in limits:
            rule = f"from {limits['ge']:g} to {limits['le']:g}"
        else:
            rule = " and ".join(f"{_WORDS[a]} {bound:g}" for a, bound in limits.items())
        noun = "a whole number" if kind is int else "a number"
        raise CommandError(f"{shown} must be {noun} {rule}; got {escape_user_text(raw)}.")
    return value


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    return str(error["msg"]).removeprefix("Value error, ")


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
            f"{_did_you_mean(verb, USER_VERBS, '/idp ')} "
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
    args = _split(verb, rest)
    names: list[str] = []
    fields: dict[str, object] = {}
    valid = "--lang, --type, --team, --port, --replicas"
    while args:
        arg = args.pop(0)
        if not arg.startswith("--"):
            names.append(arg)
            continue
        option, has_value, value = arg.partition("=")
        option = option.lower()
        if option not in _OPTIONS:
            raise CommandError(
                f"`/idp create-service` has no option {escape_user_text(option)}."
                f"{_did_you_mean(option, list(_OPTIONS))} Valid options: {valid}."
            )
        if not has_value:
            if not args or args[0].startswith("--"):
                raise CommandError(f"`{option}` needs a value. {_usage(verb)}")
            value = args.pop(0)
        fields[_OPTIONS[option]] = _option_value(_OPTIONS[option], value, f"`{option}`")
    if not names:
        raise CommandError(f"`/idp create-service` needs a service name. {_usage(verb)}")
    if len(names) > 1:
        raise CommandError(
            f"`/idp create-service` takes one name; got {escape_user_text(' '.join(names))}. "
            f"Try `/idp create-service {suggest_name('-'.join(names))}`."
        )
    return Command(verb="create-service", service=_service(names[0], fields))


def _option_value(field: str, value: str, shown: str) -> object:
    if field in ("port", "replicas"):
        return _check_number(field, value, shown)
    if field in ("language", "type"):
        choices = LANGUAGES if field == "language" else SERVICE_TYPES
        if value.lower() not in choices:
            raise CommandError(
                f"{shown} must be one of {', '.join(choices)}; got {escape_user_text(value)}."
                f"{_did_you_mean(value.lower(), choices)}"
            )
        return value.lower()
    if field == "team":
        return value.strip().lower()  # GitHub team slugs and Backstage owners are lower-case
    return value


def _service(name: str, fields: dict[str, object]) -> ServiceRequest:
    """A ServiceRequest or a CommandError that states the name rule and a fixed name."""
    if not name:
        raise CommandError("A service name is needed. Try `/idp create-service my-service`.")
    try:
        return ServiceRequest(name=name, **fields)  # type: ignore[arg-type]
    except ValidationError as exc:
        field = str(exc.errors()[0]["loc"][0])
        if field == "name":
            raise CommandError(
                f"{escape_user_text(name)} is not a valid service name: {NAME_RULE}. "
                f"Try `{suggest_name(name)}`."
            ) from None
        raise CommandError(f"`{field}` is not valid: {_first_error(exc)}.") from None


_KEY_SEPARATORS = str.maketrans("-. \t", "____")


def canonical_set_key(key: str) -> str | None:
    """The ServiceRequest field a `/idp set` key names (aliases and spellings), or None."""
    norm = key.strip().lower().translate(_KEY_SEPARATORS)
    if norm in SET_KEYS:
        return norm
    return SET_ALIASES.get(norm)


def validate_set_value(key: str, value: str) -> str:
    """`value` checked (and normalised) for the canonical `key`; CommandError names the key."""
    if key in ("language", "type"):
        return str(_option_value(key, value, f"`{key}`"))
    if key == "team":
        value = str(_option_value(key, value, f"`{key}`"))
    if key in ("replicas", "max_replicas", "port", "latency_p99_ms", "availability_slo"):
        return str(_check_number(key, value, f"`{key}`"))
    if len(value) > MAX_VALUE_CHARS:
        raise CommandError(
            f"`{key}` takes at most {MAX_VALUE_CHARS} characters; got {len(value):,}."
        )
    rule = _VALUE_RULES.get(_RULE_OF_KEY.get(key, ""))
    too_long = key == "ingress_host" and len(value) > _MAX_HOST_CHARS
    if rule and (too_long or not rule[0].fullmatch(value)):
        raise CommandError(f"`{key}` must be {rule[1]}; got {escape_user_text(value)}.")
    data = ServiceRequest(name="example").model_dump()
    data[key] = value
    try:
        ServiceRequest.model_validate(data)
    except ValidationError as exc:
        raise CommandError(
            f"`{key}={escape_user_text(value, 40)[1:-1]}` is not valid: {_first_error(exc)}."
        ) from None
    return value


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
                f"{_did_you_mean(raw_key.lower(), SET_KEYS)} Keys: {', '.join(SET_KEYS)}."
            )
        values[key] = validate_set_value(key, value)
    return Command(verb="set", values=values)


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
}


# -- issue forms -------------------------------------------------------------------------

_FORM_FIELDS = {
    "service name": "name",
    "language": "language",
    "service type": "type",
    "team": "team",
    "port": "port",
    "replicas": "replicas",
    "description": "description",
}
_LANGUAGE_ALIASES = {"node.js": "node", "nodejs": "node", "javascript": "node", "golang": "go"}


def _headings(body: str) -> list[tuple[int, int, str]]:
    """Each `### Label` line of `body` (a level-3 ATX heading, closing `#`s dropped) as
    (start, end, label): plain string work, one pass over the lines."""
    found: list[tuple[int, int, str]] = []
    start = 0
    for line in body.split("\n"):
        end = start + len(line)
        if line.startswith("###") and line[3:4] in (" ", "\t"):
            label = line[3:].strip(" \t")
            label = label.rstrip("#").rstrip(" \t") or label
            if label:
                found.append((start, end, label))
        start = end + 1
    return found


def is_issue_form(body: str | None) -> bool:
    """True when `body` is our "New service" issue form as GitHub renders it."""
    text = (body or "")[:MAX_BODY_CHARS]
    return any(label.strip().lower() == "service name" for _, _, label in _headings(text))


def form_sections(body: str) -> dict[str, str | None]:
    """`### Label` → value (None for `_No response_` or empty), labels lower-cased."""
    body = scrub(body[:MAX_BODY_CHARS]).replace("\r\n", "\n")
    headings = _headings(body)
    sections: dict[str, str | None] = {}
    for i, (_, end, label) in enumerate(headings):
        stop = headings[i + 1][0] if i + 1 < len(headings) else len(body)
        value = body[end:stop].strip()
        sections[label.strip().lower()] = None if not value or value == "_No response_" else value
    return sections


def parse_issue_form(body: str) -> ServiceRequest:
    """The "New service" issue form → ServiceRequest; CommandError names a bad field."""
    sections = form_sections(body)
    name = (sections.get("service name") or "").strip("` \n")
    if not name:
        raise CommandError(
            "The issue form has no service name: edit the issue and fill in "
            "**Service name**, or comment `/idp create-service NAME`."
        )
    fields: dict[str, object] = {}
    for label, value in sections.items():
        field = _FORM_FIELDS.get(label)
        if field in (None, "name") or value is None:
            continue
        shown = f"**{label.capitalize()}**"
        if field == "description":
            fields[field] = value[:2000]
        elif field == "language":
            word = value.strip().lower()
            fields[field] = _option_value(field, _LANGUAGE_ALIASES.get(word, word), shown)
        elif field == "type":
            fields[field] = _option_value(field, value.split()[0], shown)
        elif field == "team":
            fields[field] = _option_value(field, value, shown)
        else:
            fields[field] = _check_number(field, value.strip(), shown)
    return _service(name, fields)
