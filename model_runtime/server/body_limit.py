"""A request-body size limit as pure ASGI middleware: 413 before anything is parsed or tokenised.

`Content-Length` is checked up front and bodies without one (chunked) are counted as they stream
in, so a 10 MB body is refused after its first chunks instead of being read, parsed and tokenised.
Written against ASGI directly so streamed responses pass through untouched. The platform app
reuses it with its own limits (uploads vs JSON) and error bodies.
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

# (scope, send, status, message) -> sends a complete error response
Reject = Callable[[Scope, Send, int, str], Awaitable[None]]
# request headers -> (limit in bytes, what the body is called in the message)
LimitFor = Callable[[dict[bytes, bytes]], tuple[int, str]]


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, limit_for: LimitFor, reject: Reject) -> None:
        self.app = app
        self.limit_for = limit_for
        self.reject = reject

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        limit, what = self.limit_for(headers)
        message = f"{what} too large: the limit is {limit} bytes"
        try:
            declared = int(headers.get(b"content-length", b"0"))
        except ValueError:
            return await self.reject(scope, send, 400, "invalid Content-Length header")
        if declared > limit:
            return await self.reject(scope, send, 413, message)

        received = 0
        started = False  # the app has started its response
        rejected = False  # we answered 413 ourselves; the app's own response is dropped

        async def counting_receive() -> Message:
            nonlocal received, rejected
            msg = await receive()
            if msg["type"] == "http.request":
                received += len(msg.get("body", b""))
                if received > limit and not rejected:
                    rejected = True
                    if not started:
                        await self.reject(scope, send, 413, message)
                    # Frameworks turn exceptions while reading the body into 400, so end the body
                    # as a client disconnect instead; whatever the app answers is not sent.
                    return {"type": "http.disconnect"}
            return msg

        async def guarded_send(msg: Message) -> None:
            nonlocal started
            if rejected:
                return
            started = started or msg["type"] == "http.response.start"
            await send(msg)

        await self.app(scope, counting_receive, guarded_send)
