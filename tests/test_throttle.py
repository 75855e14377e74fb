"""The GitHub write budget on real Redis: writes of one installation are paced for every
worker at once, reads are not, bursts wait the time the budget computes (on a test clock,
never real time), and a budget spent for longer than a worker may wait fails with a retry
time. Also: reading the reactions on the todo comment, on GitHub and on the LocalForge."""

from __future__ import annotations

import anyio
import httpx
import pytest
import redis as redis_lib
from anyio.lowlevel import checkpoint
from redis.backoff import NoBackoff
from redis.retry import Retry

from app.domain.todo import marker
from app.github.errors import ForgeError
from app.github.forge import RepoRef
from app.github.github_forge import GitHubForge
from app.github.local_forge import APP_LOGIN, LocalForge
from app.github.throttle import RedisWriteThrottler, WriteBudgetExhausted, content_creating
from tests import github_api as gh
from tests.conftest import TEST_REDIS_URL

pytestmark = pytest.mark.anyio
REPO = RepoRef(gh.OWNER, gh.NAME, gh.INSTALLATION_ID)
COMMENTS = f"{gh.API}/repos/acme/payments/issues/7/comments"
POST = httpx.Request("POST", COMMENTS, json={"body": "hi"})


class Clock:
    """Test time shared by every throttler of a test: sleeping moves it on and is recorded."""

    def __init__(self) -> None:
        self.now = 1_000_000.0
        self.waits: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sync_sleep(seconds)
        await checkpoint()

    def sync_sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


def budget(settings, *, per_minute: int = 60, per_hour: int = 450, interval: float = 1.0):
    return settings.model_copy(
        update={
            "github_writes_per_minute": per_minute,
            "github_writes_per_hour": per_hour,
            "github_write_interval": interval,
        }
    )


def throttler(settings, connection, clock: Clock, installation: int = gh.INSTALLATION_ID, **kw):
    return RedisWriteThrottler(
        settings,
        connection,
        installation,
        clock=clock,
        sleep=clock.sleep,
        sync_sleep=clock.sync_sleep,
        **kw,
    )


async def write(worker: RedisWriteThrottler, request: httpx.Request = POST) -> None:
    async with worker.async_acquire(request):
        pass


# -- pacing ---------------------------------------------------------------------------------


async def test_back_to_back_writes_of_one_installation_go_out_a_second_apart(
    settings, redis_conn, clock
):
    worker = throttler(budget(settings), redis_conn, clock)
    sent: list[float] = []

    for _ in range(3):
        async with worker.async_acquire(POST):
            sent.append(clock.now)

    assert clock.waits == [1.0, 1.0]
    assert sent == [1_000_000.0, 1_000_001.0, 1_000_002.0]


async def test_two_workers_draw_from_one_budget_per_installation(settings, redis_conn, clock):
    settings = budget(settings)
    other_process = redis_lib.Redis.from_url(TEST_REDIS_URL)
    first = throttler(settings, redis_conn, clock)
    second = throttler(settings, other_process, clock)
    elsewhere = throttler(settings, other_process, clock, installation=777)

    # Both ask at the same instant: the second queues behind the first's slot.
    assert first.reserve() == 0.0
    assert second.reserve() == 1.0
    assert first.reserve() == 2.0
    assert elsewhere.reserve() == 0.0  # another installation has a budget of its own

    assert redis_conn.zcard(settings.key("gh-writes", gh.INSTALLATION_ID)) == 3
    assert redis_conn.zcard(settings.key("gh-writes", 777)) == 1
    other_process.close()


async def test_a_burst_over_the_minute_budget_waits_until_the_oldest_write_leaves_the_window(
    settings, redis_conn, clock
):
    worker = throttler(budget(settings, per_minute=3, interval=0), redis_conn, clock)
    sent: list[float] = []

    for _ in range(7):
        async with worker.async_acquire(POST):
            sent.append(clock.now - 1_000_000.0)

    assert clock.waits == [60.0, 60.0]
    assert sent == [0.0, 0.0, 0.0, 60.0, 60.0, 60.0, 120.0]


async def test_the_hourly_budget_holds_writes_until_the_hour_has_room(settings, redis_conn, clock):
    settings = budget(settings, per_minute=0, per_hour=2, interval=0)
    worker = throttler(settings, redis_conn, clock, max_wait=3600)

    for _ in range(3):
        await write(worker)

    assert clock.waits == [3600.0]


async def test_a_write_beyond_the_longest_wait_is_not_sent_and_takes_no_slot(
    settings, redis_conn, clock
):
    settings = budget(settings, per_minute=0, per_hour=2, interval=0)
    worker = throttler(settings, redis_conn, clock, max_wait=300)
    await write(worker)
    await write(worker)

    with pytest.raises(WriteBudgetExhausted) as refused:
        await write(worker)

    assert refused.value.retry_after == 3600.0
    assert clock.waits == []
    assert redis_conn.zcard(settings.key("gh-writes", gh.INSTALLATION_ID)) == 2


async def test_reads_are_not_paced_and_leave_the_budget_alone(settings, redis_conn, clock):
    settings = budget(settings, per_minute=1)
    worker = throttler(settings, redis_conn, clock)

    for method in ("GET", "HEAD", "OPTIONS", "GET", "GET"):
        await write(worker, httpx.Request(method, COMMENTS))

    assert clock.waits == []
    assert not redis_conn.exists(settings.key("gh-writes", gh.INSTALLATION_ID))


@pytest.mark.parametrize("method", ["POST", "PATCH", "PUT", "DELETE"])
async def test_every_mutative_method_counts_as_a_write(settings, redis_conn, clock, method):
    worker = throttler(budget(settings, per_minute=1, interval=0), redis_conn, clock)

    await write(worker, httpx.Request(method, COMMENTS))
    await write(worker, httpx.Request(method, COMMENTS))

    assert clock.waits == [60.0]  # the second waits for room in the minute's window


REPO_API = f"{gh.API}/repos/acme/payments"


@pytest.mark.parametrize(
    ("method", "path", "creates"),
    [
        ("POST", "/issues", True),
        ("POST", "/issues/7/comments", True),
        ("POST", "/pulls", True),
        ("POST", "/pulls/8/reviews", True),
        ("POST", "/pulls/8/comments", True),
        ("POST", "/pulls/8/comments/99/replies", True),
        ("POST", "/commits/abc123/comments", True),
        ("POST", "/releases", True),
        ("PATCH", "/issues/comments/5", False),
        ("POST", "/issues/comments/5/reactions", False),
        ("POST", "/issues/7/labels", False),
        ("POST", "/git/trees", False),
        ("POST", "/git/commits", False),
        ("POST", "/git/refs", False),
        ("PATCH", "/git/refs/heads/idp/x", False),
        ("POST", "/check-runs", False),
        ("PUT", "/pulls/8/merge", False),
        ("GET", "/issues/7/comments", False),
    ],
)
def test_content_creating_writes_are_the_posts_of_comments_issues_pulls_and_reviews(
    method, path, creates
):
    assert content_creating(httpx.Request(method, REPO_API + path)) is creates


async def test_only_content_creating_writes_wait_a_second_after_the_last_such_write(
    settings, redis_conn, clock
):
    """A workflow's writes: the comment and the pull request keep a second apart; the
    reaction, the comment's edit, git objects, the check run and the label do not wait."""
    worker = throttler(budget(settings), redis_conn, clock)
    workflow = [
        ("POST", "/issues/comments/5/reactions"),
        ("POST", "/issues/7/comments"),
        ("PATCH", "/issues/comments/6"),
        ("POST", "/git/trees"),
        ("POST", "/git/commits"),
        ("POST", "/git/refs"),
        ("POST", "/pulls"),
        ("POST", "/check-runs"),
        ("POST", "/issues/8/labels"),
        ("POST", "/issues/9/comments"),
    ]
    sent = []
    for method, path in workflow:
        async with worker.async_acquire(httpx.Request(method, REPO_API + path)):
            sent.append(clock.now - 1_000_000.0)

    assert sent == [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 2.0]
    assert redis_conn.zcard(settings.key("gh-writes", gh.INSTALLATION_ID)) == len(workflow)


async def test_writes_that_do_not_wait_still_count_in_the_minute_window(
    settings, redis_conn, clock
):
    worker = throttler(budget(settings, per_minute=2), redis_conn, clock)
    edit = httpx.Request("PATCH", REPO_API + "/issues/comments/6")

    await write(worker, edit)
    await write(worker, edit)
    await write(worker)  # a new comment: the minute's two writes are taken

    assert clock.waits == [60.0]


def test_sync_clients_are_paced_the_same_way(settings, redis_conn, clock):
    worker = throttler(budget(settings), redis_conn, clock)

    for _ in range(3):
        with worker.acquire(POST):
            pass

    assert clock.waits == [1.0, 1.0]


async def test_no_more_requests_are_in_flight_than_the_concurrency_limit(
    settings, redis_conn, clock
):
    worker = throttler(settings, redis_conn, clock, max_concurrency=2)
    release = anyio.Event()
    inside: list[int] = []

    async def request() -> None:
        async with worker.async_acquire(httpx.Request("GET", COMMENTS)):
            inside.append(1)
            await release.wait()

    async with anyio.create_task_group() as tasks:
        for _ in range(3):
            tasks.start_soon(request)
        await anyio.wait_all_tasks_blocked()
        assert len(inside) == 2  # the third waits for a free place
        release.set()
    assert len(inside) == 3


async def test_without_redis_writes_go_out_unpaced(settings, clock):
    nothing_listens = {"host": "127.0.0.1", "port": 1, "retry": Retry(NoBackoff(), 0)}
    unreachable = redis_lib.Redis(**nothing_listens)
    worker = throttler(budget(settings), unreachable, clock)

    await write(worker)
    await write(worker)

    assert clock.waits == []


# -- through the forge ----------------------------------------------------------------------


async def test_the_forge_paces_writes_through_the_shared_budget_by_default(
    github, app_settings, redis_conn
):
    forge = GitHubForge(budget(app_settings, per_minute=0, per_hour=2, interval=0), redis_conn)
    assert await forge.default_branch(REPO) == "main"  # reads take no slot
    await forge.post_comment(REPO, 7, "first")
    await forge.post_comment(REPO, 7, "second")

    with pytest.raises(ForgeError) as refused:
        await forge.post_comment(REPO, 7, "third")

    message = str(refused.value)
    assert "write budget for this installation" in message
    assert "posting a comment on acme/payments" in message and "/idp retry" in message
    assert [c["body"] for c in github.comments.values()] == ["first", "second"]
    assert len(github.writes()) == 2  # the third never reached GitHub, nor was it retried
    assert redis_conn.zcard(app_settings.key("gh-writes", gh.INSTALLATION_ID)) == 2


async def test_a_throttler_passed_to_the_forge_is_used_for_its_clients(
    github, app_settings, redis_conn, clock
):
    paced = throttler(budget(app_settings), redis_conn, clock)
    forge = GitHubForge(app_settings, redis_conn, throttler=paced)

    first = await forge.upsert_todo_comment(REPO, 7, "s1", f"{marker('s1')}\nplan", None)
    await forge.upsert_todo_comment(REPO, 7, "s1", f"{marker('s1')}\ndone", first)
    await forge.post_comment(REPO, 7, "another")

    assert clock.waits == [1.0]  # the edit went out at once; the new comment waited
    assert github.comments[first]["body"] == f"{marker('s1')}\ndone"


# -- reactions on the todo comment ----------------------------------------------------------


async def test_reactions_on_a_comment_are_read_with_who_made_them(github, app_settings, redis_conn):
    forge = GitHubForge(app_settings, redis_conn)
    todo = github.add_comment(7, f"{marker('s1')}\nplan")
    await forge.add_reaction(REPO, todo, "eyes")
    github.react(todo, "+1", gh.user("alice", id=31))
    github.react(todo, "-1", gh.user("bob", id=32))
    github.react(todo, "+1", None)  # an account deleted since
    github.react(github.add_comment(7, "unrelated"), "heart", gh.user("carol", id=33))

    reactions = await forge.list_reactions(REPO, todo)

    assert reactions == [(gh.APP_BOT, "eyes"), ("alice", "+1"), ("bob", "-1"), ("ghost", "+1")]


async def test_reactions_are_read_across_pages(github, app_settings, redis_conn):
    forge = GitHubForge(app_settings, redis_conn)
    todo = github.add_comment(7, f"{marker('s1')}\nplan")
    for n in range(130):
        github.react(todo, "+1" if n % 2 else "-1", gh.user(f"dev{n}", id=100 + n))

    reactions = await forge.list_reactions(REPO, todo)

    assert len(reactions) == 130
    assert reactions[0] == ("dev0", "-1") and reactions[-1] == ("dev129", "+1")
    pages = [c for c in github.calls if c[1].endswith(f"/comments/{todo}/reactions")]
    assert len(pages) == 2


async def test_a_deleted_comment_has_no_reactions(github, app_settings, redis_conn):
    forge = GitHubForge(app_settings, redis_conn)

    assert await forge.list_reactions(REPO, 424242) == []


async def test_the_local_forge_lists_the_apps_and_peoples_reactions(tmp_path):
    forge = LocalForge(tmp_path / "forge")
    todo = await forge.upsert_todo_comment(REPO, 7, "s1", "plan", None)
    await forge.add_reaction(REPO, todo, "rocket")
    forge.react_as(REPO, todo, "alice", "+1")
    forge.react_as(REPO, todo, "bob", "-1")

    assert await forge.list_reactions(REPO, todo) == [
        (APP_LOGIN, "rocket"),
        ("alice", "+1"),
        ("bob", "-1"),
    ]
    assert forge.reactions(REPO, todo) == ["rocket", "+1", "-1"]
    assert forge.writes["create_reaction"] == 1  # people's reactions are not the App's writes
    assert await forge.list_reactions(REPO, todo + 1) == []


def test_a_person_cannot_leave_an_unknown_reaction_on_the_local_forge(tmp_path):
    forge = LocalForge(tmp_path / "forge")

    with pytest.raises(ForgeError, match="not a reaction"):
        forge.react_as(REPO, 1, "alice", "thumbsup")
