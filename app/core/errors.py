"""Error bodies: `{"detail": ...}` for the platform's own API, OpenAI's `{"error": {...}}` under `/v1`.

OpenAI clients (the `openai` package, LangChain, vLLM's clients) read `error.message`, so every
error the app itself produces on a `/v1` path (401, 403, 413, 429, 504, validation, proxy refusals)
has that shape; errors the model backend returns are passed through as they are.
"""
from typing import Any

OPENAI_PREFIX = "/v1"
ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
               404: "not_found_error", 405: "invalid_request_error", 413: "invalid_request_error",
               422: "invalid_request_error", 429: "rate_limit_error", 502: "api_error", 503: "api_error",
               504: "timeout_error"}


def is_openai_path(path: str) -> bool:
    return path == OPENAI_PREFIX or path.startswith(OPENAI_PREFIX + "/")


def error_payload(path: str, status: int, message: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The JSON body for an error on `path`."""
    if is_openai_path(path):
        kind = ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
        return {"error": {"message": message, "type": kind, "param": None, "code": str(status)}}
    return {"detail": message, **(extra or {})}
