"""The baseline of the ingest benchmark: one Starlette POST route that reads the body and
answers a small JSON, served by uvicorn exactly as `idp-copilot serve` serves the App.

Whatever the App's receiver costs beyond this (signature check, routing, the Redis round
trip) is what the ingest benchmark's ratio measures.

Run: `python -m bench.bare_app --host 127.0.0.1 --port 3001`
"""

from __future__ import annotations

import argparse

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


async def receive(request: Request) -> Response:
    # The body is read so the baseline pays for receiving the same delivery as the App does.
    await request.body()
    return JSONResponse({"status": "ok"}, status_code=202)


def create_app() -> Starlette:
    # The App's webhook path (app.web.WEBHOOK_PATH), written out so nothing of the App loads.
    return Starlette(routes=[Route("/api/github/webhooks", receive, methods=["POST"])])


def main(argv: list[str] | None = None) -> int:
    import uvicorn

    parser = argparse.ArgumentParser(prog="python -m bench.bare_app", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3001)
    args = parser.parse_args(argv)
    # The same uvicorn arguments as app/cli.py `cmd_serve`, so only the app differs.
    uvicorn.run(
        create_app(),
        host=args.host,
        port=args.port,
        log_level="info",
        access_log=False,
        log_config=None,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
