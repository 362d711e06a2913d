"""Pure ASGI middlewares: request ids + access log, body-size limits, request timeouts.

Written against ASGI directly (not BaseHTTPMiddleware) so streamed responses pass through
untouched and the body can be counted while it is read.
"""
import asyncio
import json
import logging
import time
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.errors import error_payload
from app.core.logging import request_id_var

log = logging.getLogger("app.request")


async def send_json(scope: Scope, send: Send, status: int, detail: str,
                    headers: list[tuple[bytes, bytes]] = ()) -> None:
    """Send a complete JSON error response (OpenAI's shape under /v1, see app.core.errors)."""
    body = json.dumps(error_payload(scope["path"], status, detail)).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *headers],
        }
    )
    await send({"type": "http.response.body", "body": body})


class RequestContextMiddleware:
    """Give each request an id (from `X-Request-ID` or fresh), echo it, log one line per request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        request_id = headers.get(b"x-request-id", b"").decode("latin-1")[:64] or uuid.uuid4().hex
        token = request_id_var.set(request_id)
        status = {"code": 500}
        start = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            log.info(
                "request",
                extra={
                    "method": scope["method"],
                    "path": scope["path"],
                    "status": status["code"],
                    "duration_ms": round((time.perf_counter() - start) * 1000, 1),
                    "client": (scope.get("client") or ("", 0))[0],
                },
            )
            request_id_var.reset(token)


class BodyLimitMiddleware:
    """413 for bodies over the limit: `max_upload_bytes` for multipart uploads, `max_body_bytes`
    otherwise. Checks `Content-Length` up front and counts chunked bodies as they stream in."""

    def __init__(self, app: ASGIApp, max_body_bytes: int, max_upload_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_upload_bytes = max_upload_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        is_upload = headers.get(b"content-type", b"").startswith(b"multipart/form-data")
        limit = self.max_upload_bytes if is_upload else self.max_body_bytes
        what = "upload" if is_upload else "request body"
        message = f"{what} too large: the limit is {limit} bytes"
        try:
            declared = int(headers.get(b"content-length", b"0"))
        except ValueError:
            return await send_json(scope, send, 400, "invalid Content-Length header")
        if declared > limit:
            return await send_json(scope, send, 413, message)

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
                        await send_json(scope, send, 413, message)
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


class TimeoutMiddleware:
    """504 when a request has not started its response within `timeout_s`.

    Streaming responses are unaffected once their first byte is sent. Paths under
    `exempt_prefixes` (the model proxy, which has its own upstream timeout) are not timed.
    """

    def __init__(self, app: ASGIApp, timeout_s: float, exempt_prefixes: tuple[str, ...] = ()) -> None:
        self.app = app
        self.timeout_s = timeout_s
        self.exempt_prefixes = exempt_prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(self.exempt_prefixes):
            return await self.app(scope, receive, send)
        started = asyncio.Event()

        async def tracking_send(msg: Message) -> None:
            if msg["type"] == "http.response.start":
                started.set()
            await send(msg)

        task = asyncio.ensure_future(self.app(scope, receive, tracking_send))
        waiter = asyncio.ensure_future(started.wait())
        done, _ = await asyncio.wait({task, waiter}, timeout=self.timeout_s, return_when=asyncio.FIRST_COMPLETED)
        if not done:
            task.cancel()
            waiter.cancel()
            await send_json(scope, send, 504, f"request timed out after {self.timeout_s:g} s")
            return
        waiter.cancel()
        await task
