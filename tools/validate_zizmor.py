"""`zizmor --offline` on a set of workflows in one subprocess, its JSON findings turned into
(path, message, failing) triples for `tools.validate`.

Medium and high severities fail; low and informational ones are reported as warnings.

zizmor costs ~0.2 s of CPU a run, so its findings are kept by the hash of what it audited
(the binary, its arguments, every path and text): in this process, and in a shared store
when the worker installs one (`use_store`, jobs/preload.py). The same workflows, audited again
(a retry, a revision that left them alone, the same template output), cost no run.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any, Protocol

log = logging.getLogger(__name__)
FAILING_SEVERITIES = ("medium", "high")
TIMEOUT = 60.0
# --no-config: only the defaults, whatever config the repository carries. --no-ignores: an
# inline "zizmor: ignore" comment in a generated or edited workflow must not hide a finding.
# --strict-collection: a workflow zizmor cannot parse is an error, not silently left out.
ARGS = (
    "--offline",
    "--strict-collection",
    "--no-config",
    "--no-ignores",
    "--no-progress",
    "--no-exit-codes",
    "--format",
    "json",
    ".",
)

Result = tuple[str, str, bool]  # (path, message, failing)
_KEPT = 256  # findings of this many audits kept in the process
STORE_TTL = 7 * 24 * 3600


class Store(Protocol):
    """Where findings are shared between processes: a Redis client fits."""

    def get(self, name: str) -> bytes | str | None: ...

    def set(self, name: str, value: str, ex: int | None = None) -> Any: ...


_kept: OrderedDict[str, list[Result]] = OrderedDict()
_store: tuple[Store, str] | None = None
_running: dict[str, threading.Thread] = {}  # audits started early, by key
_lock = threading.Lock()


def use_store(store: Store | None, prefix: str = "") -> None:
    """Share findings through `store` under keys starting with `prefix` (None: this process
    only). A store that fails is skipped: zizmor runs."""
    global _store
    _store = (store, prefix) if store is not None else None


def zizmor_binary() -> str | None:
    """zizmor beside the running interpreter (the App's virtualenv), else on PATH."""
    beside = Path(sys.executable).parent / "zizmor"
    return str(beside) if beside.exists() else shutil.which("zizmor")


def audit_key(binary: str, workflows: dict[str, str]) -> str:
    """The hash of one audit: the binary (path, size, modification time), the arguments and
    every workflow's path and text."""
    stat = os.stat(binary)
    digest = hashlib.sha256(f"{binary}\0{stat.st_size}\0{stat.st_mtime_ns}".encode())
    for part in [*ARGS, *(x for item in sorted(workflows.items()) for x in item)]:
        data = part.encode("utf-8", "surrogatepass")
        digest.update(b"%d:" % len(data) + data)  # length first: no two inputs hash alike
    return digest.hexdigest()


def run_zizmor(workflows: dict[str, str]) -> list[Result]:
    """Audit `workflows` (repository path → text); problems running zizmor are failures.
    Findings of an audit made before are taken from the process or the shared store."""
    first = next(iter(workflows))
    binary = zizmor_binary()
    if binary is None:
        return [
            (first, "zizmor is not installed: `pip install zizmor` into the App's virtualenv", True)
        ]
    key = audit_key(binary, workflows)
    early = _running.get(key)
    if early is not None:
        early.join(TIMEOUT + 5)  # the same audit, started early: its findings are kept
    found = _recall(key)
    if found is None:
        found = _audit(binary, workflows, first)
        if _ran(found, first):
            _remember(key, found)
    return list(found)


def audit_early(workflows: dict[str, str]) -> None:
    """Start zizmor on `workflows` now, on a thread, so that it runs while the job does
    other things; a later `run_zizmor` of the same workflows waits for it instead of
    starting its own."""
    binary = zizmor_binary()
    if binary is None or not workflows:
        return
    key = audit_key(binary, workflows)
    with _lock:
        if key in _kept or key in _running:
            return
        thread = threading.Thread(
            target=_audit_kept, args=(binary, dict(workflows), key), name="zizmor", daemon=True
        )
        _running[key] = thread
    thread.start()


def _audit_kept(binary: str, workflows: dict[str, str], key: str) -> None:
    try:
        if _recall(key) is None:
            first = next(iter(workflows))
            found = _audit(binary, workflows, first)
            if _ran(found, first):
                _remember(key, found)
    finally:
        with _lock:
            _running.pop(key, None)


def _ran(found: list[Result], first: str) -> bool:
    """False when the findings say zizmor did not audit (not kept: asked again next time)."""
    return not any(
        path == first and message.startswith(_RUN_PROBLEMS) for path, message, _ in found
    )


# Messages that say zizmor did not audit: not kept, the next call tries again.
_RUN_PROBLEMS = ("zizmor did not finish", "zizmor could not audit")


def _recall(key: str) -> list[Result] | None:
    if key in _kept:
        _kept.move_to_end(key)
        return _kept[key]
    if _store is None:
        return None
    store, prefix = _store
    try:
        raw = store.get(prefix + key)
    except Exception as exc:  # a cache, not a source of truth: zizmor runs instead
        log.warning("shared zizmor findings not read: %s", exc)
        return None
    if raw is None:
        return None
    found = [(str(p), str(m), bool(f)) for p, m, f in json.loads(raw)]
    _keep(key, found)
    return found


def _remember(key: str, found: list[Result]) -> None:
    _keep(key, found)
    if _store is not None:
        store, prefix = _store
        try:
            store.set(prefix + key, json.dumps(found), ex=STORE_TTL)
        except Exception as exc:  # a cache: the next audit of these workflows runs zizmor
            log.warning("zizmor findings not shared: %s", exc)


def _keep(key: str, found: list[Result]) -> None:
    _kept[key] = found
    _kept.move_to_end(key)
    while len(_kept) > _KEPT:
        _kept.popitem(last=False)


def _audit(binary: str, workflows: dict[str, str], first: str) -> list[Result]:
    with tempfile.TemporaryDirectory(prefix="idp-zizmor-") as tmp:
        for path, text in workflows.items():
            target = Path(tmp, path)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        try:
            proc = subprocess.run(
                [binary, *ARGS], cwd=tmp, capture_output=True, text=True, timeout=TIMEOUT
            )
        except subprocess.TimeoutExpired:
            return [(first, f"zizmor did not finish in {TIMEOUT:.0f}s", True)]
    try:
        results = json.loads(proc.stdout)
    except json.JSONDecodeError:
        return [(first, "zizmor could not audit the workflows: " + _reason(proc.stderr), True)]
    return [_result(finding, first) for finding in results]


def _reason(stderr: str) -> str:
    """The lines of zizmor's error output that say what went wrong, without its backtrace."""
    lines = [line.strip() for line in stderr.splitlines()]
    keep = [line for line in lines if line.startswith(("fatal:", "error:"))]
    keep += [line.split(": ", 1)[-1] for line in lines if "failed to" in line]
    return " / ".join(keep[:4]) or "no output"


def _result(finding: dict[str, Any], fallback_path: str) -> Result:
    severity = str(finding.get("determinations", {}).get("severity", "unknown")).lower()
    locations = finding.get("locations") or []
    primary = next((loc for loc in locations if loc["symbolic"].get("kind") == "Primary"), None)
    primary = primary or (locations[0] if locations else None)
    path, where = fallback_path, ""
    if primary is not None:
        key = primary["symbolic"].get("key", {})
        path = (key.get("Local") or {}).get("verbatim_path", fallback_path).removeprefix("./")
        row = primary.get("concrete", {}).get("location", {}).get("start_point", {}).get("row")
        note = primary["symbolic"].get("annotation", "")
        where = f" (line {row + 1}: {note})" if row is not None else f" ({note})"
    message = f"{finding.get('ident')}: {finding.get('desc')}{where} [{severity}]"
    return path, message, severity in FAILING_SEVERITIES
