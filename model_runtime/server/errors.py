"""OpenAI-style errors: `{"error": {"message", "type", "param", "code"}}` with the right status.

Every failure path of the server ends here: `APIError` raised by handlers, FastAPI's request
validation (422 in FastAPI, 400 in OpenAI, so 400 here), Starlette's HTTP errors (404 route,
405 method) and, as a last resort, unexpected exceptions (500, logged with the traceback).
"""
from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Scope, Send

log = logging.getLogger(__name__)

ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 404: "invalid_request_error",
               405: "invalid_request_error", 413: "invalid_request_error", 500: "internal_error",
               503: "service_unavailable"}


class APIError(Exception):
    """An error to return to the client as OpenAI error JSON."""

    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code


def bad_request(message: str, param: str | None = None, code: str | None = None) -> APIError:
    return APIError(400, message, param, code)


def error_body(status: int, message: str, param: str | None = None, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": ERROR_TYPES.get(status, "invalid_request_error"),
                      "param": param, "code": code}}


async def send_error(scope: Scope, send: Send, status: int, message: str) -> None:
    """Send a complete OpenAI error response from ASGI middleware (before any route runs)."""
    await JSONResponse(error_body(status, message), status_code=status)(scope, _no_body, send)


async def _no_body() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


def error_response(error: APIError) -> JSONResponse:
    return JSONResponse(error_body(error.status, error.message, error.param, error.code), status_code=error.status)


def _location(loc: tuple[Any, ...]) -> str | None:
    """`("body", "messages", 0, "role")` -> `"messages[0].role"`."""
    parts = [p for p in loc if p != "body"]
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or None


def _validation_message(exc: RequestValidationError) -> tuple[str, str | None]:
    errors = exc.errors()
    if not errors:
        return "invalid request", None
    first = errors[0]
    if first.get("type") == "json_invalid":
        return "the request body is not valid JSON", None
    messages = []
    for error in errors[:5]:
        where = _location(tuple(error.get("loc", ())))
        messages.append(f"{where}: {error.get('msg')}" if where else str(error.get("msg")))
    return "; ".join(messages), _location(tuple(first.get("loc", ())))


def install_error_handlers(app: FastAPI) -> None:
    """Route every error of `app` through the OpenAI error JSON."""

    @app.exception_handler(APIError)
    async def _api_error(request: Request, exc: APIError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        message, param = _validation_message(exc)
        return error_response(bad_request(message, param))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        return JSONResponse(error_body(exc.status_code, message), status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse(error_body(500, "internal server error"), status_code=500)
