"""Ingest candidate, payload decoding: what the receiver does today (`json.loads`, then the
router's pydantic model of an issue event, `app.webhooks._IssuePayload`) against msgspec
decoding the body straight into Structs holding the same fields with the same defaults, and
pydantic's own JSON parser (`model_validate_json`) as a third.

The bodies are the ingest benchmark's: 64 signed `issue_comment` deliveries carrying
`/idp plan` (~1.9 KB each). Each variant decodes all 64 in a warm loop; per variant the best
of `--repeat` timings (µs per body), in alternating order, and a check that every variant
read the same values. Needs no service.
Run: `python -m bench.candidates_decode [--loops 2000] [--repeat 7]`
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import msgspec

from app.webhooks import _IssuePayload
from bench.ingest import machine
from tests import payloads


class User(msgspec.Struct):
    login: str
    type: str = "User"


class Label(msgspec.Struct):
    name: str


class PullRequestRef(msgspec.Struct):
    merged_at: str | None = None


class Issue(msgspec.Struct):
    number: int
    title: str = ""
    body: str | None = None
    state: str = "open"
    locked: bool = False
    labels: list[Label] = []
    pull_request: PullRequestRef | None = None


class Comment(msgspec.Struct):
    id: int
    body: str | None = None


class Repository(msgspec.Struct):
    full_name: str


class Installation(msgspec.Struct):
    id: int


class IssuePayload(msgspec.Struct):
    """`app.webhooks._IssuePayload`, field for field (unknown fields are skipped, as there)."""

    repository: Repository
    sender: User
    issue: Issue
    action: str | None = None
    installation: Installation | None = None
    comment: Comment | None = None
    label: Label | None = None


_DECODER = msgspec.json.Decoder(IssuePayload)


def today(body: bytes):
    return _IssuePayload.model_validate(json.loads(body))


def with_msgspec(body: bytes):
    return _DECODER.decode(body)


def pydantic_json(body: bytes):
    return _IssuePayload.model_validate_json(body)


VARIANTS = {
    "json.loads + pydantic model_validate (today)": today,
    "msgspec.json.Decoder(Struct)": with_msgspec,
    "pydantic model_validate_json": pydantic_json,
}


def seen(parsed) -> tuple:
    """The values the router reads, from either kind of model."""
    issue, comment = parsed.issue, parsed.comment
    return (
        parsed.action, parsed.repository.full_name, parsed.sender.login, parsed.sender.type,
        parsed.installation.id if parsed.installation else None, issue.number, issue.title,
        issue.body, issue.state, issue.locked, tuple(label.name for label in issue.labels),
        issue.pull_request is not None, comment.id if comment else None,
        comment.body if comment else None,
    )  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.candidates_decode", description=__doc__)
    parser.add_argument("--loops", type=int, default=2000, help="passes over the 64 bodies")
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args(argv)
    bodies = [payloads.encode(payloads.issue_comment("/idp plan", number=n)) for n in range(1, 65)]
    print(f"command: python -m bench.candidates_decode {' '.join(argv or sys.argv[1:])}")
    print(f"machine: {machine()}; msgspec {msgspec.__version__}")
    print(f"body size: {min(map(len, bodies))}-{max(map(len, bodies))} bytes")
    for body in bodies:
        values = {name: seen(decode(body)) for name, decode in VARIANTS.items()}
        if len(set(values.values())) != 1:
            raise SystemExit(f"the variants read different values: {values}")
    best = {name: float("inf") for name in VARIANTS}
    names = list(VARIANTS)
    for repeat in range(args.repeat):
        for name in names if repeat % 2 == 0 else reversed(names):
            decode = VARIANTS[name]
            started = time.process_time()
            for _ in range(args.loops):
                for body in bodies:
                    decode(body)
            took = (time.process_time() - started) / (args.loops * len(bodies)) * 1e6
            best[name] = min(best[name], took)
    base = best[names[0]]
    print(f"best of {args.repeat}, {args.loops} x 64 bodies, CPU us per body:")
    for name, us in best.items():
        print(f"{name:<46}{us:>7.2f} us   {base / us:>5.2f}x today's speed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
