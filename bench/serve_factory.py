"""`idp-copilot serve`'s app behind either ASGI server, for bench/candidates_http.py: `create`
builds the app as `app.cli.cmd_serve` does (settings from the environment, logging, tracing,
`app.server.build_app`); `main` serves it with uvicorn (httptools, uvloop: serve's stack) or
granian (Rust HTTP core, uvloop), one worker process, no access log.

Run: `python -m bench.serve_factory uvicorn|granian --host 127.0.0.1 --port 3001`
"""

from __future__ import annotations

import argparse


def create():
    """The ASGI app `idp-copilot serve` runs (its factory, for servers that import one)."""
    from app.cli import _settings
    from app.logs import configure_logging
    from app.server import build_app
    from app.tracing import configure_tracing

    settings = _settings()
    configure_logging(settings)
    configure_tracing(settings, "idp-copilot-web")
    return build_app(settings)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.serve_factory", description=__doc__)
    parser.add_argument("server", choices=("uvicorn", "granian"))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3001)
    args = parser.parse_args(argv)
    if args.server == "uvicorn":
        import uvicorn

        # cmd_serve's arguments, with the HTTP parser and loop it picks written out.
        uvicorn.run(
            create(), host=args.host, port=args.port, http="httptools", loop="uvloop",
            log_level="info", access_log=False, log_config=None,
        )  # fmt: skip
        return 0
    from granian import Granian
    from granian.constants import HTTPModes, Interfaces, Loops

    # One worker process (granian's main process only supervises it), one runtime thread.
    Granian(
        "bench.serve_factory:create", address=args.host, port=args.port, factory=True,
        interface=Interfaces.ASGI, workers=1, runtime_threads=1, http=HTTPModes.http1,
        loop=Loops.uvloop, log_access=False,
    ).serve()  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
