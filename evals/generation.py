"""Asynchronous generation against any OpenAI-compatible endpoint, with bounded concurrency.

The connection, timeouts and retries are the shared client's (tools/openai_client.py: the
openai client's own retries with exponential backoff on connection errors, timeouts, 408, 409,
429 and 5xx). Chat replies are graded on the answer, never on the thinking."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass

import openai

from evals.prompts import Request
from tools.openai_client import ModelEndpoint, ModelError, answer_text, model_error

__all__ = ["EndpointConfig", "Generator", "ModelError"]


@dataclass(frozen=True)
class EndpointConfig(ModelEndpoint):
    """Where and how to ask for completions: the endpoint plus concurrency and sampling."""

    timeout_s: float = 600.0
    concurrency: int = 8
    temperature: float = 0.0
    top_p: float = 1.0
    max_tokens: int = 1024

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.concurrency < 1:
            raise ValueError("concurrency must be >= 1")


class Generator:
    """Sends requests with at most `concurrency` in flight. Use as an async context manager."""

    def __init__(self, config: EndpointConfig) -> None:
        self.config = config
        self._client = config.async_client()
        self._slots = asyncio.Semaphore(config.concurrency)

    async def __aenter__(self) -> "Generator":
        return self

    async def __aexit__(self, *exc) -> None:
        await self._client.close()

    async def generate(self, request: Request, seed: int | None = None) -> tuple[str, int]:
        """(text of one completion for `request`, its completion tokens); raises ModelError when it
        cannot get one."""
        async with self._slots:
            try:
                return await self._send(request, seed)
            except openai.OpenAIError as exc:
                raise model_error(exc, self.config) from exc

    async def _send(self, request: Request, seed: int | None) -> tuple[str, int]:
        cfg = self.config
        common = {"model": cfg.model, "temperature": cfg.temperature, "top_p": cfg.top_p,
                  "max_tokens": cfg.max_tokens}
        if seed is not None:
            common["seed"] = seed
        if request.messages is not None:
            reply = await self._client.chat.completions.create(messages=request.messages, **common)
            text = answer_text(reply.choices[0].message.content) if reply.choices else None
        else:
            reply = await self._client.completions.create(prompt=request.prompt, stop=request.stop or None, **common)
            text = reply.choices[0].text if reply.choices else None
        if not reply.choices:
            raise ModelError("the server returned no choices")
        return text or "", reply.usage.completion_tokens if reply.usage else 0
