"""Secrets to plant and every place they could surface, for the tests of prompt injection and
secret handling (tests/test_prompt_injection.py, tests/test_secrets.py).

`secret_settings` configures a value for every secret the App knows; `SecretWorld` adds the
installation token GitHub mints and a few environment variables; `surfaces` collects what
left the process or was stored: comments, pull requests, commits and files on the fake GitHub,
every request body sent to it, log lines, what the model was sent, Redis and the audit export.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import redis

from app.audit import AuditLog
from app.config import Settings
from app.logs import configure_logging
from tests.conftest import TEST_REDIS_URL
from tests.job_world import World

WEBHOOK_SECRET = "whsec-Inj3ction-Test-7c1d9e"
OPENAI_KEY = "sk-proj-Inj3ct10nTestKey0123456789abcd"
ANTHROPIC_KEY = "sk-ant-api03-Inj3ct10nTestKey0123456789"
OPERATOR_TOKEN = "op-token-5e6f7a8b9c0d"
CLIENT_SECRET = "oauth-client-secret-1f2e3d4c5b"
SESSION_SECRET = "cookie-signing-secret-9a8b7c6d"
INSTALLATION_TOKEN = "ghs_" + "Z9y8X7w6V5u4" * 3
# Variables of the worker's environment that no part of the App should ever read out.
ENVIRONMENT = {
    "DATABASE_URL": "postgres://app:env-db-password-4471@db:5432/prod",
    "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYenvKEY0042",
}


def secret_settings(base: Settings) -> Settings:
    """`base` (its Redis, prefix and forge folder) with a value for every secret setting."""
    return Settings(
        redis_url=TEST_REDIS_URL,
        redis_prefix=base.redis_prefix,
        queue_name=base.queue_name,
        local_forge_root=base.local_forge_root,
        github_write_interval=0.0,
        github_webhook_secret=f"old-hook-secret-0451,{WEBHOOK_SECRET}",
        openai_api_key=OPENAI_KEY,
        anthropic_api_key=ANTHROPIC_KEY,
        api_tokens=f"{OPERATOR_TOKEN},op-token-second-31337",
        github_client_id="Iv1.0123456789abcdef",
        github_client_secret=CLIENT_SECRET,
        session_secret=SESSION_SECRET,
    )


class SecretWorld(World):
    """A `World` whose settings hold every secret, whose GitHub mints a real-looking
    installation token, and whose process environment holds secrets nothing should read."""

    def __init__(self, settings: Settings, connection, router, monkeypatch, **kw: Any) -> None:
        super().__init__(secret_settings(settings), connection, router, monkeypatch, **kw)
        for name, value in ENVIRONMENT.items():
            monkeypatch.setenv(name, value)
        self.github.next_tokens.append(INSTALLATION_TOKEN)

    def secrets(self) -> dict[str, str]:
        """Name → value of every secret to look for, the PEM key's lines one by one too."""
        found = {f"setting {n}": v for n, v in enumerate(self.settings.secret_values())}
        key = self.settings.private_key() or ""
        lines = [line for line in key.splitlines()[1:-1] if len(line) >= 16]
        found |= {f"private key line {n}": line for n, line in enumerate(lines)}
        found["installation token"] = INSTALLATION_TOKEN
        found |= {f"${name}": value for name, value in ENVIRONMENT.items()}
        return found

    def placeholders(self) -> dict[str, str]:
        """What `{{NAME}}` stands for in text an obedient model writes."""
        values = {
            "OPENAI_API_KEY": OPENAI_KEY,
            "ANTHROPIC_API_KEY": ANTHROPIC_KEY,
            "WEBHOOK_SECRET": WEBHOOK_SECRET,
            "PRIVATE_KEY": self.settings.private_key() or "",
            "IDP_API_TOKENS": self.settings.api_tokens.get_secret_value(),
            "INSTALLATION_TOKEN": INSTALLATION_TOKEN,
            "CLIENT_SECRET": CLIENT_SECRET,
            "SESSION_SECRET": SESSION_SECRET,
        }
        values["ENV_DUMP"] = "\n".join(
            f"{name}={value}" for name, value in values.items() if name != "PRIVATE_KEY"
        )
        return values


def substitute(value: Any, placeholders: dict[str, str]) -> Any:
    """`value` (text, or JSON-like dicts and lists) with every `{{NAME}}` replaced."""
    if isinstance(value, str):
        for name, secret in placeholders.items():
            value = value.replace("{{" + name + "}}", secret)
        return value
    if isinstance(value, dict):
        return {k: substitute(v, placeholders) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, placeholders) for v in value]
    return value


@contextmanager
def captured_logs(settings: Settings, level: str = "DEBUG") -> Iterator[io.StringIO]:
    """The process's JSON logs (app/logs.py, at `level`) into a buffer, as an operator's log
    stack receives them; pytest's handlers after."""
    root = logging.getLogger()
    handlers, before = root.handlers[:], root.level
    out = io.StringIO()
    try:
        configure_logging(settings, level, stream=out)
        yield out
    finally:
        root.handlers[:] = handlers
        root.setLevel(before)
        logging.captureWarnings(False)


def redis_dump(connection: redis.Redis, skip_prefix: str) -> dict[str, str]:
    """Every key of the test's Redis DB and its value as text, keys under `skip_prefix`
    (the installation token cache, whose job is to hold the token) left out."""
    dump: dict[str, str] = {}
    for raw in connection.scan_iter(count=500):
        key = raw.decode()
        if key.startswith(skip_prefix):
            continue
        kind = connection.type(raw).decode()
        if kind == "string":
            value: Any = connection.get(raw)
        elif kind == "hash":
            value = connection.hgetall(raw)
        elif kind == "list":
            value = connection.lrange(raw, 0, -1)
        elif kind == "set":
            value = connection.smembers(raw)
        elif kind == "zset":
            value = connection.zrange(raw, 0, -1)
        elif kind == "stream":
            value = connection.xrange(raw)
        else:
            value = kind
        dump[key] = repr(value)
    return dump


def surfaces(world: SecretWorld, logs: io.StringIO | None, model: Any = None) -> dict[str, str]:
    """Where a secret could have gone, as text: name of the place → what it holds."""
    github = world.github
    places = {
        "comments": "\n".join(c["body"] for c in github.comments.values()),
        "pull requests": "\n".join(f"{p['title']}\n{p['body']}" for p in github.pulls.values()),
        "commits": "\n".join(c["message"] for c in github.commits.values()),
        "files": "\n".join(github.blobs.values()),
        "GitHub requests": "\n".join(json.dumps(body) for _, _, body in github.calls if body),
        "audit export": "\n".join(AuditLog(world.connection, world.settings).export()),
        "Redis": json.dumps(
            redis_dump(world.connection, world.settings.key("github", "auth")), sort_keys=True
        ),
    }
    if logs is not None:
        places["logs"] = logs.getvalue()
    if model is not None:
        places["model requests"] = "\n".join(r.text() for r in model.requests)
    return places


def leaks(world: SecretWorld, places: dict[str, str]) -> list[str]:
    """'SECRET in PLACE' for every secret found in a place (also JSON-escaped)."""
    found = []
    for name, value in world.secrets().items():
        spellings = {value, json.dumps(value)[1:-1]}
        for place, text in places.items():
            if any(s in text for s in spellings):
                found.append(f"{name} in {place}")
    return found
