"""One `Settings` object: the environment contract of DESIGN.md, read once and passed down."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.config_tokens import names_given_twice, parse_operator_tokens, split_webhook_secrets


def _env(*names: str) -> AliasChoices:
    return AliasChoices(*names)


class ConfigError(Exception):
    """A setting is missing or inconsistent; the message names the variable and the fix."""


class Settings(BaseSettings):
    """Everything the App reads from its environment. Secrets are `SecretStr`: never printed."""

    model_config = SettingsConfigDict(env_file=None, extra="ignore", populate_by_name=True)

    redis_url: str = Field(
        "redis://localhost:6379/0",
        validation_alias=_env("REDIS_URL"),
        description="Redis for queues, sessions, locks, token cache and feedback.",
    )
    redis_prefix: str = Field(
        "idp",
        validation_alias=_env("IDP_REDIS_PREFIX"),
        description="Prefix of every key the App writes, so several installs can share a Redis.",
    )
    queue_name: str = Field(
        "idp", validation_alias=_env("IDP_QUEUE"), description="The RQ queue that jobs go to."
    )
    job_timeout: int = Field(
        1800,
        validation_alias=_env("IDP_JOB_TIMEOUT"),
        description="Seconds one agent run may take (RQ's default of 180 s is too short).",
    )
    dedupe_ttl: int = Field(
        7 * 24 * 3600,
        validation_alias=_env("IDP_DEDUPE_TTL"),
        description="Seconds a delivery id is remembered; GitHub redeliveries can come days later.",
    )
    lock_ttl: int = Field(
        10,
        validation_alias=_env("IDP_LOCK_TTL"),
        description="Seconds a session lock lives without renewal, so a dead worker frees it "
        "(a running job renews it every third of this); with the 8 s heartbeat limit of "
        "jobs/worker.py it bounds recovery after a crash.",
    )

    github_app_id: str | None = Field(None, validation_alias=_env("GITHUB_APP_ID"))
    github_app_private_key: SecretStr | None = Field(
        None, validation_alias=_env("GITHUB_APP_PRIVATE_KEY")
    )
    github_app_private_key_path: Path | None = Field(
        None, validation_alias=_env("GITHUB_APP_PRIVATE_KEY_PATH")
    )
    github_webhook_secret: SecretStr | None = Field(
        None,
        validation_alias=_env("GITHUB_WEBHOOK_SECRET"),
        description="One or more comma-separated secrets; any of them verifies (rotation).",
    )
    github_api_url: str = Field(
        "https://api.github.com",
        validation_alias=_env("GITHUB_API_URL"),
        description="REST API root; set it for GitHub Enterprise Server (https://HOST/api/v3).",
    )
    github_api_version: str | None = Field(
        None,
        validation_alias=_env("GITHUB_API_VERSION"),
        description="REST API version (X-GitHub-Api-Version). Default: the newest for "
        "api.github.com, 2022-11-28 (the one every GitHub Enterprise Server 3.9+ knows) "
        "for any other GITHUB_API_URL.",
    )
    github_timeout: float = Field(
        30.0,
        validation_alias=_env("IDP_GITHUB_TIMEOUT"),
        description="Seconds one GitHub request may take before it counts as failed (retried).",
    )
    github_max_retries: int = Field(
        5,
        validation_alias=_env("IDP_GITHUB_MAX_RETRIES"),
        description="Retries of one GitHub call on 5xx, 429, secondary rate limits and timeouts.",
    )
    github_retry_base_delay: float = Field(
        1.0,
        validation_alias=_env("IDP_GITHUB_RETRY_BASE_DELAY"),
        description="Seconds before the first retry; doubles with each retry.",
    )
    github_retry_max_delay: float = Field(
        60.0,
        validation_alias=_env("IDP_GITHUB_RETRY_MAX_DELAY"),
        description="Longest wait before one retry. A Retry-After longer than this is not "
        "waited out in a worker: the call fails with a message saying when to retry.",
    )
    github_writes_per_minute: int = Field(
        60,
        ge=0,
        validation_alias=_env("IDP_GITHUB_WRITES_PER_MINUTE"),
        description="Writes (POST, PATCH, PUT, DELETE) one installation may make per minute, "
        "shared by all workers through Redis; GitHub's secondary limit is 80. 0: no limit.",
    )
    github_writes_per_hour: int = Field(
        450,
        ge=0,
        validation_alias=_env("IDP_GITHUB_WRITES_PER_HOUR"),
        description="Writes one installation may make per hour (GitHub's secondary limit is "
        "500 content-creating requests an hour). 0: no limit.",
    )
    github_write_interval: float = Field(
        1.0,
        ge=0,
        validation_alias=_env("IDP_GITHUB_WRITE_INTERVAL"),
        description="Least seconds between two content-creating writes (comments, issues, "
        "pull requests, reviews) of one installation (GitHub asks for a second between "
        "mutative requests when making many); other writes only count in the minute and hour "
        "limits. 0: writes may come back to back.",
    )

    # Bounds on what anyone can type (hostile input): budgets per comment, per user and
    # repository, and per installation. Past one, the App says so once and does no more.
    max_commands_per_comment: int = Field(
        10,
        ge=1,
        le=100,
        validation_alias=_env("IDP_MAX_COMMANDS_PER_COMMENT"),
        description="`/idp` lines one comment may hold; a comment with more runs none of "
        "them and gets one reply saying so.",
    )
    read_commands_per_hour: int = Field(
        20,
        ge=0,
        validation_alias=_env("IDP_READ_COMMANDS_PER_HOUR"),
        description="Read-level commands (ask, help, status, feedback) one user may run in "
        "one repository per clock hour; past it one reply per hour says so. 0: no limit.",
    )
    llm_tokens_per_day: int = Field(
        1_000_000,
        ge=0,
        validation_alias=_env("IDP_LLM_TOKENS_PER_DAY"),
        description="Model tokens (input + output) one installation may use per UTC day; "
        "once spent, model calls fail with a sentence saying so until the next day. "
        "0: no limit.",
    )

    forge: Literal["auto", "github", "local"] = Field(
        "auto",
        validation_alias=_env("IDP_FORGE"),
        description="Where answers go: GitHub (needs the App), a local git repo, or auto.",
    )
    local_forge_root: Path = Field(
        Path(".idp-local"),
        validation_alias=_env("IDP_LOCAL_FORGE_ROOT"),
        description="Folder of the LocalForge: one git repo per target repo, todo files.",
    )

    llm_provider: Literal["rules", "openai", "anthropic"] = Field(
        "rules", validation_alias=_env("IDP_LLM_PROVIDER")
    )
    openai_api_key: SecretStr | None = Field(None, validation_alias=_env("OPENAI_API_KEY"))
    openai_base_url: str | None = Field(None, validation_alias=_env("OPENAI_BASE_URL"))
    openai_model: str = Field("gpt-4o-mini", validation_alias=_env("OPENAI_MODEL"))
    anthropic_api_key: SecretStr | None = Field(None, validation_alias=_env("ANTHROPIC_API_KEY"))
    anthropic_model: str = Field("claude-sonnet-4-5", validation_alias=_env("ANTHROPIC_MODEL"))
    # Provider endpoints follow the SDKs' conventions (issue 15): operator settings only.
    anthropic_base_url: str | None = Field(
        None,
        validation_alias=_env("ANTHROPIC_BASE_URL"),
        description="Root of the Messages API (the SDK adds /v1/messages), e.g. a gateway "
        "such as LiteLLM (http://litellm:4000); default https://api.anthropic.com. Read from "
        "the environment only: never from a repository's config or a request.",
    )
    llm_timeout: float = Field(60.0, validation_alias=_env("IDP_LLM_TIMEOUT"))

    metrics_port: int = Field(8070, validation_alias=_env("IDP_METRICS_PORT"))
    prometheus_multiproc_dir: Path | None = Field(
        None,
        validation_alias=_env("PROMETHEUS_MULTIPROC_DIR"),
        description="Folder where the worker processes of one host keep their metrics "
        "(Prometheus multiprocess mode). Default: one per user and IDP_METRICS_PORT in the "
        "system's temp folder. Set it for workers only, never for `serve`.",
    )
    enable_otel_console: bool = Field(False, validation_alias=_env("IDP_ENABLE_OTEL_CONSOLE"))
    otel_exporter_otlp_endpoint: str | None = Field(
        None, validation_alias=_env("OTEL_EXPORTER_OTLP_ENDPOINT")
    )
    kubeconfig: Path | None = Field(None, validation_alias=_env("KUBECONFIG"))

    # Staging isolation: where and what the App may deploy. The operator's, never a repo's.
    staging_contexts: str = Field(
        "",
        validation_alias=_env("IDP_STAGING_CONTEXTS"),
        description="Comma-separated kubeconfig contexts the App may deploy to; the first is "
        "the default and a repository may pick another one of them. Empty: the kubeconfig's "
        "current context (or the in-cluster account), and no repository may pick one.",
    )
    staging_namespace_prefix: str = Field(
        "",
        pattern=r"^([a-z0-9][-a-z0-9]{0,19})?$",
        validation_alias=_env("IDP_STAGING_NAMESPACE_PREFIX"),
        description="Prefix of every staging namespace the rule derives from a repository: "
        "PREFIX + owner-repo-HASH-staging.",
    )
    staging_namespaces: str = Field(
        "",
        validation_alias=_env("IDP_STAGING_NAMESPACES"),
        description="Explicit staging namespaces, `owner/repo=namespace,…`; a repository "
        "not listed gets the derived one.",
    )
    staging_kinds: str = Field(
        "ServiceAccount,ConfigMap,Service,Deployment.apps,HorizontalPodAutoscaler.autoscaling,"
        "PodDisruptionBudget.policy,NetworkPolicy.networking.k8s.io,Ingress.networking.k8s.io",
        validation_alias=_env("IDP_STAGING_KINDS"),
        description="Comma-separated namespaced kinds the App may apply, as Kind.group "
        "(Kind alone for the core group). Anything else, cluster-scoped kinds always, is refused.",
    )
    staging_ingress_domains: str = Field(
        "",
        validation_alias=_env("IDP_STAGING_INGRESS_DOMAINS"),
        description="Comma-separated DNS suffixes an Ingress host in staging must end with; "
        "generated staging hosts are NAME.<first suffix>. Empty: no Ingress is applied.",
    )
    staging_rollout_timeout: float = Field(
        300.0,
        ge=0,
        le=600,
        validation_alias=_env("IDP_STAGING_ROLLOUT_TIMEOUT"),
        description="Seconds a deploy waits for its Deployments to roll out before it reports "
        "where the rollout stands; at most 600, inside the agent run's 900 s guard.",
    )
    staging_rollout_poll: float = Field(
        2.0,
        ge=0,
        validation_alias=_env("IDP_STAGING_ROLLOUT_POLL"),
        description="Seconds between two reads of a Deployment's status while waiting.",
    )

    # Template sets: where the sets a repository may pick live. The operator's, never a repo's.
    template_sets: str = Field(
        "",
        validation_alias=_env("IDP_TEMPLATE_SETS"),
        description="Comma-separated template sets a repository's `templates.set` may name, "
        "`name=owner/repo[/folder]@ref,…`; version X of a set is read at the tag vX. The "
        "built-in set `builtin` is always there.",
    )
    upkeep_interval: int = Field(
        7 * 24 * 3600,
        ge=0,
        validation_alias=_env("IDP_UPKEEP_INTERVAL"),
        description="Seconds between two upkeep sweeps (weekly by default): each repository "
        "with generated services gets at most one upgrade pull request and its dashboard "
        "issue. 0: no sweep (`/idp upgrade` and the dashboard's boxes still work).",
    )

    api_tokens: SecretStr | None = Field(
        None,
        validation_alias=_env("IDP_API_TOKENS"),
        description="Operator API tokens, comma-separated, each `name:token` (the name is "
        "what the audit log shows) or a bare token (named `operator`, then `operator-2`, …).",
    )

    github_client_id: str | None = Field(
        None,
        validation_alias=_env("GITHUB_CLIENT_ID"),
        description="The App's OAuth client id: enables console sign-in with GitHub.",
    )
    github_client_secret: SecretStr | None = Field(
        None,
        validation_alias=_env("GITHUB_CLIENT_SECRET"),
        description="The App's OAuth client secret, for console sign-in with GitHub.",
    )
    session_secret: SecretStr | None = Field(
        None,
        validation_alias=_env("IDP_SESSION_SECRET"),
        description="Signs the console's session cookie. Set it when several web processes "
        "serve the console; without it each process makes its own and sign-ins last only as "
        "long as the process.",
    )

    # -- Bounds on storage and requests (issue 16): what one caller can make the App hold --
    max_body_bytes: int = Field(
        2 * 1024 * 1024,
        ge=1,
        validation_alias=_env("IDP_MAX_BODY_BYTES"),
        description="Largest webhook body accepted. The largest event the App routes (an "
        "issue comment whose issue and comment bodies both hold GitHub's 65,536 characters, "
        "all escaped) is about 0.8 MB; GitHub caps payloads at 25 MB.",
    )
    session_ttl: int = Field(
        90 * 24 * 3600,
        ge=3600,
        validation_alias=_env("IDP_SESSION_TTL"),
        description="Seconds a session is kept after its last change (a running session is "
        "saved at every step, so only ended or abandoned sessions expire), with what hangs "
        "off it: its pull request link, its dry-run mark, feedback dedupe keys.",
    )
    namespace_lock_ttl: int = Field(
        24 * 3600,
        ge=60,
        validation_alias=_env("IDP_NAMESPACE_LOCK_TTL"),
        description="Seconds a staging namespace stays locked to the pull request that "
        "applied to it (renewed at each of its applies), unless a merge, a close or "
        "`/idp unlock` frees it first: a lost event or a dead worker holds it no longer.",
    )
    audit_max_entries: int = Field(
        1_000_000,
        ge=1000,
        validation_alias=_env("IDP_AUDIT_MAX_ENTRIES"),
        description="Entries the audit stream keeps (XADD MAXLEN ~: older ones are trimmed).",
    )
    feedback_max_entries: int = Field(
        100_000,
        ge=1000,
        validation_alias=_env("IDP_FEEDBACK_MAX_ENTRIES"),
        description="Entries the feedback stream keeps (XADD MAXLEN ~); export it before then.",
    )
    console_insecure_cookie: bool = Field(
        False,
        validation_alias=_env("IDP_CONSOLE_INSECURE_COOKIE"),
        description="Send the console's cookie without `Secure`, so the console works over "
        "plain http (local development). Off: the cookie only travels over https (browsers "
        "also accept it on http://localhost).",
    )

    @model_validator(mode="after")
    def _check_key_sources(self) -> Settings:
        if self.github_app_private_key and self.github_app_private_key_path:
            raise ValueError("set GITHUB_APP_PRIVATE_KEY or GITHUB_APP_PRIVATE_KEY_PATH, not both")
        twice = names_given_twice(self.named_operator_tokens)
        if twice:
            raise ValueError(
                f"IDP_API_TOKENS names {', '.join(twice)} more than once: give each token "
                "its own name (name:token), so the audit log tells operators apart"
            )
        return self

    @cached_property
    def webhook_secrets(self) -> list[bytes]:
        """Every configured webhook secret; empty when none is set."""
        if self.github_webhook_secret is None:
            return []
        return split_webhook_secrets(self.github_webhook_secret.get_secret_value())

    @cached_property
    def named_operator_tokens(self) -> list[tuple[str, str]]:
        """(name, token) of each IDP_API_TOKENS entry (see `parse_operator_tokens`)."""
        if self.api_tokens is None:
            return []
        return parse_operator_tokens(self.api_tokens.get_secret_value())

    @cached_property
    def operator_tokens(self) -> list[str]:
        return [token for _, token in self.named_operator_tokens]

    def private_key(self) -> str | None:
        """The App's PEM private key, from the variable or the file it names."""
        if self.github_app_private_key is not None:
            return self.github_app_private_key.get_secret_value().replace("\\n", "\n")
        if self.github_app_private_key_path is not None:
            try:
                return self.github_app_private_key_path.read_text()
            except OSError as exc:
                raise ConfigError(
                    f"GITHUB_APP_PRIVATE_KEY_PATH={self.github_app_private_key_path} "
                    f"cannot be read: {exc.strerror}"
                ) from None
        return None

    @property
    def uses_github(self) -> bool:
        """True when answers go to GitHub rather than the LocalForge."""
        if self.forge == "auto":
            return bool(self.github_app_id)
        return self.forge == "github"

    def key(self, *parts: object) -> str:
        """A Redis key under this install's prefix."""
        return ":".join([self.redis_prefix, *(str(p) for p in parts)])

    def secret_values(self) -> list[str]:
        """Every secret value configured, for redaction in logs and outgoing text."""
        values: list[str] = [s.decode() for s in self.webhook_secrets]
        for secret in (
            self.github_app_private_key,
            self.openai_api_key,
            self.anthropic_api_key,
            self.github_client_secret,
            self.session_secret,
        ):
            if secret is not None and secret.get_secret_value():
                values.append(secret.get_secret_value())
        values.extend(self.operator_tokens)
        return [v for v in values if len(v) >= 6]


def load_settings(**overrides: object) -> Settings:
    """Read the environment once; keyword overrides win (used by the CLI and tests)."""
    return Settings(**overrides)
