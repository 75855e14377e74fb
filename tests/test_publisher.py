"""What the publisher writes on GitHub: one todo comment edited only on change and kept under
the comment limit, and one validated pull request per session."""

from __future__ import annotations

import asyncio
import sys

from app.agent.publisher import COMMENT_LIMIT, Publisher
from app.domain.service import ServiceRequest
from app.domain.session import Session, StepRecord
from app.domain.todo import Task, Todo
from app.github.forge import RepoRef
from tests.fakes import FakeForge, install_fake_validator
from tools.builtin.publish import CHECK_NAME, OPEN_PULL_REQUEST, branch_for
from tools.registry import ToolRegistry
from tools.spec import ToolContext

REPO = RepoRef("acme", "shop", 42)
FILES = {
    "deploy/payments-api/deployment.yaml": "kind: Deployment\n",
    "docs/README.md": "# payments-api\n",
}


def session(**kw) -> Session:
    base = dict(
        id="acme/shop#7",
        repo="acme/shop",
        number=7,
        requester="alice",
        request=ServiceRequest(name="payments-api", language="go"),
        todo=Todo(title="New service", tasks=[Task(id="t1", title="Validate")]),
    )
    return Session(**{**base, **kw})


def open_pr(settings, forge, s: Session, files=FILES, **args):
    ctx = ToolContext(settings=settings, session=s, forge=forge, repo=REPO, files=dict(files))
    registry = ToolRegistry([OPEN_PULL_REQUEST])
    return asyncio.run(registry.call("open_pull_request", args, ctx))


# -- the todo comment ------------------------------------------------------------------------


def test_todo_comment_is_created_once_and_edited_only_when_it_changes(settings):
    forge = FakeForge()
    publisher = Publisher(forge, settings)
    s = session()

    assert asyncio.run(publisher.sync_todo(s, REPO)) is True
    assert asyncio.run(publisher.sync_todo(s, REPO)) is False
    s.todo.tasks[0].status = "done"
    assert asyncio.run(publisher.sync_todo(s, REPO)) is True

    assert forge.count("create_comment") == 1 and forge.count("edit_comment") == 1
    assert forge.count("upsert_todo_comment") == 2
    (comment,) = forge.todo_comments()
    assert comment.id == s.comment_id and "- [x] Validate" in comment.body
    assert s.rendered_todo == comment.body


def test_a_failed_comment_write_is_retried_at_the_next_step(settings):
    forge = FakeForge(fail_on={"upsert_todo_comment"})
    publisher = Publisher(forge, settings)
    s = session()
    assert asyncio.run(publisher.sync_todo(s, REPO)) is False
    assert s.comment_id is None and s.rendered_todo is None
    forge.fail_on.clear()
    assert asyncio.run(publisher.sync_todo(s, REPO)) is True
    assert len(forge.todo_comments()) == 1


def test_a_huge_todo_is_cut_under_githubs_limit_with_a_pointer_to_the_rest(settings):
    forge = FakeForge()
    tasks = [Task(id=f"t{i}", title=f"Task {i} " + "x" * 200) for i in range(400)]
    s = session(todo=Todo(title="Huge", tasks=tasks), pr_url="https://github.com/acme/shop/pull/9")
    asyncio.run(Publisher(forge, settings).sync_todo(s, REPO))

    (comment,) = forge.todo_comments()
    assert len(comment.body) <= COMMENT_LIMIT
    assert comment.body.startswith("<!-- idp-copilot:todo session=acme/shop#7 -->")
    assert comment.body.rstrip().endswith(
        "the full list is in the pull request https://github.com/acme/shop/pull/9._"
    )
    assert "- [ ] Task 0 " in comment.body and "Task 399" not in comment.body


def test_secrets_never_reach_the_todo_comment(settings):
    forge = FakeForge()
    secret = settings.secret_values()[0]
    s = session()
    s.todo.tasks[0].detail = f"failed with {secret}"
    asyncio.run(Publisher(forge, settings).sync_todo(s, REPO))
    (comment,) = forge.todo_comments()
    assert secret not in comment.body and "failed with [redacted]" in comment.body


def test_a_reply_is_posted_once_per_session(settings):
    forge = FakeForge()
    publisher = Publisher(forge, settings)
    s = session()
    assert asyncio.run(publisher.reply(s, REPO, "Free text needs a model.")) is True
    assert asyncio.run(publisher.reply(s, REPO, "Free text needs a model.")) is False
    assert forge.count("post_comment") == 1


# -- the pull request ------------------------------------------------------------------------


def test_pull_request_holds_every_file_in_one_commit_and_links_the_issue(settings, monkeypatch):
    seen = install_fake_validator(monkeypatch)
    forge = FakeForge()
    s = session()
    s.steps.append(
        StepRecord(
            tool="generate_k8s_manifests",
            idempotency_key="k",
            ok=True,
            output={"summary": "Deployment, Service and HPA for payments-api"},
            started_at=0,
            finished_at=1,
        )
    )
    result = open_pr(settings, forge, s, summary="A Go API for payments, ping @everyone.")

    assert result.ok, result.error
    assert seen == [FILES]
    (commit,) = forge.commits
    assert commit["files"] == FILES and commit["branch"] == "idp/acme-shop-7"
    assert commit["message"].startswith("Add service payments-api\n\nRequested in acme/shop#7.")
    (pull,) = forge.pulls.values()
    assert pull.title == "Add service payments-api" and not pull.draft
    assert "Requested by @alice in #7." in pull.body
    assert "A Go API for payments, ping @\u200beveryone." in pull.body
    assert "- Deployment, Service and HPA for payments-api" in pull.body
    assert "- `deploy/payments-api/deployment.yaml`" in pull.body
    assert "| ✅ | all files valid |" in pull.body
    assert pull.body.rstrip().endswith("Closes #7")
    assert result.output == {
        "pr_number": pull.number,
        "pr_url": pull.url,
        "branch": "idp/acme-shop-7",
        "head_sha": commit["sha"],
        "changed": True,
        "committed_paths": sorted(FILES),
        "summary": f"Pull request #{pull.number} with 2 files",
    }
    (check,) = forge.check_runs
    assert check["name"] == CHECK_NAME and check["head_sha"] == commit["sha"]
    assert check["conclusion"] == "success" and "all files valid" in check["summary"]


def test_the_same_files_again_make_no_commit_and_no_second_pr(settings, monkeypatch):
    install_fake_validator(monkeypatch)
    forge = FakeForge()
    first = open_pr(settings, forge, session())
    again = open_pr(settings, forge, session())
    assert again.ok and again.output["changed"] is False
    assert again.output["pr_number"] == first.output["pr_number"]
    assert len(forge.commits) == 1 and len(forge.pulls) == 1 and len(forge.check_runs) == 1


def test_invalid_files_never_reach_a_pull_request(settings, monkeypatch):
    install_fake_validator(monkeypatch, bad_paths=("docs/README.md",))
    forge = FakeForge()
    result = open_pr(settings, forge, session())
    assert not result.ok
    assert result.error == (
        "The generated files did not pass validation, so no pull request was opened: "
        "docs/README.md: not valid YAML"
    )
    assert forge.count("commit_files") == 0 and not forge.pulls


def test_without_the_validators_nothing_is_published(settings, monkeypatch):
    monkeypatch.setitem(sys.modules, "tools.validate", None)
    forge = FakeForge()
    result = open_pr(settings, forge, session())
    assert not result.ok and "validators (tools.validate) are not installed" in result.error
    assert forge.count("commit_files") == 0


def test_on_a_pull_request_session_the_body_only_refers_back(settings, monkeypatch):
    install_fake_validator(monkeypatch)
    forge = FakeForge()
    result = open_pr(settings, forge, session(is_pull_request=True), draft=True)
    (pull,) = forge.pulls.values()
    assert result.ok and pull.draft
    assert "Closes" not in pull.body and pull.body.rstrip().endswith("Requested in #7")


def test_nothing_to_commit_and_forge_failures_are_sentences(settings, monkeypatch):
    install_fake_validator(monkeypatch)
    empty = open_pr(settings, FakeForge(), session(), files={})
    assert empty.error == "There are no generated files to commit yet: run the generators first."
    broken = open_pr(settings, FakeForge(fail_on={"ensure_pull_request"}), session())
    assert broken.error == (
        "Publishing the pull request failed: GitHub answered 502 to ensure_pull_request (injected)"
    )


def test_branch_names_are_stable_and_valid_git_refs():
    assert branch_for("acme/shop#7") == "idp/acme-shop-7"
    assert branch_for("Org.Name/Repo_X#12") == "idp/org-name-repo-x-12"
