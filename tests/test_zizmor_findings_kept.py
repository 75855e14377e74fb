"""zizmor's findings kept by the hash of what it audited (tools/validate_zizmor.py): a kept
answer is the one zizmor gives for the same workflows, from this process or from the shared
store (Redis), and any change to a path or a text is audited afresh."""

from __future__ import annotations

import subprocess

import pytest

from tools import validate_zizmor

SPLICED = """name: ci
on:
  issue_comment:
    types: [created]
permissions: {}
jobs:
  echo:
    runs-on: ubuntu-24.04
    permissions: {}
    steps:
      - run: echo "${{ github.event.comment.body }}"
"""
PATH = ".github/workflows/ci.yml"


@pytest.fixture(autouse=True)
def fresh(monkeypatch):
    monkeypatch.setattr(validate_zizmor, "_kept", type(validate_zizmor._kept)())
    monkeypatch.setattr(validate_zizmor, "_store", None)


def runs(monkeypatch) -> list[list[str]]:
    """Every zizmor run from now on."""
    seen: list[list[str]] = []
    real = subprocess.run

    def counted(args, **kw):
        seen.append(list(args))
        return real(args, **kw)

    monkeypatch.setattr(validate_zizmor.subprocess, "run", counted)
    return seen


def test_a_kept_answer_is_zizmors_own_for_the_same_workflows(monkeypatch):
    seen = runs(monkeypatch)
    first = validate_zizmor.run_zizmor({PATH: SPLICED})
    again = validate_zizmor.run_zizmor({PATH: SPLICED})

    assert len(seen) == 1
    assert again == first
    assert any(failing and "template-injection" in m for _, m, failing in first)
    validate_zizmor._kept.clear()
    assert validate_zizmor.run_zizmor({PATH: SPLICED}) == first  # zizmor again: the same
    assert len(seen) == 2


@pytest.mark.parametrize(
    "changed",
    [
        {PATH: SPLICED.replace("comment.body", "comment.id")},  # another text
        {".github/workflows/other.yml": SPLICED},  # another path
        {PATH: SPLICED, ".github/workflows/b.yml": SPLICED},  # one more workflow
    ],
)
def test_any_change_is_audited_afresh(monkeypatch, changed):
    seen = runs(monkeypatch)
    validate_zizmor.run_zizmor({PATH: SPLICED})

    fresh = validate_zizmor.run_zizmor(changed)

    assert len(seen) == 2
    validate_zizmor._kept.clear()
    assert validate_zizmor.run_zizmor(changed) == fresh


def test_findings_are_shared_through_redis_between_processes(monkeypatch, redis_conn):
    validate_zizmor.use_store(redis_conn, "idptest:zizmor:")
    first = validate_zizmor.run_zizmor({PATH: SPLICED})
    validate_zizmor._kept.clear()  # another worker: nothing in its memory
    seen = runs(monkeypatch)

    assert validate_zizmor.run_zizmor({PATH: SPLICED}) == first
    assert seen == []
    [key] = redis_conn.keys("idptest:zizmor:*")
    assert 0 < redis_conn.ttl(key) <= validate_zizmor.STORE_TTL


def test_an_audit_that_did_not_run_is_not_kept(monkeypatch):
    broken = {PATH: "jobs: [unclosed\n"}
    (problem,) = validate_zizmor.run_zizmor(broken)
    assert problem[2] and "zizmor could not audit" in problem[1]
    seen = runs(monkeypatch)

    validate_zizmor.run_zizmor(broken)

    assert len(seen) == 1  # asked again


def test_without_redis_zizmor_runs(monkeypatch):
    import redis as redis_lib

    unreachable = redis_lib.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    validate_zizmor.use_store(unreachable, "x:")
    seen = runs(monkeypatch)

    assert validate_zizmor.run_zizmor({PATH: SPLICED})
    assert len(seen) == 1


def test_an_audit_started_early_serves_the_validation_of_the_same_workflows(monkeypatch):
    seen = runs(monkeypatch)

    validate_zizmor.audit_early({PATH: SPLICED})
    validate_zizmor.audit_early({PATH: SPLICED})  # started already: not again
    found = validate_zizmor.run_zizmor({PATH: SPLICED})

    assert len(seen) == 1
    assert not validate_zizmor._running
    validate_zizmor._kept.clear()
    assert validate_zizmor.run_zizmor({PATH: SPLICED}) == found  # zizmor's own answer


def test_generating_a_workflow_starts_its_audit_for_the_files_publishing_validates(monkeypatch):
    from app.domain.service import ServiceRequest
    from tools.render_workflow import render_workflow
    from tools.validate import start_zizmor_early, validate_files

    seen = runs(monkeypatch)
    files = render_workflow(ServiceRequest(name="svc-7", language="python"))
    files["services/svc-7/k8s/base/service.yaml"] = "kind: Service\n"

    start_zizmor_early(files)
    report = validate_files(files)

    assert len(seen) == 1  # the early run, taken by the validation
    assert [r for r in report.runs if r.validator == "zizmor"][0].files_checked == 1
