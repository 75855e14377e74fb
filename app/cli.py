"""`idp-copilot`: serve the receiver, run workers, replay payloads and run the demo."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path

from app.config import ConfigError, Settings, load_settings
from app.times import parse_duration


def _settings(**overrides: object) -> Settings:
    try:
        return load_settings(**overrides)
    except ConfigError:
        raise
    except ValueError as exc:  # pydantic's ValidationError: name the variable, not a traceback
        raise ConfigError(f"invalid configuration: {exc}") from None


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from app.logs import configure_logging
    from app.server import build_app
    from app.tracing import configure_tracing

    settings = _settings()
    configure_logging(settings)
    configure_tracing(settings, "idp-copilot-web")
    app = build_app(settings)
    # log_config=None: uvicorn keeps its hands off logging, so its lines go out as our JSON.
    uvicorn.run(
        app, host=args.host, port=args.port, log_level="info", access_log=False, log_config=None
    )
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from app.logs import configure_logging
    from jobs.worker import enable_multiprocess_metrics

    settings = _settings()
    configure_logging(settings)
    # Before anything loads prometheus_client (app.telemetry does): it picks its storage then.
    metrics_dir = enable_multiprocess_metrics(settings)

    from app.agent.providers.factory import check_provider_settings
    from app.tracing import configure_tracing
    from jobs.worker import run_worker, serve_worker_metrics

    configure_tracing(settings, "idp-copilot-worker")
    check_provider_settings(settings)
    serve_worker_metrics(settings, metrics_dir)
    run_worker(settings, burst=args.burst, name=args.name, metrics_dir=metrics_dir)
    return 0


def cmd_receive(args: argparse.Namespace) -> int:
    """Replay a payload file through the router and run its job here, like `probot receive`."""
    from app.state import connect
    from app.webhooks import Ignored, route
    from jobs.tasks import run_parsed

    try:
        payload = json.loads(Path(args.payload).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"cannot read the payload file {args.payload}: {exc}") from None
    if not isinstance(payload, dict):
        raise ConfigError(f"{args.payload} holds JSON but not an object")
    routed = route(args.event, args.delivery or "local-receive", payload)
    if isinstance(routed, Ignored):
        print(f"ignored: {routed.reason}")
        return 0
    print(f"routed: {routed.model_dump_json(indent=2)}")
    overrides: dict[str, object] = {"forge": "local"} if args.dry_run else {}
    settings = _settings(**overrides)
    outcome = asyncio.run(run_parsed(routed, settings, connect(settings)))
    print(f"outcome: {json.dumps(outcome)}")
    return 0


def _duration(text: str) -> float:
    """`--since` in seconds; a ConfigError (exit 2 with the sentence) when it is not one."""
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise ConfigError(f"--since: {exc}") from None


def cmd_redeliver(args: argparse.Namespace) -> int:
    """Ask GitHub to resend the App's failed deliveries; exit 1 when a resend was refused."""
    from app.redeliver import redeliver_failed

    since = timedelta(seconds=_duration(args.since))
    report = redeliver_failed(_settings(), since, dry_run=args.dry_run)
    return 0 if report.ok else 1


def cmd_demo(args: argparse.Namespace) -> int:
    from app.demo import run_demo

    return run_demo(Path(args.root))


def cmd_register(args: argparse.Namespace) -> int:
    from app.register import run_register

    return run_register(
        _settings(),
        env_file=Path(args.env_file),
        manifest_path=Path(args.manifest),
        force=args.force,
        org=args.org,
        host=args.host,
        port=args.port,
        public_url=args.public_url,
        name=args.name,
    )


def cmd_init_repo(args: argparse.Namespace) -> int:
    from app.init_repo import run_init_repo
    from app.state import connect

    settings = _settings(**({"forge": "local"} if args.dry_run else {}))
    return run_init_repo(
        settings, connect(settings), args.repo, installation_id=args.installation_id
    )


def cmd_config_show(args: argparse.Namespace) -> int:
    from app.config_show import run_config_show
    from app.state import connect

    settings = _settings(**({"forge": "local"} if args.dry_run else {}))
    return run_config_show(
        settings,
        connect(settings),
        args.repo,
        installation_id=args.installation_id,
        as_json=args.json,
    )


def _write_lines(lines: Iterable[str], output: str | None, what: str) -> int:
    """JSON lines to `output` (or stdout); the count goes to stderr so stdout stays data."""
    import redis

    try:
        out = open(output, "w", encoding="utf-8") if output else sys.stdout  # noqa: SIM115
    except OSError as exc:
        raise ConfigError(f"cannot write {output}: {exc.strerror}") from None
    count = 0
    try:
        for line in lines:
            out.write(line + "\n")
            count += 1
    except redis.RedisError as exc:
        raise ConfigError(f"cannot read {what} from Redis (check REDIS_URL): {exc}") from None
    finally:
        if output:
            out.close()
    print(f"{count} {what} entries written to {output or 'stdout'}", file=sys.stderr)
    return 0


def cmd_feedback_export(args: argparse.Namespace) -> int:
    from app.feedback import FeedbackStore
    from app.state import connect

    settings = _settings()
    store = FeedbackStore(connect(settings), settings)
    return _write_lines(store.export(args.format), args.output, "feedback")


def cmd_audit_export(args: argparse.Namespace) -> int:
    from app.audit import AuditLog
    from app.state import connect

    since = _duration(args.since) if args.since else None
    settings = _settings()
    log = AuditLog(connect(settings), settings)
    return _write_lines(log.export(since), args.output, "audit")


def cmd_run(args: argparse.Namespace) -> int:
    from app.agent.providers.factory import check_provider_settings
    from app.run import run_request

    settings = _settings()
    check_provider_settings(settings)
    return run_request(settings, args.request, args.repo, args.number, args.user)


def cmd_tools_list(args: argparse.Namespace) -> int:
    from tools.registry import default_registry

    registry = default_registry(_settings())
    described = registry.describe()
    if args.json:
        print(json.dumps(described, indent=2, default=str))
        return 0
    for tool in described:
        flags = [tool["side_effect"]] + (["needs approval"] if tool["requires_approval"] else [])
        if tool["source"] != "builtin":
            flags.append(f"from {tool['source']}")
        aliases = f" (aliases: {', '.join(tool['aliases'])})" if tool["aliases"] else ""
        print(f"{tool['name']}{aliases} [{', '.join(flags)}]\n    {tool['description']}")
    for skipped in registry.not_loaded:
        print(f"not loaded: plug-in {skipped.plugin} ({skipped.entry_point})\n    {skipped.reason}")
    return 0


def cmd_tools_call(args: argparse.Namespace) -> int:
    """Invoke one tool directly, as the prototype's direct invocation did. Generated files are
    printed, never written; approval-gated tools need --approved."""
    from tools.registry import default_registry
    from tools.spec import ToolContext

    try:
        raw = json.loads(args.args)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"--args is not JSON: {exc.msg} at column {exc.colno}") from None
    settings = _settings()
    ctx = ToolContext(settings=settings, approved=args.approved)
    result = asyncio.run(default_registry(settings).call(args.name, raw, ctx))
    if not result.ok:
        print(f"{args.name} failed: {result.error}", file=sys.stderr)
        return 1
    print(json.dumps(result.output, indent=2, default=str))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="idp-copilot", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("serve", help="the webhook receiver, operator API and metrics")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=3000)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("worker", help="an RQ worker that runs the agent")
    p.add_argument("--burst", action="store_true", help="quit when the queue is empty")
    p.add_argument("--name", default=None, help="worker name (default: RQ's)")
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser("receive", help="replay a webhook payload file and run its job here")
    p.add_argument("--event", required=True, help="X-GitHub-Event, e.g. issue_comment")
    p.add_argument("--payload", required=True, help="a JSON payload file")
    p.add_argument("--delivery", default=None, help="delivery id (default: local-receive)")
    p.add_argument("--dry-run", action="store_true", help="answer on the LocalForge, not GitHub")
    p.set_defaults(func=cmd_receive)

    p = sub.add_parser("redeliver", help="ask GitHub to resend the App's failed deliveries")
    p.add_argument("--since", required=True, help="how far back to look: 30m, 6h, 2d")
    p.add_argument("--dry-run", action="store_true", help="list them, resend nothing")
    p.set_defaults(func=cmd_redeliver)

    p = sub.add_parser("demo", help="the whole chain on this machine, nothing configured")
    p.add_argument("--root", default=".idp-local/demo", help="where the LocalForge writes")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("register", help="create the GitHub App from github-app.yml")
    p.add_argument("--org", help="create it for this organization (default: your account)")
    p.add_argument("--host", default="127.0.0.1", help="where the local page listens")
    p.add_argument("--port", type=int, default=3000)
    p.add_argument("--env-file", default=".env", help="file for the credentials (mode 0600)")
    p.add_argument("--force", action="store_true", help="replace an existing --env-file")
    p.add_argument("--manifest", default="github-app.yml", help="the App manifest")
    p.add_argument("--public-url", help="where `serve` is reachable, e.g. https://idp.acme.dev")
    p.add_argument("--name", help="the App's name (unique on the GitHub instance)")
    p.set_defaults(func=cmd_register)

    p = sub.add_parser("init-repo", help="open a PR adding the issue form and config to a repo")
    p.add_argument("repo", metavar="OWNER/REPO")
    p.add_argument("--installation-id", type=int, help="default: looked up on GitHub")
    p.add_argument("--dry-run", action="store_true", help="on the LocalForge, not GitHub")
    p.set_defaults(func=cmd_init_repo)

    p = sub.add_parser("config", help="a repository's settings")
    e = p.add_subparsers(dest="config_command", required=True).add_parser(
        "show", help="the merged settings in force, each with the file it came from"
    )
    e.add_argument("repo", metavar="OWNER/REPO")
    e.add_argument("--installation-id", type=int, help="default: looked up on GitHub")
    e.add_argument("--dry-run", action="store_true", help="read the LocalForge, not GitHub")
    e.add_argument("--json", action="store_true", help="as JSON")
    e.set_defaults(func=cmd_config_show)

    p = sub.add_parser("run", help="run one request in the foreground (LocalForge by default)")
    p.add_argument("request", help='e.g. "/idp create-service payments-api --lang go"')
    p.add_argument("--repo", default=None, help="OWNER/REPO on GitHub (default: local dry run)")
    p.add_argument("--number", type=int, default=1, help="issue number of the session")
    p.add_argument("--user", default="local-operator", help="who asks (permission checks)")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("tools", help="the tool registry")
    t = p.add_subparsers(dest="tools_command", required=True)
    e = t.add_parser("list", help="names, aliases, side effects (--json: with schemas)")
    e.add_argument("--json", action="store_true")
    e.set_defaults(func=cmd_tools_list)
    e = t.add_parser("call", help="invoke one tool directly")
    e.add_argument("name")
    e.add_argument("--args", default="{}", help="arguments as a JSON object")
    e.add_argument("--approved", action="store_true", help="allow an approval-gated tool")
    e.set_defaults(func=cmd_tools_call)

    p = sub.add_parser("feedback", help="users' feedback on sessions")
    e = p.add_subparsers(dest="feedback_command", required=True).add_parser(
        "export", help="feedback with each session's outcome, as JSON lines"
    )
    e.add_argument("--format", choices=["jsonl"], default="jsonl")
    e.add_argument("--output", metavar="FILE", help="file to write (default: stdout)")
    e.set_defaults(func=cmd_feedback_export)

    p = sub.add_parser("audit", help="the log of every side effect")
    e = p.add_subparsers(dest="audit_command", required=True).add_parser(
        "export", help="audit entries, oldest first, as JSON lines"
    )
    e.add_argument("--since", metavar="DURATION", help="only the last DURATION: 24h, 7d, 1h30m")
    e.add_argument("--output", metavar="FILE", help="file to write (default: stdout)")
    e.set_defaults(func=cmd_audit_export)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ConfigError as exc:
        print(f"idp-copilot: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
