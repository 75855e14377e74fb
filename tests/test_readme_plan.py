"""The README's plan comment is the one the App renders (tests/readme_plan.py), so it cannot
go stale: change the renderer or the plan and this fails until the README is rewritten
with `python -m tests.readme_plan`."""

from __future__ import annotations

from tests.readme_plan import README, example_comment, in_readme, snippet


def test_the_readme_shows_the_plan_comment_the_renderer_produces():
    assert in_readme(README.read_text()) == snippet(), (
        "README.md's plan example is stale: run `python -m tests.readme_plan`"
    )


def test_the_example_shows_created_changed_and_unchanged_objects_and_links_the_check_run():
    comment = example_comment()

    assert "<summary>Cluster plan: 1 to create, 1 to change, 2 unchanged</summary>" in comment
    assert "- ➕ create ServiceAccount `payments-api`" in comment
    assert "- ✅ unchanged Service `payments-api`" in comment
    assert "  - `.spec.replicas`: `1` → `2`" in comment
    assert "The full plan is in the check run [IDP Copilot plan](https://github.com/" in comment
