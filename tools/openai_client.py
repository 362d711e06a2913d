"""The one OpenAI-API client of agents and evals: our runtime, vLLM or a hosted API.

`ModelEndpoint(base_url, model, api_key, timeout_s, max_retries)` is built once and makes the
`openai` clients (`client()`, `async_client()`). Retries are the openai client's own: connection
errors, timeouts, 408, 409, 429 and 5xx are retried `max_retries` times with exponential backoff
(honouring `Retry-After`), other 4xx are final; each attempt is bounded by `timeout_s`.
`model_error` turns what is left into a `ModelError` with a message fit for a user.

Agents and evals use the answer, not the thinking: a server with a reasoning parser (ours,
vLLM's `--reasoning-parser`, DeepSeek's API) returns the thinking as `reasoning_content`, which
they never read; `answer_text` also drops a leading `<think>...</think>` from `content`, for
servers that leave it there.
"""
from __future__ import annotations

from dataclasses import dataclass

import openai

THINK_BEGIN, THINK_END = "<think>", "</think>"


class ModelError(RuntimeError):
    """The model endpoint failed (after retries), with a message fit for a user."""


@dataclass(frozen=True)
class ModelEndpoint:
    """Where the model is and how patiently to ask it."""

    base_url: str
    model: str
    api_key: str = "EMPTY"
    timeout_s: float = 120.0
    max_retries: int = 3

    def __post_init__(self) -> None:
        if not self.base_url.startswith(("http://", "https://")):
            raise ValueError(f"base URL must start with http:// or https://, got {self.base_url!r}")
        if self.timeout_s <= 0 or self.max_retries < 0:
            raise ValueError("timeout_s must be > 0 and max_retries >= 0")

    def client(self) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.base_url, api_key=self.api_key or "EMPTY", timeout=self.timeout_s,
                             max_retries=self.max_retries)

    def async_client(self) -> openai.AsyncOpenAI:
        """An asyncio client; create it inside the event loop that uses it."""
        return openai.AsyncOpenAI(base_url=self.base_url, api_key=self.api_key or "EMPTY", timeout=self.timeout_s,
                                  max_retries=self.max_retries)


def _server_message(exc: openai.APIStatusError) -> str:
    body = exc.body if isinstance(exc.body, dict) else {}
    error = body.get("error", body)
    return error.get("message", str(exc)) if isinstance(error, dict) else str(error)


def model_error(exc: openai.OpenAIError, endpoint: ModelEndpoint) -> ModelError:
    """The user-facing error for an openai exception raised against `endpoint`."""
    retries = f"{endpoint.max_retries} retries"
    if isinstance(exc, openai.APIStatusError):
        return ModelError(f"model endpoint returned HTTP {exc.status_code}: {_server_message(exc)}")
    if isinstance(exc, openai.APITimeoutError):
        return ModelError(f"model endpoint timed out after {endpoint.timeout_s:g}s ({retries})")
    if isinstance(exc, openai.APIConnectionError):
        return ModelError(f"cannot reach the model endpoint {endpoint.base_url} ({retries}): {exc}")
    return ModelError(f"model endpoint error: {type(exc).__name__}: {exc}")


def answer_text(content: str | None) -> str | None:
    """`content` without a leading `<think>...</think>` block (left there by servers that do not
    split reasoning); an answer whose thinking never ended is empty."""
    if content is None or not content.lstrip().startswith(THINK_BEGIN):
        return content
    _, end, answer = content.partition(THINK_END)
    return answer.lstrip() if end else ""
