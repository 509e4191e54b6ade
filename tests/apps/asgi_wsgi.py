"""The test server as an ASGI app (`asgi`, for uvicorn) and a WSGI app (`wsgi`, for
gunicorn): both answer `VERSION PID`, VERSION read from ./version.txt when the app loads."""

import os
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

VERSION = Path("version.txt").read_text().strip()


def _body() -> bytes:
    return f"{VERSION} {os.getpid()}".encode()


async def asgi(
    scope: dict[str, Any], receive: Callable[[], Awaitable[Any]],
    send: Callable[[dict[str, Any]], Awaitable[None]],
) -> None:
    if scope["type"] != "http":
        return
    body = _body()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    body = _body()
    start_response("200 OK", [("Content-Length", str(len(body)))])
    return [body]
