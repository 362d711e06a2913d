"""Asynchronous generation against any OpenAI-compatible endpoint: bounded concurrency, a
per-request timeout, and retries with exponential backoff on transient failures."""
from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass

import openai
from openai import AsyncOpenAI

from evals.prompts import Request

# Failures worth another try: the server or the network may recover. Others (400, 401, 404...) are final.
RETRYABLE = (
    openai.APIConnectionError,  # includes APITimeoutError
    openai.RateLimitError,
    openai.InternalServerError,
    openai.ConflictError,
)


class GenerationError(RuntimeError):
    """A request failed for good (after its retries, or with a non-retryable error)."""


@dataclass(frozen=True)
class EndpointConfig:
    """Where and how to ask for completions."""

    base_url: str
    model: str
    api_key: str = "EMPTY"
    concurrency: int = 8
    request_timeout: float = 600.0
    max_retries: int = 4
    backoff_initial: float = 1.0
    backoff_max: float = 30.0
    temperature: float = 0.0
    top_p: float = 1.0
    max_tokens: int = 1024

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ValueError("concurrency must be >= 1")
        if self.max_retries < 0 or self.request_timeout <= 0:
            raise ValueError("max_retries must be >= 0 and request_timeout > 0")
        if not self.base_url.startswith(("http://", "https://")):
            raise ValueError(f"base URL must start with http:// or https://, got {self.base_url!r}")


class Generator:
    """Sends requests with at most `concurrency` in flight. Use as an async context manager."""

    def __init__(self, config: EndpointConfig) -> None:
        self.config = config
        self._client = AsyncOpenAI(
            base_url=config.base_url, api_key=config.api_key or "EMPTY",
            timeout=config.request_timeout, max_retries=0,
        )
        self._slots = asyncio.Semaphore(config.concurrency)

    async def __aenter__(self) -> "Generator":
        return self

    async def __aexit__(self, *exc) -> None:
        await self._client.close()

    async def generate(self, request: Request, seed: int | None = None) -> str:
        """The text of one completion for `request`; raises GenerationError when it cannot get one."""
        async with self._slots:
            attempt = 0
            while True:
                try:
                    return await self._send(request, seed)
                except RETRYABLE as exc:
                    if attempt >= self.config.max_retries:
                        raise GenerationError(f"gave up after {attempt + 1} attempts: {_describe(exc)}") from exc
                    await asyncio.sleep(self._backoff(attempt))
                    attempt += 1
                except openai.OpenAIError as exc:
                    raise GenerationError(_describe(exc)) from exc

    def _backoff(self, attempt: int) -> float:
        """Exponential backoff with full jitter."""
        ceiling = min(self.config.backoff_max, self.config.backoff_initial * 2**attempt)
        return random.uniform(ceiling / 2, ceiling)

    async def _send(self, request: Request, seed: int | None) -> str:
        cfg = self.config
        common = {"model": cfg.model, "temperature": cfg.temperature, "top_p": cfg.top_p,
                  "max_tokens": cfg.max_tokens}
        if seed is not None:
            common["seed"] = seed
        if request.messages is not None:
            reply = await self._client.chat.completions.create(messages=request.messages, **common)
            if not reply.choices:
                raise GenerationError("the server returned no choices")
            return reply.choices[0].message.content or ""
        reply = await self._client.completions.create(prompt=request.prompt, stop=request.stop or None, **common)
        if not reply.choices:
            raise GenerationError("the server returned no choices")
        return reply.choices[0].text or ""


def _describe(exc: Exception) -> str:
    status = getattr(exc, "status_code", None)
    return f"{type(exc).__name__}{f' (HTTP {status})' if status else ''}: {exc}"
