"""`FakeGitHub` served over real HTTP on loopback, for tests that run the App as subprocesses
(`idp-copilot serve`, `idp-copilot worker`) with `GITHUB_API_URL` pointing here."""

from __future__ import annotations

import asyncio
import re
import socket
import threading
import time
from dataclasses import dataclass, field

import httpx
import respx
import uvicorn

from tests.fake_github import FakeGitHub
from tests.github_api import Where


@dataclass
class Hold:
    """One request kept waiting: `reached` is set when it arrives, and it is answered (as
    GitHub would have, even if the caller is gone by then) once `release()` is called."""

    method: str
    path: re.Pattern[str]
    reached: threading.Event = field(default_factory=threading.Event)
    released: threading.Event = field(default_factory=threading.Event)

    def release(self) -> None:
        self.released.set()


class GitHubStandIn:
    """A FakeGitHub for `owner/name` behind a uvicorn server on 127.0.0.1 (a free port)."""

    def __init__(self, owner: str = "acme", name: str = "shop") -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        self.router = respx.MockRouter(assert_all_called=False, assert_all_mocked=True)
        self.github = FakeGitHub(self.router, at=Where(api=self.url, owner=owner, name=name))
        self.unmatched: list[str] = []
        self.holds: list[Hold] = []
        self._lock = threading.Lock()
        config = uvicorn.Config(self._asgi, log_level="warning", lifespan="off", interface="asgi3")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.run(self._server.serve(sockets=[self._sock]))

    def hold(self, method: str, path_regex: str) -> Hold:
        """Keep the next `method` request whose path matches `path_regex` waiting until the
        returned hold is released: the App's call stays in flight (a run paused at a known
        point). Other requests are served meanwhile."""
        hold = Hold(method, re.compile(path_regex))
        self.holds.append(hold)
        return hold

    async def _wait_if_held(self, method: str, path: str) -> None:
        for hold in self.holds:
            if hold.method == method and not hold.reached.is_set() and hold.path.search(path):
                hold.reached.set()
                while not hold.released.is_set():
                    await asyncio.sleep(0.05)
                return

    async def _asgi(self, scope, receive, send) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        await self._wait_if_held(scope["method"], scope["path"])
        query = scope.get("query_string", b"").decode()
        url = f"{self.url}{scope['path']}" + (f"?{query}" if query else "")
        headers = [(k.decode(), v.decode()) for k, v in scope["headers"]]
        request = httpx.Request(scope["method"], url, headers=headers, content=body)
        with self._lock:
            try:
                response = self.router.handler(request)
            except Exception as exc:  # an unmocked path: answer like GitHub, and remember it
                self.unmatched.append(f"{scope['method']} {scope['path']}: {exc}")
                response = httpx.Response(404, json={"message": "Not Found"})
        response.read()
        out_headers = [
            (k.encode(), v.encode())
            for k, v in response.headers.items()
            if k.lower() not in ("content-length", "transfer-encoding", "content-encoding")
        ]
        out_headers.append((b"content-length", str(len(response.content)).encode()))
        await send(
            {"type": "http.response.start", "status": response.status_code, "headers": out_headers}
        )
        await send({"type": "http.response.body", "body": response.content})

    def __enter__(self) -> GitHubStandIn:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        for hold in self.holds:
            hold.release()
        self._server.should_exit = True
        self._thread.join(timeout=10)
