"""Upkeep: `/idp upgrade` re-renders a generated service with its template set's current
version and keeps what people changed, or stops on a conflict and names the files; the
sweep opens one upgrade pull request per repository at a time and keeps the pinned dashboard
issue; ticking a box on the dashboard starts that upgrade.

acme/payments on the fake GitHub holds the acme template set (examples/template-sets/acme)
at `sets/acme`: tag v1.0.0, whose health check waits five seconds, and main (1.1.0), whose
health check waits two. Its services were rendered by 1.0.0 and merged.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
import yaml

from app.domain.service import ServiceRequest
from app.domain.session import Session
from app.grammar import dashboard
from app.webhooks import Ignored, route
from jobs.upkeep import sweep_trigger
from tests import payloads
from tests.fakes import install_fake_validator
from tests.job_world import ISSUE, SESSION, World
from tools.render import render_service
from tools.template_sets import MANIFEST_NAME, load_files
from tools.template_sets.sources import catalog_for

ROOT = Path(__file__).resolve().parents[1]
ACME = ROOT / "examples" / "template-sets" / "acme"
SETS = "acme=acme/payments/sets/acme@main"
OLD_CHECK = "let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));"
NEW_CHECK = "let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));"
MAIN_RS = "services/{name}/src/main.rs"


def set_files(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): p.read_text() for p in folder.rglob("*") if p.is_file()}


def old_acme() -> dict[str, str]:
    """acme 1.0.0: the release before the health check's timeout was cut to two seconds."""
    files = set_files(ACME)
    manifest = yaml.safe_load(files[MANIFEST_NAME])
    manifest["version"] = "1.0.0"
    manifest["release_notes"].pop("1.1.0")
    files[MANIFEST_NAME] = yaml.safe_dump(manifest)
    template = files["rust/main.rs.j2"]
    assert NEW_CHECK in template
    files["rust/main.rs.j2"] = template.replace(NEW_CHECK, OLD_CHECK)
    return files


def no_check(_tset: object) -> None:
    """The set's own validation is tests/test_template_sets.py's; here it is read only."""


@pytest.fixture
def world(settings, redis_conn, no_unmocked_http, monkeypatch) -> World:
    catalog_for.cache_clear()
    settings = settings.model_copy(update={"template_sets": SETS})
    world = World(settings, redis_conn, no_unmocked_http, monkeypatch, real_tools=True)
    world.validated = install_fake_validator(monkeypatch)
    catalog_for(SETS).check = no_check
    gh = world.github
    old = old_acme()
    gh.push("main", {f"sets/acme/{p}": t for p, t in old.items()}, "acme 1.0.0")
    gh.refs["v1.0.0"] = gh.refs["main"]
    tset = load_files(old, "acme@v1.0.0")
    for name in ("billing", "ledger"):
        request = ServiceRequest(name=name, language="rust", port=8081, team="payments")
        gh.push("main", render_service(request, template_set=tset), f"Add {name} (#1)")
    gh.push("main", {f"sets/acme/{p}": t for p, t in set_files(ACME).items()}, "acme 1.1.0")
    gh.refs["v1.1.0"] = gh.refs["main"]
    yield world
    catalog_for.cache_clear()


def edit(world: World, name: str, old: str, new: str, path: str = MAIN_RS) -> None:
    """A person's commit on main that changes `old` to `new` in the service's file."""
    path = path.format(name=name)
    text = world.github.files("main")[path]
    assert old in text
    world.github.push("main", {path: text.replace(old, new, 1)}, f"Tune {name}")


def upgrade_branch(world: World, name: str) -> dict[str, str]:
    return world.github.files(f"idp-upgrade/{name}-1.1.0")


# -- /idp upgrade --------------------------------------------------------------------------


def test_upgrade_keeps_a_human_edit_and_opens_one_pull_request_with_the_release_notes(world):
    edit(world, "ledger", "Duration::from_secs(5)))?;", "Duration::from_secs(10)))?;")
    edit(world, "ledger", "", "Ask #payments-oncall first.\n\n", "services/{name}/README.md")

    outcome = world.comment("/idp upgrade ledger")

    assert outcome["upgrade"] == "opened"
    (pull,) = world.github.pulls.values()
    assert pull["branch"] == "idp-upgrade/ledger-1.1.0"
    assert pull["title"] == "Upgrade ledger (acme 1.0.0 → 1.1.0)"
    assert world.github.labels[world.pr_number()] == ["idp-copilot"]  # the config's labels
    assert "- **1.1.0**: The health check times out after two seconds." in pull["body"]
    assert "- **1.0.0**" not in pull["body"]  # notes after the service's version only
    assert "| `services/ledger/src/main.rs` | 1 | 1 |" in pull["body"]
    files = upgrade_branch(world, "ledger")
    main_rs = files["services/ledger/src/main.rs"]
    assert NEW_CHECK in main_rs and OLD_CHECK not in main_rs  # the template's change
    assert "Duration::from_secs(10)))?;" in main_rs  # the person's, kept
    assert files["services/ledger/README.md"].startswith("Ask #payments-oncall first.")
    catalog = yaml.safe_load(files["services/ledger/catalog-info.yaml"])
    assert catalog["metadata"]["annotations"]["idp-copilot.dev/template-version"] == "1.1.0"
    # One commit on top of main, with only what changed; billing is left alone.
    (sha,) = world.commits_on("idp-upgrade/ledger-1.1.0")
    assert (
        files["services/billing/src/main.rs"]
        == world.github.files("main")["services/billing/src/main.rs"]
    )
    assert world.replies()[-1].startswith(f"Opened #{world.pr_number()} to upgrade `ledger`")


def test_upgrade_stops_on_a_conflict_and_names_the_file_without_a_pull_request(world):
    edit(world, "ledger", OLD_CHECK, OLD_CHECK.replace("5", "3"))
    refs_before = set(world.github.refs)

    outcome = world.comment("/idp upgrade ledger")

    assert outcome["upgrade"] == "failed"
    assert world.github.pulls == {}
    assert set(world.github.refs) == refs_before  # no branch, no partial commit
    reply = world.replies()[-1]
    assert "`services/ledger/src/main.rs` was changed in the same lines" in reply
    assert "Nothing was pushed" in reply


def test_upgrade_of_a_current_service_or_an_unknown_one_says_so(world):
    world.comment("/idp upgrade ledger")
    world.github.merge(world.pr_number())

    assert world.comment("/idp upgrade ledger")["upgrade"] == "answered"
    assert "is on acme 1.1.0" in world.replies()[-1]
    world.comment("/idp upgrade ghost")
    assert "no service `ghost`" in world.replies()[-1]


def test_upgrade_on_the_services_own_issue_needs_no_name(world):
    request = ServiceRequest(name="ledger", language="rust", port=8081, team="payments")
    orders = ServiceRequest(name="orders", language="rust")
    world.store.save(
        Session(id=SESSION, repo=payloads.REPO, number=ISSUE, request=request, installation_id=1)
    )

    assert world.comment("/idp upgrade")["upgrade"] == "opened"
    assert world.pull()["branch"] == "idp-upgrade/ledger-1.1.0"
    world.store.save(world.session.model_copy(update={"request": orders, "pr_number": 3}))
    world.comment("/idp upgrade")
    assert world.replies()[-1].startswith("`orders` is not on main yet: its pull request #3")


def test_a_service_rendered_by_a_version_the_app_no_longer_has_is_named(world):
    folder = "services/ledger/catalog-info.yaml"
    text = world.github.files("main")[folder]
    world.github.push(
        "main",
        {folder: text.replace("template-set: acme", "template-set: builtin")},
        "Say builtin",
    )
    edit(world, "ledger", "template-version: 1.0.0", "template-version: 0.9.0", folder)

    assert world.comment("/idp upgrade ledger")["upgrade"] == "failed"
    assert "version 0.9.0 of the template set builtin is not available" in world.replies()[-1]
    assert world.github.pulls == {}


def test_a_second_upgrade_waits_for_the_open_one(world):
    world.comment("/idp upgrade ledger")
    world.comment("/idp upgrade ledger")

    assert len(world.github.pulls) == 1
    assert f"#{world.pr_number()} is still open" in world.replies()[-1]


def test_only_writers_may_upgrade(world):
    outcome = world.comment("/idp upgrade ledger", sender="bob")

    assert outcome["upgrade"] == "refused"
    assert world.github.pulls == {}


# -- the sweep and its dashboard -----------------------------------------------------------


def sweep(world: World, period: int = 1) -> dict[str, str]:
    trigger = sweep_trigger(payloads.REPO, payloads.INSTALLATION_ID, period)
    return world.run(trigger.model_copy(update={"delivery_id": str(uuid.uuid4())}))


def the_dashboard(world: World) -> tuple[int, str]:
    (number,) = world.github.issues
    return number, world.github.issues[number]["body"]


def test_the_sweep_opens_one_pull_request_and_pins_the_dashboard(world):
    assert sweep(world)["sweep"] == "opened"

    (pull,) = world.github.pulls.values()
    assert pull["branch"] == "idp-upgrade/billing-1.1.0"  # one at a time, by name
    number, body = the_dashboard(world)
    assert world.github.issues[number]["title"] == "IDP Copilot dashboard"
    assert world.github.pinned == [number]
    assert dashboard.boxes(body) == {"ledger": False}
    assert f"- `billing`: acme 1.0.0 → 1.1.0 in #{world.pr_number()}" in body


def test_no_second_pull_request_while_the_first_is_open_and_the_next_after_it_merges(world):
    sweep(world)
    first = world.pr_number()

    assert sweep(world, 2)["sweep"] == "waiting"
    assert list(world.github.pulls) == [first]
    assert len(world.github.issues) == 1  # the same dashboard, edited
    world.github.merge(first)

    assert sweep(world, 3)["sweep"] == "opened"
    assert len(world.github.pulls) == 2
    number, body = the_dashboard(world)
    assert dashboard.boxes(body) == {}
    assert "- `billing`: acme 1.1.0" in body  # current now
    assert world.github.pinned == [number]  # pinned once


def test_an_upgrade_closed_without_merging_is_not_opened_again_by_the_sweep(world):
    sweep(world)
    declined = world.pr_number()
    world.github.pulls[declined]["state"] = "closed"

    assert sweep(world, 2)["sweep"] == "opened"

    branches = {p["branch"] for p in world.github.pulls.values() if p["state"] == "open"}
    assert branches == {"idp-upgrade/ledger-1.1.0"}
    _, body = the_dashboard(world)
    assert dashboard.boxes(body) == {"billing": False}
    assert f"#{declined} was closed without merging" in body


def test_the_sweep_waits_when_the_write_budget_is_spent(world, redis_conn):
    key = world.settings.key("gh-writes", payloads.INSTALLATION_ID)
    limit = world.settings.github_writes_per_hour
    redis_conn.zadd(key, {f"w{i}": time.time() for i in range(limit)})

    assert sweep(world)["sweep"] == "budget"
    assert world.github.pulls == {}


def test_a_dashboard_that_cannot_be_pinned_still_works(world):
    for n in range(3):
        world.github.pinned.append(world.github.open_issue(f"pinned {n}", "…"))

    assert sweep(world)["sweep"] == "opened"
    dash = next(n for n, i in world.github.issues.items() if dashboard.MARKER in i["body"])
    assert dash not in world.github.pinned
    assert dashboard.boxes(world.github.issues[dash]["body"]) == {"ledger": False}


# -- ticking a box ---------------------------------------------------------------------------


def tick(world: World, sender: str = "alice", sender_type: str = "User") -> dict:
    number, before = the_dashboard(world)
    after = before.replace("- [ ] `ledger`", "- [x] `ledger`")
    world.github.issues[number]["body"] = after
    return payloads.issues_edited(number, before, after, sender=sender, sender_type=sender_type)


def test_a_ticked_dashboard_box_starts_that_upgrade(world):
    sweep(world)

    outcome = world.deliver("issues", tick(world))

    assert outcome["upgrade"] == "opened"
    branches = sorted(p["branch"] for p in world.github.pulls.values())
    assert branches == ["idp-upgrade/billing-1.1.0", "idp-upgrade/ledger-1.1.0"]
    number, body = the_dashboard(world)
    assert dashboard.boxes(body) == {}  # both are open pull requests now
    assert "- `ledger`: acme 1.0.0 → 1.1.0 in #" in body
    assert world.replies(number)[-1].startswith("Opened #")


def test_a_box_ticked_by_a_reader_or_the_apps_own_edit_starts_nothing(world):
    sweep(world)

    assert world.deliver("issues", tick(world, sender="bob"))["upgrade"] == "refused"
    assert len(world.github.pulls) == 1
    own = route("issues", "d-1", tick(world, sender="idp-copilot[bot]", sender_type="Bot"))
    assert isinstance(own, Ignored)


def test_a_box_on_an_issue_the_app_did_not_write_is_ignored():
    body = dashboard.render(
        [dashboard.Entry("ledger", "services/ledger", "acme", "1.0.0", "1.1.0")], "acme/payments"
    )
    edited = payloads.issues_edited(9, body, body.replace("- [ ]", "- [x]"), sender="alice")
    forged = {**edited, "issue": {**edited["issue"], "user": payloads.user("mallory")}}

    assert not isinstance(route("issues", "d-2", edited), Ignored)
    assert route("issues", "d-3", forged) == Ignored(reason="not a dashboard the App wrote")


def test_only_a_newly_ticked_box_counts():
    body = dashboard.render(
        [
            dashboard.Entry("a", "services/a", "acme", "1.0.0", "1.1.0"),
            dashboard.Entry("b", "services/b", "acme", "1.0.0", "1.1.0"),
        ],
        "acme/payments",
    )
    ticked_a = body.replace("- [ ] `a`", "- [x] `a`")
    both = ticked_a.replace("- [ ] `b`", "- [X] `b`")

    assert dashboard.newly_ticked(body, ticked_a) == ["a"]
    assert dashboard.newly_ticked(ticked_a, both) == ["b"]
    assert dashboard.newly_ticked(both, both) == []
    assert dashboard.newly_ticked("", both.replace(dashboard.MARKER, "")) == []
