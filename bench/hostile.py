"""How long hostile text holds the App: `python -m bench.hostile`.

Times the receiver's `route()` on an `issues.opened` delivery whose body is one long line
that made the old issue-form heading pattern backtrack (`### a`, spaces, a tab, a letter),
at 1.5 KB, 2 KB, 10 KB and 64 KB; a 64 KB comment of `/idp ask` lines; and the hidden-
content cleaner on 64 KB of `<script ` and 80 KB of `<a style="`.

Each case runs in a child process (after one small warm-up call) with a time limit
(`--timeout`, 60 s by default), so the slow figures of an old checkout show as "> 60 s"
instead of running for hours. To measure
another checkout, run this file from that checkout's root with its virtualenv, e.g.
`cd /work/main && .venv/bin/python /path/to/bench/hostile.py`: the modules under test are
imported from the current directory.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import shlex
import sys
import time

ROUTE_SIZES = (1536, 2048, 10 * 1024, 64 * 1024)


def _heading_line(size: int) -> str:
    """One line of `size` characters shaped like an issue-form heading that never ends."""
    return "### a" + " " * (size - 7) + "\tx"


def _route_issue(size: int) -> float:
    from app.webhooks import route
    from tests import payloads

    route("issues", "warm-up", payloads.issues_opened(body="### a\tx"))  # lazy set-up aside
    payload = payloads.issues_opened(body=_heading_line(size))
    started = time.perf_counter()
    route("issues", "bench-delivery", payload)
    return time.perf_counter() - started


def _route_comment(size: int) -> float:
    from app.webhooks import route
    from tests import payloads

    line = "/idp ask how do I scale?\n"
    route("issue_comment", "warm-up", payloads.issue_comment(line))  # lazy set-up aside
    payload = payloads.issue_comment(line * (size // len(line)))
    started = time.perf_counter()
    route("issue_comment", "bench-delivery", payload)
    return time.perf_counter() - started


def _clean(unit: str, size: int) -> float:
    from app.untrusted import clean_untrusted

    text = unit * (size // len(unit))
    clean_untrusted(unit)  # lazy set-up aside
    started = time.perf_counter()
    clean_untrusted(text)
    return time.perf_counter() - started


CASES = [
    *(
        (f"route issues.opened, {size / 1024:g} KB single-line body", _route_issue, (size,))
        for size in ROUTE_SIZES
    ),
    ("route issue_comment, 64 KB of `/idp ask` lines", _route_comment, (64 * 1024,)),
    ("clean_untrusted, 64 KB of `<script `", _clean, ("<script ", 64 * 1024)),
    ('clean_untrusted, 80 KB of `<a style="`', _clean, ('<a style="', 80 * 1024)),
]


def _child(func, args, out) -> None:  # type: ignore[no-untyped-def]
    sys.path.insert(0, os.getcwd())
    out.put(func(*args))


def measure(func, args, timeout: float) -> float | None:  # type: ignore[no-untyped-def]
    """Seconds one call took in a fresh process, or None when it ran past `timeout`."""
    out: multiprocessing.Queue = multiprocessing.Queue()
    child = multiprocessing.Process(target=_child, args=(func, args, out))
    child.start()
    child.join(timeout)
    if child.is_alive():
        child.kill()
        child.join()
        return None
    return out.get(timeout=5)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per case")
    args = parser.parse_args(argv)
    print(f"$ {shlex.join([sys.executable, *sys.argv])}  (in {os.getcwd()})")
    for name, func, case_args in CASES:
        seconds = measure(func, case_args, args.timeout)
        shown = f"> {args.timeout:g} s (stopped)" if seconds is None else f"{seconds * 1000:.1f} ms"
        print(f"{name:<50} {shown}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
