"""The console in a real browser: Debian's headless Chromium, driven by selenium, against a
real uvicorn server and a real `idp-copilot worker`. An operator signs in with a token,
starts a session from the chat box, watches its todo tick to the end through Server-Sent
Events (the page is never reloaded) and follows the pull request link. The end is `done`, or
`waiting` when only approval-gated steps (namespace, deploy) are left for `/idp apply`. The
screenshot of the finished session lands in docs/console.png, where the README shows it."""

from __future__ import annotations

import importlib.util
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

    shot = tmp_path / "console.png"
    assert browser.save_screenshot(str(shot))
    DOCS_SCREENSHOT.parent.mkdir(exist_ok=True)
    shutil.copyfile(shot, DOCS_SCREENSHOT)

    # clicked through a fresh lookup each try: the link may be swapped while it is clicked
    wait.until(lambda driver: driver.find_element(By.ID, "pr-link").click() or True)
    wait.until(seen.presence_of_element_located((By.ID, "files")))
    assert "Pull request #" in browser.find_element(By.ID, "pr-title").text
    return [e.text for e in browser.find_elements(By.CSS_SELECTOR, "#files summary code")]
