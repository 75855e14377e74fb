"""GitHub's web address, derived from the REST API root the App is configured with."""

from __future__ import annotations

from urllib.parse import urlsplit


def web_url(api_url: str) -> str | None:
    """api.github.com → github.com, GitHub Enterprise Server's https://HOST/api/v3 →
    https://HOST (api.X.ghe.com → X.ghe.com); None for any other address."""
    parts = urlsplit(api_url.strip().rstrip("/"))
    host = parts.netloc
    if parts.scheme in ("http", "https") and host:
        if parts.path in ("", "/") and host.startswith("api."):
            return f"{parts.scheme}://{host.removeprefix('api.')}"
        if parts.path == "/api/v3":
            return f"{parts.scheme}://{host}"
    return None
