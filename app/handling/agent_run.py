"""Run the agent for one session under its lock: load or create, prepare, run, tidy up.

The repo's config shapes the run: which tools the agent may use, which wait for approval,
the arguments it fixes (draft pull requests, the manifests path, the staging namespace),
the labels the pull request gets. Progress goes to the event bus for the operator console.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import redis

from app.agent.guard import GuardLimits
from app.agent.loop import Agent, RulesStrategy
from app.agent.providers.base import ChatModel
from app.agent.providers.budgeted import budgeted
from app.agent.providers.factory import make_chat_model
from app.agent.systems import DEFAULT_NAME, AgentSystemStore
from app.config import ConfigError, Settings
from app.domain.service import LANGUAGES, ServiceRequest
from app.domain.session import Session, StepRecord, session_id_for
from app.events import EventBus
from app.github.errors import ForgeError
from app.handling.audited import AuditedCluster
from app.handling.languages import set_languages
from app.handling.preflight import may_write
from app.repo_config import RepoConfig

if TYPE_CHECKING:
    from app.handling.context import JobContext

log = logging.getLogger(__name__)

# A `prepare` callback returns False when, under the lock, there turns out to be nothing to run.
Prepare = Callable[[Session], "bool | None"]
_BUILTIN = ServiceRequest.model_fields


def pr_session_key(settings: Settings, repo: str, pr_number: int) -> str:
    return settings.key("pr-session", repo.lower(), pr_number)


def session_id_of(
    connection: redis.Redis, settings: Settings, repo: str, number: int, is_pr: bool
) -> str:
    """The session a trigger belongs to: a comment on the App's pull request (or its merge)
    continues the session of the issue that asked for it."""
    if is_pr:
        linked = connection.get(pr_session_key(settings, repo, number))
        if linked is not None:
            return linked.decode() if isinstance(linked, bytes) else linked
    return session_id_for(repo, number)


def with_defaults(req: ServiceRequest, config: RepoConfig) -> ServiceRequest:
    """`req` with the repo's defaults where the requester did not say: a missing language,
    and a team or type left at the built-in default."""
    updates: dict[str, Any] = {}
    if req.language is None and config.defaults.language is not None:
        updates["language"] = config.defaults.language
    if req.team == _BUILTIN["team"].default and config.defaults.team != req.team:
        updates["team"] = config.defaults.team
    if req.type == _BUILTIN["type"].default and config.defaults.type != req.type:
        updates["type"] = config.defaults.type
    return req.model_copy(update=updates) if updates else req


def fixed_tool_args(config: RepoConfig, session: Session) -> dict[str, dict[str, Any]]:
    """Tool arguments the config decides; the agent passes each only to tools declaring it."""
    fixed: dict[str, dict[str, Any]] = {
        "open_pull_request": {"draft": config.draft_pull_requests},
    }
    # The validating tool checks the language against the repository's template set.
    fixed["validate_project_name_and_type"] = {
        "template_set": config.templates.set,
        "template_version": config.templates.version,
    }
    # Generators take the folder template; they fill in {name} themselves.
    # and render with the repository's template set (the operator's catalog checked it when
    # the config was read).
    for tool in (
        "generate_k8s_manifests",
        "setup_cicd_pipeline",
        "setup_observability",
        "generate_documentation",
        "apply_template",
    ):
        fixed[tool] = {
            "base_path": config.manifests_path,
            "template_set": config.templates.set,
            "template_version": config.templates.version,
        }
    # The least protection a repository `/idp create-repo` made gets: the config's.
    fixed["protect_repository_branch"] = {
        "protection": config.branch_protection.model_dump(mode="json")
    }
    if session.request is not None:
        # Where the base manifests are; the namespace is the operator's (tools/staging.py).
        fixed["deploy_to_staging"] = {
            "manifests_dir": f"{config.manifests_dir(session.request.name)}/k8s/base",
        }
    return fixed


def _new_session(ctx: JobContext) -> Session:
    t = ctx.trigger
    return Session(
        id=ctx.session_id,
        repo=t.repo,
        number=t.number,
        is_pull_request=t.is_pull_request,
        installation_id=t.installation_id,
        requester=t.sender,
    )


def _cluster_factory(ctx: JobContext) -> Callable[[], Any]:
    if ctx.cluster is not None:
        return lambda: ctx.cluster
    context = ctx.config.staging.context

    def make() -> Any:
        from tools.cluster import KubernetesCluster

        return KubernetesCluster.from_settings(ctx.settings, context=context)

    return make


@dataclass
class Profile:
    """What the repo's agent system (`agent_system:` in its config) changes for a run."""

    chat_model: ChatModel | None
    tools: list[str] | None
    limits: GuardLimits | None = None


def _narrow(allowed: list[str] | None, also: list[str] | None) -> list[str] | None:
    if allowed is None or also is None:
        return also if allowed is None else allowed
    return [t for t in allowed if t in also]


async def agent_profile(ctx: JobContext) -> Profile:
    """The provider, model, tools and loop limits of the repo's agent system. `default` is
    the worker's own provider (IDP_LLM_PROVIDER, `rules` unless set). A profile that does
    not exist or whose provider has no key is said once in a comment; the default runs."""
    config = ctx.config
    default = Profile(ctx.chat_model, config.tools)
    if config.agent_system == DEFAULT_NAME:
        return default
    system = AgentSystemStore(ctx.connection, ctx.settings).get(config.agent_system)
    problem = None
    if system is None:
        problem = f"there is no agent system `{config.agent_system}` on this App"
    else:
        update: dict[str, Any] = {"llm_provider": system.provider}
        if system.model:
            update["openai_model" if system.provider == "openai" else "anthropic_model"] = (
                system.model
            )
        try:
            chat_model = budgeted(
                make_chat_model(ctx.settings.model_copy(update=update)),
                ctx.connection,
                ctx.settings,
                ctx.trigger.installation_id,
            )
        except ConfigError as exc:
            problem = f"agent system `{system.name}` cannot run here: {exc}"
        else:
            return Profile(chat_model, _narrow(config.tools, system.tools), system.limits())
    await ctx.reply(
        f"`.github/idp-copilot.yml` asks for {problem}. I am using the default planner; "
        "an operator can list agent systems at `/api/agent-systems`.",
        once_key=("agent-system", ctx.session_id, problem),
    )
    return default


def build_agent(
    ctx: JobContext,
    session: Session,
    profile: Profile | None = None,
    languages: Sequence[str] = LANGUAGES,
) -> Agent:
    """The agent for this job, shaped by the repo's config and its agent system; the rules
    planner asks for one of `languages` (the template set's) when the request has none."""
    config = ctx.config
    profile = profile or Profile(ctx.chat_model, config.tools)
    return Agent(
        ctx.settings,
        ctx.tools(),
        ctx.forge,
        ctx.store,
        chat_model=profile.chat_model,
        cluster=AuditedCluster(_cluster_factory(ctx), ctx.scope),
        on_event=EventBus(ctx.connection, ctx.settings).sink(session.id),
        allowed_tools=profile.tools,
        approval_tools=config.approval_required,
        tool_args=fixed_tool_args(config, session),
        limits=profile.limits,
        strategy=RulesStrategy(languages) if profile.chat_model is None else None,
    )


async def run_agent(ctx: JobContext, prepare: Prepare) -> str:
    """One agent run for the trigger's session; returns the session's final status.

    The lock makes runs of one session strictly one at a time; its TTL frees it when a
    worker dies, and the loop renews it at every step. A job that finds the session held
    joins its line (app/session_line.py): `SessionQueued` propagates to jobs/tasks.py, and
    the rest of the trigger runs when the holder lets go.
    """
    with ctx.store.lock(ctx.session_id) as lock:
        session = ctx.store.get(ctx.session_id) or _new_session(ctx)
        if session.installation_id is None:
            session.installation_id = ctx.trigger.installation_id
        if prepare(session) is False:
            return session.status
        if not await may_write(ctx, session):
            ctx.store.save(session)  # the todo names the missing permission; nothing else
            return session.status
        session.job_id = ctx.job_id
        ctx.store.save(session)
        if session.command == "create-repo":
            # The App owns this todo (app/handling/create_repo.py): the rules run it, with a
            # model configured or not.
            profile = Profile(None, ctx.config.tools)
        else:
            profile = await agent_profile(ctx)
        offered = await set_languages(ctx)
        agent = build_agent(ctx, session, profile, offered.languages)
        session = await agent.run(session, lock=lock)
        await after_run(ctx, session)
        session.job_id = None
        ctx.store.save(session)
        return session.status


async def after_run(ctx: JobContext, session: Session) -> None:
    """Link the App's pull request to the session, and give it the config's labels once."""
    if session.pr_number is None:
        return
    # The link lives as long as the session (refreshed at every run that reaches here).
    link = pr_session_key(ctx.settings, session.repo, session.pr_number)
    ctx.connection.set(link, session.id, ex=ctx.settings.session_ttl)
    labels = sorted(set(ctx.config.labels))
    key = f"labels:{session.pr_number}:{','.join(labels)}"
    if not labels or session.step_for(key) is not None:
        return
    started = time.time()
    try:
        await ctx.forge.add_labels(ctx.repo, session.pr_number, labels)
    except ForgeError as exc:  # labels are a courtesy: the next run tries again
        log.warning("labels on %s#%s not added: %s", session.repo, session.pr_number, exc)
        return
    session.steps.append(
        StepRecord(
            tool="add_labels",
            args={"labels": labels},
            idempotency_key=key,
            ok=True,
            started_at=started,
            finished_at=time.time(),
        )
    )
