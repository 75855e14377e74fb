"""The console in a real browser: Debian's headless Chromium, driven by selenium, against a
real uvicorn server and a real `idp-copilot worker`. An operator signs in with a token,
starts a session from the chat box, watches its todo tick to the end through Server-Sent
Events (the page is never reloaded), opens a tool call in the conversation, sends a message
with hostile markup in it and sees the agent's answer stream in, then follows the pull
request link. The end is `done`, or `waiting` when only approval-gated steps (namespace,
deploy) are left for `/idp apply`. With IDP_UPDATE_SCREENSHOT=1 the screenshot of that page
replaces docs/console.png, where the README shows it (a plain run leaves the tree clean).
A second story reads a revised session's file tree and diff, and the feedback page."""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

import pytest

from app.server import build_app
from app.state import SessionStore
from tests.operator_api import TOKEN, operator_settings, serve, worker_process

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
DOCS_SCREENSHOT = Path(__file__).parent.parent / "docs" / "console.png"
CHROME_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--no-first-run",
    "--disable-sync",
    "--disable-component-update",
    "--window-size=1280,1100",
    # a page kept in the back-forward cache would keep its event stream open
    "--disable-features=BackForwardCache",
)

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("app.agent.loop") is None,
    reason="the agent loop (app/agent/loop.py) is not there yet: no session can run to done",
)


@pytest.fixture
def browser(tmp_path):
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.fail("chromium and chromium-driver are missing: run scripts/ensure-chromium.sh")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in CHROME_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'chromium-profile'}")
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(20)
    try:
        yield driver
    finally:
        driver.quit()


def test_an_operator_watches_a_chat_session_run_to_the_end_and_opens_its_pull_request(
    browser, settings, redis_conn, tmp_path
):
    api_settings = operator_settings(settings)
    app = build_app(api_settings, redis_conn, heartbeat=2)

    with serve(app) as base, worker_process(api_settings):
        try:
            files = watch_a_session(browser, base, SessionStore(redis_conn, api_settings), tmp_path)
        finally:
            browser.get("about:blank")  # closes the page's event stream before the server stops

    assert files, "the pull request holds no files"
    assert (tmp_path / "console.png").stat().st_size > 10_000


# The live part of the page, read in one script run: the page's own script swaps it for a
# fresh copy whenever events arrive, so element handles held across calls would go stale.
READ_LIVE = """
const live = document.getElementById("live");
return {
  status: live.dataset.status,
  text: live.innerText,
  tasks: Array.from(live.querySelectorAll("#tasks li")).map(
    (li) => [li.className, li.querySelector("input").checked]),
  pr: (document.getElementById("pr-link") || {}).href || null,
};
"""
ENDED = ("done", "waiting", "failed", "cancelled")


def watch_a_session(browser, base: str, store: SessionStore, tmp_path: Path) -> list[str]:
    """Sign in, start, watch, screenshot, follow the pull request; returns its file names."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as seen
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, 40, ignored_exceptions=(StaleElementReferenceException,))
    browser.get(f"{base}/console/sessions")
    browser.find_element(By.ID, "token").send_keys(TOKEN)
    browser.find_element(By.ID, "sign-in").click()
    wait.until(seen.presence_of_element_located((By.ID, "chat")))
    assert "operator" in browser.find_element(By.ID, "signed-in-as").text

    # The test holds the session's lock (the first dry run of acme/payments is #1) until the
    # page is open, so every tick the page shows afterwards has to come in live.
    with store.lock("acme/payments#1"):
        browser.find_element(By.ID, "repo").send_keys("acme/payments")
        browser.find_element(By.ID, "text").send_keys(
            "/idp create-service payments-api --lang python"
        )
        browser.find_element(By.ID, "start").click()
        wait.until(seen.url_to_be(f"{base}/console/sessions/acme/payments/1"))
        assert browser.find_element(By.ID, "status").text == "new"
        browser.execute_script("window.stillTheSamePage = true;")

    # `data-status` comes with the server-rendered part of the page, so once it says the run
    # has ended, the todo next to it is the final one too.
    live = wait.until(
        lambda driver: (page := driver.execute_script(READ_LIVE))["status"] in ENDED and page,
        "the page never showed the end of the run: does the worker publish the agent's "
        "events (EventBus.sink as the Agent's on_event)?",
    )
    assert live["status"] in ("done", "waiting"), f"the run ended {live['status']}:\n{live['text']}"
    states = [state for state, _ in live["tasks"]]
    assert set(states) <= {"done", "skipped", "waiting_approval"}, live["text"]
    assert "done" in states
    assert all(ticked == (state in ("done", "skipped")) for state, ticked in live["tasks"])
    assert live["pr"], "no pull request link"
    assert browser.execute_script("return window.stillTheSamePage === true;")

    read_the_conversation(browser, wait)

    # tall enough for the conversation's start, its answer and the todo beside it
    browser.set_window_size(1280, 1900)
    browser.execute_script("window.scrollTo(0, 0);")
    shot = tmp_path / "console.png"
    assert browser.save_screenshot(str(shot))
    if os.environ.get("IDP_UPDATE_SCREENSHOT") == "1":
        shutil.copyfile(shot, DOCS_SCREENSHOT)
    assert browser.execute_script("return window.stillTheSamePage === true;")

    tree = browser.find_element(By.ID, "file-tree")
    first_file = tree.find_element(By.CSS_SELECTOR, "li[data-path] summary")
    first_file.click()
    assert first_file.find_element(By.XPATH, "..").find_element(By.TAG_NAME, "pre").text.strip()

    # clicked through a fresh lookup each try: the link may be swapped while it is clicked
    wait.until(lambda driver: driver.find_element(By.ID, "pr-link").click() or True)
    wait.until(seen.presence_of_element_located((By.ID, "files")))
    assert "Pull request #" in browser.find_element(By.ID, "pr-title").text
    return [e.text for e in browser.find_elements(By.CSS_SELECTOR, "#files summary code")]


HOSTILE = (
    "/idp status\n\n**Hostile:** <script>window.pwned = 1</script> "
    '<img src=x onerror="window.pwned = 2"> [x](javascript:window.pwned=3)'
)
READ_CONVERSATION = """
const items = Array.from(document.querySelectorAll("#conversation > li"));
return items.map((li) => ({
  kind: li.className,
  text: li.innerText,
  strong: Array.from(li.querySelectorAll(".text strong")).map((s) => s.textContent),
  open: Array.from(li.querySelectorAll("details")).map((d) => d.open),
}));
"""


def read_the_conversation(browser, wait) -> None:
    """Open a tool call, send a message with hostile markup, wait for the answer."""
    from selenium.webdriver.common.by import By

    entries = browser.execute_script(READ_CONVERSATION)
    kinds = [e["kind"] for e in entries]
    assert kinds[0] == "request" and "tool" in kinds, entries
    assert not any(any(e["open"]) for e in entries), "tool calls are collapsed at first"
    call = browser.find_element(By.CSS_SELECTOR, "#conversation li.tool details")
    call.find_element(By.TAG_NAME, "summary").click()
    assert call.get_attribute("open") is not None
    args = call.find_element(By.CSS_SELECTOR, "pre.args").text
    assert args.startswith("{"), args
    assert call.find_element(By.CSS_SELECTOR, "pre.result").is_displayed()

    box = browser.find_element(By.ID, "text")
    box.send_keys(HOSTILE)
    browser.find_element(By.ID, "send").click()

    def answered(driver):
        entries = driver.execute_script(READ_CONVERSATION)
        mine = [e for e in entries if "window.pwned = 1" in e["text"]]
        answer = [e for e in entries if e["kind"] == "agent" and "acme/payments#1 is" in e["text"]]
        return (mine and answer and (mine[-1], answer[-1], entries)) or False

    mine, answer, entries = wait.until(answered, "the answer to /idp status never streamed in")
    # the hostile markup is shown as the text it is; the Markdown around it is rendered
    assert "<script>window.pwned = 1</script>" in mine["text"]
    assert '<img src=x onerror="window.pwned = 2">' in mine["text"]
    assert mine["strong"] == ["Hostile:"]
    assert browser.execute_script("return window.pwned === undefined;")
    assert not browser.find_elements(By.CSS_SELECTOR, "#conversation img, #conversation script")
    hrefs = [
        a.get_attribute("href") or ""
        for a in browser.find_elements(By.CSS_SELECTOR, "#conversation a")
    ]
    assert not [h for h in hrefs if h.startswith("javascript:")]
    # the answer, rendered: "Session `acme/payments#1` is **waiting**: 5/7 tasks done."
    assert answer["strong"] and answer["strong"][0] in ENDED
    # the tool call opened before the conversation was refreshed is still open
    assert any(any(e["open"]) for e in entries if e["kind"] == "tool")
    assert browser.find_element(By.ID, "text").get_attribute("value") == ""


def test_an_operator_reads_a_revisions_diff_and_the_feedback_page(
    browser, settings, redis_conn, tmp_path
):
    import asyncio

    from selenium.webdriver.common.by import By

    from app.domain.session import Session, StepRecord
    from app.feedback import FeedbackStore
    from app.github.forge import RepoRef
    from app.github.local_forge import LocalForge

    api_settings = operator_settings(settings, local_forge_root=tmp_path / "forge")
    forge, repo = LocalForge(api_settings.local_forge_root), RepoRef.parse("acme/shop")
    first = {"deploy/app.yaml": "replicas: 2\nport: 8080\n", "docs/README.md": "# shop\n"}
    second = {**first, "deploy/app.yaml": "replicas: 5\nport: 8080\n"}
    shas = [
        asyncio.run(forge.commit_files(repo, "idp/shop-6", files, message)).sha
        for files, message in ((first, "Add shop"), (second, "Set replicas=5"))
    ]
    steps = [
        StepRecord(
            tool=tool, idempotency_key=tool, ok=True, output=out, started_at=t, finished_at=t
        )
        for tool, out, t in (
            ("open_pull_request", {"head_sha": shas[0]}, 10.0),
            ("review_revision", {"outcome": "revised", "sha": shas[1]}, 20.0),
        )
    ]
    session = Session(
        id="acme/shop#6", repo="acme/shop", number=6, files=second, steps=steps, status="done"
    )
    SessionStore(redis_conn, api_settings).save(session)
    feedback = FeedbackStore(redis_conn, api_settings)
    feedback.add(session.id, "mona", text="Exactly the **five** replicas I asked for", rating=1)
    feedback.add_reaction(session.id, "bob", "-1")

    with serve(build_app(api_settings, redis_conn, heartbeat=2)) as base:
        try:
            sign_in(browser, base, "/console/sessions/acme/shop/6")
            revision = browser.find_element(By.ID, "revision").text
            assert f"Commit {shas[1][:7]} against {shas[0][:7]}" in revision
            diff = browser.find_element(By.CSS_SELECTOR, "pre.diff")
            assert diff.text.startswith("--- a/deploy/app.yaml\n+++ b/deploy/app.yaml\n@@")
            coloured = diff.find_elements(By.CSS_SELECTOR, ".del, .add")
            assert [e.text for e in coloured] == ["-replicas: 2", "+replicas: 5"]
            tree = browser.find_element(By.ID, "file-tree")
            names = [e.text for e in tree.find_elements(By.CSS_SELECTOR, "li[data-path] code")]
            assert names == ["app.yaml", "README.md"]
            readme = tree.find_element(By.CSS_SELECTOR, 'li[data-path="docs/README.md"]')
            readme.find_element(By.TAG_NAME, "summary").click()
            assert readme.find_element(By.TAG_NAME, "pre").text == "# shop"

            browser.find_element(By.LINK_TEXT, "Feedback").click()
            rows = browser.find_elements(By.CSS_SELECTOR, "#feedback tbody tr")
            assert [r.find_elements(By.TAG_NAME, "td")[2].text for r in rows] == ["bob", "mona"]
            said = rows[1].find_element(By.CSS_SELECTOR, "td.markdown")
            assert said.find_element(By.TAG_NAME, "strong").text == "five"
            assert "👍 1 · 👎 1" in browser.find_element(By.ID, "feedback-count").text

            browser.find_element(By.LINK_TEXT, "Sessions").click()
            row = browser.find_element(By.CSS_SELECTOR, 'tr[data-session="acme/shop#6"]')
            assert row.find_element(By.CSS_SELECTOR, "td.feedback").text == "👍 1 · 👎 1"
        finally:
            browser.get("about:blank")


def sign_in(browser, base: str, page: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as seen
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(f"{base}{page}")
    browser.find_element(By.ID, "token").send_keys(TOKEN)
    browser.find_element(By.ID, "sign-in").click()
    # the click posts a form: the next page arrives when it arrives (a busy machine is slow)
    WebDriverWait(browser, 40).until(seen.presence_of_element_located((By.ID, "signed-in-as")))
    assert "operator" in browser.find_element(By.ID, "signed-in-as").text
