"""ASGI middleware in front of every route: the bearer token, then the body cap.

The cap is counted on the bytes actually received, so a chunked body (no Content-Length)
is held to it too; a declared Content-Length over the cap is refused before any is read.
"""

from __future__ import annotations

import hmac
from collections import deque

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send


def authorized(header: str, token: str) -> bool:
    scheme, _, given = header.partition(" ")
    # constant-time: the comparison must not leak how much of a guess was right
    return scheme.lower() == "bearer" and hmac.compare_digest(given.encode(), token.encode())


class Guard:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        settings = scope["app"].state.rlef.settings
        headers = Headers(scope=scope)
        if settings.api_token and scope["path"] != "/healthz" and not authorized(
                headers.get("authorization", ""), settings.api_token):
            await JSONResponse(status_code=401, headers={"WWW-Authenticate": "Bearer"},
                               content={"detail": "missing or wrong bearer token"},
                               )(scope, receive, send)
            return
        cap = settings.max_body_mb * 1024 * 1024
        size = headers.get("content-length", "")
        body = None if size.isdigit() and int(size) > cap else await read_body(receive, cap)
        if body is None:
            await JSONResponse(status_code=413, content={"detail": f"body over {cap} bytes"},
                               )(scope, receive, send)
            return
        await self.app(scope, replay(body, receive), send)


async def read_body(receive: Receive, cap: int) -> list[Message] | None:
    """The request's body messages, or None once they add up to more than `cap` bytes."""
    messages, size = [], 0
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return messages  # the client went away: the app sees that too
        size += len(message.get("body", b""))
        if size > cap:
            return None
        if not message.get("more_body", False):
            return messages


def replay(messages: list[Message], receive: Receive) -> Receive:
    pending = deque(messages)

    async def next_message() -> Message:
        return pending.popleft() if pending else await receive()
    return next_message
