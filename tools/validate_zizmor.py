"""`zizmor --offline` on a set of workflows in one subprocess, its JSON findings turned into
(path, message, failing) triples for `tools.validate`.

Medium and high severities fail; low and informational ones are reported as warnings.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

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


def zizmor_binary() -> str | None:
    """zizmor beside the running interpreter (the App's virtualenv), else on PATH."""
    beside = Path(sys.executable).parent / "zizmor"
    return str(beside) if beside.exists() else shutil.which("zizmor")


def run_zizmor(workflows: dict[str, str]) -> list[Result]:
    """Audit `workflows` (repository path → text); problems running zizmor are failures."""
    first = next(iter(workflows))
    binary = zizmor_binary()
    if binary is None:
        return [
            (first, "zizmor is not installed: `pip install zizmor` into the App's virtualenv", True)
        ]
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
