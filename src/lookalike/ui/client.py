"""Call the ASGI app in-process, without a server or an HTTP client (``serve --get``)."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import unquote


def asgi_get(app: Any, path: str) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """``GET path`` on ``app``; returns status, headers and the whole body."""
    return asyncio.run(_get(app, path))


async def _get(app: Any, path: str) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    raw_path, _, query = path.partition("?")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": unquote(raw_path),
        "raw_path": raw_path.encode("latin-1", "replace"),
        "query_string": query.encode("latin-1", "replace"),
        "root_path": "",
        "headers": [(b"host", b"localhost"), (b"accept", b"*/*")],
        "client": ("127.0.0.1", 0),
        "server": ("localhost", 80),
        "state": {},
    }
    response: dict[str, Any] = {"status": 500, "headers": [], "body": bytearray()}
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await asyncio.Event().wait()  # never disconnects while the app answers
        return {"type": "http.disconnect"}  # pragma: no cover

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            response["status"] = message["status"]
            response["headers"] = list(message.get("headers", []))
        elif message["type"] == "http.response.body":
            response["body"] += message.get("body", b"")

    await app(scope, receive, send)
    return response["status"], response["headers"], bytes(response["body"])
