"""`/idp create-repo NAME [--from-service SERVICE]`: a repository for a service, without a
model. The App writes the todo itself (the rules path): create the repository (waits for
`/idp apply`), push the service's generated files (waits too: the approval covers them), and
protect the default branch at least as the repository's config asks (`branch_protection:`).

The ownership rule of the repository tools holds: the repository is created in the account
of the repository the command came from (the App's installation answering here), and the
steps after the creation touch only a repository this session created. Creating repositories
needs the App's opt-in `administration: write` permission; without it the command answers
with one comment naming the permission, and nothing else happens.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from app.domain.session import Session
from app.domain.todo import Task, Todo
from app.github.permissions import REPO_CREATION, grant_sentence, missing
from app.grammar.commands import Command, escape_user_text
from app.handling.agent_run import run_agent
from app.handling.cancel import resume_after_cancel
from app.handling.preflight import granted_permissions

if TYPE_CHECKING:
    from app.handling.context import JobContext

VERB = "create-repo"


def _tasks(full_name: str, service: str | None, requested_in: str) -> list[Task]:
    """Create (gated), push the service's files (gated; only with a service), protect."""
    owner, _, name = full_name.partition("/")
    key = f"repo:{name}"
    what = f"service `{service}`" if service else "a new repository"
    tasks = [
        Task(
            id=f"{key}:create",
            title=f"Create the repository {full_name}",
            tool="create_repository",
            args={
                "name": name,
                "owner": owner,
                "private": True,
                "description": f"{what.capitalize()}, requested in {requested_in}",
            },
        )
    ]
    if service:
        tasks.append(
            Task(
                id=f"{key}:push",
                title=f"Push the files of `{service}` to {full_name}",
                tool="push_service_files",
                args={"repository": full_name, "service": service},
                depends_on=[f"{key}:create"],
            )
        )
    tasks.append(
        Task(
            id=f"{key}:protect",
            title=f"Protect the default branch of {full_name}",
            tool="protect_repository_branch",
            args={"repository": full_name, "service": service},
            depends_on=[tasks[-1].id],
        )
    )
    return tasks


def plan_repository(session: Session, full_name: str, service: str | None) -> None:
    """Add the repository's tasks to the session's todo (a todo of its own when there is
    none); the same command again runs its failed steps again, done ones are kept."""
    fresh = _tasks(full_name, service, f"{session.repo}#{session.number}")
    if session.todo is None:
        session.todo = Todo(title=f"New repository `{full_name}`", meta={"planner": "rules"})
    known = {t.id: t for t in session.todo.tasks}
    for task in fresh:
        old = known.get(task.id)
        if old is None:
            session.todo.tasks.append(task)
        elif old.args != task.args or old.status in ("failed", "blocked", "running"):
            old.args, old.status, old.detail = task.args, "pending", None
    session.command = VERB
    if session.status in ("done", "failed"):
        session.status = "new"


def _files_missing(session: Session | None, service: str) -> str | None:
    """Why the session has no files of `service` to push, or None when it has."""
    request = session.request if session is not None else None
    if request is None or request.name != service:
        return (
            f"This issue holds no service `{service}`: `--from-service` pushes the files "
            f"`/idp create-service {service} --lang …` generated here. Run that first, or "
            "leave `--from-service` out for a repository with only a README."
        )
    if session is None or not session.files or not session.branch:
        return (
            f"The files of `{service}` are not generated and validated yet (they are once its "
            "pull request is open). `/idp status` shows where the session is."
        )
    return None


async def create_repo(ctx: JobContext, command: Command) -> str:
    """Check the owner, the service's files and the App's permission, then plan and run
    the repository's steps; the creation waits for `/idp apply`."""
    asked_owner, _, name = (command.text or "").rpartition("/")
    home = ctx.repo.owner
    if asked_owner and asked_owner.lower() != home.lower():
        await ctx.reply(
            f"The App creates repositories only in **{home}**, the account of this repository "
            f"and of the App installation answering here; it leaves "
            f"{escape_user_text(asked_owner, 40)} alone. `/idp create-repo {name}` creates "
            f"{home}/{name}; ask on a repository of {escape_user_text(asked_owner, 40)} for one "
            "there."
        )
        return "refused"
    full_name = f"{home}/{name}"
    if full_name.lower() == ctx.repo.full_name.lower():
        await ctx.reply(f"{full_name} is this repository. Choose another name.")
        return "refused"
    service = command.values.get("from_service")
    if service and (why := _files_missing(ctx.store.get(ctx.session_id), service)):
        await ctx.reply(why)
        return "answered"
    granted = await granted_permissions(ctx)
    lacking = missing(REPO_CREATION, granted) if granted is not None else {}
    if lacking:
        again = f"/idp create-repo {name}" + (f" --from-service {service}" if service else "")
        await ctx.reply(
            "`/idp create-repo` needs to create repositories, and "
            f"{grant_sentence(lacking, f'comment `{again}` again')}"
        )
        return "refused"

    def prepare(session: Session) -> None:
        resume_after_cancel(session)
        session.requester = session.requester or ctx.trigger.sender
        plan_repository(session, full_name, service)

    return await run_agent(ctx, prepare)
