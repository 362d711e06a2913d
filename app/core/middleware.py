"""Pure ASGI middlewares: request ids + access log, request timeouts, and the app's body limits
(for model_runtime's BodyLimitMiddleware).

Written against ASGI directly (not BaseHTTPMiddleware) so streamed responses pass through
untouched and the body can be counted while it is read.
"""
import asyncio
import json
import logging
import time
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from model_runtime.server.body_limit import LimitFor

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


def body_limits(max_body_bytes: int, max_upload_bytes: int) -> LimitFor:
    """The app's body limits: `max_upload_bytes` for multipart uploads, `max_body_bytes` otherwise."""

    def limit_for(headers: dict[bytes, bytes]) -> tuple[int, str]:
        if headers.get(b"content-type", b"").startswith(b"multipart/form-data"):
            return max_upload_bytes, "upload"
        return max_body_bytes, "request body"

    return limit_for


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
