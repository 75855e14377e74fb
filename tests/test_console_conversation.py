"""The session page as a conversation, read without JavaScript: requests, the agent's turns
and each tool call (collapsed, with arguments and result) in order, for the rules planner
and a model; Markdown rendered and sanitized, so hostile text in a request, a tool's
arguments or a model's answer stays text; the files as a tree with the last revision's diff."""

from __future__ import annotations

import asyncio
import time
from html.parser import HTMLParser

import pytest

from app.api.conversation import conversation
from app.api.files import commits_of, diff_files, file_tree, unified_diff
from app.console.markdown import MAX_MARKDOWN, to_html
from app.domain.session import Session, StepRecord
from app.events import EventBus
from app.github.forge import RepoRef
from app.github.local_forge import LocalForge

HOSTILE_REQUEST = '<script>alert("request")</script> build **payments**'
HOSTILE_ARG = "<img src=x onerror=alert('arg')>"
HOSTILE_MODEL = (
    "Done. <style>body{display:none}</style> [click me](javascript:alert('model')) "
    '<a href="https://evil.example" onclick="alert(1)">x</a>\n\n- [x] manifests\n- [ ] deploy'
)


def step(tool: str, args: dict, output: dict, at: float, ok: bool = True, **kw) -> StepRecord:
    return StepRecord(
        tool=tool,
        args=args,
        idempotency_key=f"{tool}-{at}",
        ok=ok,
        output=output,
        error=None if ok else "it broke",
        started_at=at,
        finished_at=at + 0.5,
        **kw,
    )


def model_session() -> Session:
    calls = [
        {"id": "c1", "name": "validate_project_name_and_type", "arguments": {"name": HOSTILE_ARG}}
    ]
    return Session(
        id="acme/shop#4",
        repo="acme/shop",
        number=4,
        requester="alice",
        request_text=HOSTILE_REQUEST,
        created_at=100.0,
        messages=[
            {"role": "user", "content": "<request>…</request>"},
            {"role": "assistant", "content": "Checking the name first.", "tool_calls": calls},
            {"role": "tool", "tool_call_id": "c1", "content": '{"valid": false}', "is_error": True},
            {"role": "assistant", "content": HOSTILE_MODEL, "tool_calls": []},
        ],
        steps=[
            step("validate_project_name_and_type", {"name": HOSTILE_ARG}, {}, 110.0, ok=False),
            step("post_comment", {}, {"comment_id": 9}, 130.0),
        ],
    )


class Tags(HTMLParser):
    """Every start tag with its attributes, to check what markup a page really has."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def tags_of(html: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = Tags()
    parser.feed(html)
    return parser.tags


# -- the conversation, as data --------------------------------------------------------------


def test_a_model_conversation_interleaves_turns_tool_calls_and_operator_messages():
    said = [{"time": 120.0, "data": {"from": "bob", "text": "use go", "action": "message"}}]

    entries = conversation(model_session(), said)

    assert [(e["kind"], e.get("tool") or e.get("who")) for e in entries] == [
        ("request", "alice"),
        ("agent", "agent"),
        ("tool", "validate_project_name_and_type"),
        ("agent", "agent"),
        ("request", "bob"),  # said at 120, between the call (110) and the comment (130)
        ("tool", "post_comment"),
    ]
    call = entries[2]
    assert call["ok"] is False and call["result"] == '{"valid": false}'
    assert HOSTILE_ARG in call["args"] and call["seconds"] == 0.5


def test_a_call_by_alias_with_arguments_the_loop_filled_in_is_one_entry():
    calls = [{"id": "c1", "name": "Estimate-Cost", "arguments": {"replicas": 2}}]
    session = Session(
        id="acme/shop#9",
        repo="acme/shop",
        number=9,
        created_at=10.0,
        messages=[
            {"role": "user", "content": "how much?"},
            {"role": "assistant", "content": None, "tool_calls": calls},
            {"role": "tool", "tool_call_id": "c1", "content": '{"monthly_usd": 3.5}'},
        ],
        steps=[step("cost_estimate", {"replicas": 2, "cpu": 100}, {"monthly_usd": 3.5}, 11.0)],
    )
    aliases = {"estimate_cost": "cost_estimate"}

    entries = conversation(
        session, [], lambda name: aliases.get(name.lower().replace("-", "_"), name)
    )

    assert [e["kind"] for e in entries] == ["request", "tool"]
    assert entries[1]["tool"] == "Estimate-Cost" and entries[1]["seconds"] == 0.5
    assert entries[1]["result"] == '{"monthly_usd": 3.5}'


def test_a_rules_session_is_its_steps_in_order_after_the_request():
    session = Session(
        id="acme/shop#5",
        repo="acme/shop",
        number=5,
        command="create-service",
        created_at=50.0,
        steps=[
            step("generate_k8s_manifests", {"name": "a"}, {"files": ["x"]}, 60.0, task_id="t2"),
            step("validate_project_name_and_type", {"name": "a"}, {"ok": True}, 55.0),
        ],
    )

    entries = conversation(session, [])

    assert [e.get("tool") or e["text"] for e in entries] == [
        "/idp create-service",
        "validate_project_name_and_type",
        "generate_k8s_manifests",
    ]
    assert entries[2]["task"] == "t2" and '"files"' in entries[2]["result"]


# -- Markdown -------------------------------------------------------------------------------


def test_markdown_renders_and_hostile_markup_stays_text():
    html = str(to_html(HOSTILE_MODEL + "\n\n`code` **bold** [docs](https://example.com/a)"))

    assert "<code>code</code>" in html and "<strong>bold</strong>" in html
    assert '<a href="https://example.com/a" rel="noopener noreferrer nofollow">docs</a>' in html
    assert '<input type="checkbox" disabled checked> manifests' in html
    assert "&lt;style&gt;" in html and "&lt;a href=" in html
    tags = tags_of(html)
    assert {t for t, _ in tags} <= {"p", "a", "code", "strong", "ul", "li", "input"}
    assert not any(k.startswith("on") or k == "style" for _, attrs in tags for k in attrs)
    assert all(attrs.get("href", "").startswith("https://") for t, attrs in tags if t == "a")


def test_markdown_of_a_huge_text_is_cut_before_parsing():
    html = str(to_html("*" * (MAX_MARKDOWN * 5)))

    assert len(html) < MAX_MARKDOWN * 2 and "(cut)" in html


@pytest.mark.parametrize("pattern", ["[", "*a", "[a](", "<a ", "> ", "- [ ] "])
def test_markdown_of_hostile_text_takes_a_bounded_time(pattern):
    text = pattern * (MAX_MARKDOWN * 10 // len(pattern))  # ten times the bound
    started = time.perf_counter()
    to_html.__wrapped__(text)  # the uncached work

    assert time.perf_counter() - started < 10  # about 0.5 s for the worst, here


# -- the page -------------------------------------------------------------------------------


def test_the_session_page_shows_the_conversation_with_tool_calls_collapsed(operator, store):
    store.save(model_session())

    page = operator.get("/console/sessions/acme/shop/4")

    assert page.status_code == 200
    html = page.text
    conversation_html = html[html.index('id="conversation"') : html.index('id="chat"')]
    assert "Checking the name first." in conversation_html
    tags = tags_of(conversation_html)
    details = [attrs for tag, attrs in tags if tag == "details"]
    assert len(details) == 2 and not any("open" in d for d in details)
    assert "<code>validate_project_name_and_type</code>" in conversation_html
    assert "&lt;img src=x onerror=alert(&#39;arg&#39;)&gt;" in conversation_html


def test_hostile_text_never_becomes_markup_on_the_session_page(operator, store):
    store.save(model_session())

    page = operator.get("/console/sessions/acme/shop/4")

    html = page.text
    assert '&lt;script&gt;alert("request")&lt;/script&gt; build <strong>payments</strong>' in html
    scripts = [attrs for tag, attrs in tags_of(html) if tag == "script"]
    assert len(scripts) == 1 and scripts[0].get("nonce")  # only the page's own script
    # the one <style> is the page's own, in <head>
    assert [t for t, _ in tags_of(html) if t in ("style", "img", "iframe")] == ["style"]
    handlers = [(t, k) for t, attrs in tags_of(html) for k in attrs if k.startswith("on")]
    assert handlers == []
    assert "javascript:" not in "".join(str(a.get("href")) for t, a in tags_of(html) if t == "a")
    csp = page.headers["content-security-policy"]
    assert "script-src 'nonce-" in csp and "default-src 'self'" in csp


def test_an_operator_message_joins_the_conversation(operator, store, api_settings, redis_conn):
    store.save(model_session())
    EventBus(redis_conn, api_settings).publish(
        "acme/shop#4", "message", {"from": "operator", "text": "and **staging** too"}
    )

    html = operator.get("/console/sessions/acme/shop/4/live").text

    assert 'id="live"' in html and 'id="conversation"' in html
    assert "<strong>staging</strong>" in html.split('id="conversation"')[1]


def test_the_apps_answer_to_a_command_is_an_agent_turn(operator, store, api_settings, redis_conn):
    store.save(model_session())
    bus = EventBus(redis_conn, api_settings)
    bus.publish("acme/shop#4", "message", {"from": "bob", "text": "/idp status"})
    bus.publish("acme/shop#4", "reply", {"text": "Session `acme/shop#4` is **done**."})

    html = operator.get("/console/sessions/acme/shop/4/live").text.split('id="conversation"')[1]

    asked, answered = html.index("/idp status"), html.index("<strong>done</strong>")
    assert asked < answered
    assert '<span class="who">Agent</span>' in html[asked:answered]


# -- files ----------------------------------------------------------------------------------


def test_the_file_tree_puts_folders_first_and_nests_them():
    tree = file_tree({"b.txt": "1\n", "deploy/x/d.yaml": "a\nb\n", "a.md": "", "deploy/c.yml": ""})

    assert [n["name"] for n in tree] == ["deploy", "a.md", "b.txt"]
    deploy = tree[0]["children"]
    assert [n["name"] for n in deploy] == ["x", "c.yml"]
    assert deploy[0]["children"][0] == {
        "name": "d.yaml",
        "path": "deploy/x/d.yaml",
        "content": "a\nb\n",
        "lines": 2,
    }


def test_diffs_are_unified_and_bounded():
    assert unified_diff("a", "x\n", "x\n") == ""
    text = unified_diff("a.txt", "one\ntwo\n", "one\nthree\n")
    assert text.splitlines() == [
        "--- a/a.txt",
        "+++ b/a.txt",
        "@@ -1,2 +1,2 @@",
        " one",
        "-two",
        "+three",
    ]
    assert diff_files({"new.txt": None}, {"new.txt": "hi\n"})[0]["diff"].startswith("--- /dev/null")
    assert "too large to diff" in unified_diff("big", "x\n" * 6000, "y\n" * 6000)


def test_the_session_page_shows_the_files_and_the_last_revisions_diff(
    operator, store, api_settings
):
    forge = LocalForge(api_settings.local_forge_root)
    repo = RepoRef.parse("acme/shop")
    first = {"deploy/app.yaml": "replicas: 2\nport: 8080\n", "docs/README.md": "# shop\n"}
    one = asyncio.run(forge.commit_files(repo, "idp/shop-6", first, "Add shop"))
    second = {**first, "deploy/app.yaml": "replicas: 5\nport: 8080\n"}
    two = asyncio.run(forge.commit_files(repo, "idp/shop-6", second, "Set replicas=5"))
    session = Session(
        id="acme/shop#6",
        repo="acme/shop",
        number=6,
        files=second,
        steps=[
            step("open_pull_request", {}, {"head_sha": one.sha}, 10.0),
            step("review_revision", {}, {"outcome": "revised", "sha": two.sha}, 20.0),
        ],
    )
    store.save(session)
    assert commits_of(session) == [one.sha, two.sha]

    html = operator.get("/console/sessions/acme/shop/6").text
    files = operator.get("/api/sessions/acme/shop/6/files", headers=AUTH_HEADERS).json()

    assert 'id="file-tree"' in html and "<code>app.yaml</code>" in html
    assert "replicas: 5\nport: 8080" in html  # the file's content in the tree
    assert f"Commit <code>{two.sha[:7]}</code> against <code>{one.sha[:7]}</code>" in html
    assert '<span class="del">-replicas: 2</span>' in html
    assert '<span class="add">+replicas: 5</span>' in html
    assert files["revision"]["files"] == [
        {
            "path": "deploy/app.yaml",
            "diff": "--- a/deploy/app.yaml\n+++ b/deploy/app.yaml\n@@ -1,2 +1,2 @@\n"
            "-replicas: 2\n+replicas: 5\n port: 8080\n",
        }
    ]
    assert [n["name"] for n in files["tree"]] == ["deploy", "docs"]


def test_a_session_before_its_first_revision_shows_no_diff(operator, store):
    store.save(Session(id="acme/shop#8", repo="acme/shop", number=8, files={"a.txt": "a\n"}))

    html = operator.get("/console/sessions/acme/shop/8").text

    assert "<code>a.txt</code>" in html and 'id="revision"' not in html


AUTH_HEADERS = {"Authorization": "Bearer operator-token-for-tests"}
