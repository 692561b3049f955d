"""A pure-ASGI body size limit: counts bytes as they arrive, never buffers.

A declared ``Content-Length`` over the limit is refused before any byte is read. A body
without one (chunked) is counted chunk by chunk as the handler reads it; the chunk that
crosses the limit raises :class:`PayloadTooLarge` inside the handler, so the app's one
``ModelpilotError`` handler answers it like any other error. Either way the rest of the
body is read and discarded (up to a cap) before answering, so the client, still sending,
gets the 413 rather than a reset connection.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson

from modelpilot.serving.schema import PayloadTooLarge

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# drain at most this many bytes of a refused body; beyond, the connection is just closed
_DRAIN_CAP = 64 * 1024 * 1024


def _message(limit: int, size: int | None) -> str:
    got = f"{size} bytes" if size is not None else "more"
    return (
        f"the request body is {got}, over serving.max_body_bytes={limit}: send fewer "
        "instances per request or raise the setting"
    )


async def _drain(receive: Receive, already: int) -> None:
    seen = already
    while seen < _DRAIN_CAP:
        message = await receive()
        if message["type"] != "http.request":
            return
        seen += len(message.get("body", b""))
        if not message.get("more_body", False):
            return


class BodyLimitMiddleware:
    """Refuse request bodies over ``max_bytes`` with a 413 JSON error.

    Args:
        app: the wrapped ASGI app.
        max_bytes: the largest accepted body.
        on_reject: called once per refused request (metrics).
    """

    def __init__(self, app: ASGIApp, max_bytes: int, on_reject: Callable[[], None] | None = None):
        self.app = app
        self.max_bytes = max_bytes
        self.on_reject = on_reject

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_bytes
        for key, value in scope["headers"]:
            if key == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > limit:
                    await _drain(receive, 0)
                    await self._refuse(send, _message(limit, declared))
                    return
                break
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    if message.get("more_body", False):
                        await _drain(receive, received)
                    raise PayloadTooLarge(_message(limit, None))
            return message

        await self.app(scope, counted, send)

    async def _refuse(self, send: Send, text: str) -> None:
        if self.on_reject is not None:
            self.on_reject()
        body = orjson.dumps(PayloadTooLarge(text).to_dict())
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
