"""What every handler of one server needs: the engine, the served name, metrics, grammars."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Protocol

from model_runtime.engine.outputs import TokenLogprob
from model_runtime.server.constrained import GrammarBackend
from model_runtime.server.errors import APIError
from model_runtime.server.metrics import ServerMetrics
from model_runtime.server.protocol import now
from model_runtime.tokenizer import DeepSeekTokenizer


class Engine(Protocol):
    """The part of `AsyncLLMEngine` the server uses."""

    tokenizer: DeepSeekTokenizer
    max_model_len: int

    def generate(self, prompt_token_ids: list[int], params: Any, request_id: str) -> Any: ...

    async def abort(self, request_id: str) -> None: ...

    def stats(self) -> dict[str, Any]: ...


@dataclass
class ServerContext:
    engine: Engine
    model_name: str
    model_root: str
    metrics: ServerMetrics
    grammars: GrammarBackend
    reasoning_parser: str = "deepseek_r1"  # or "none": thinking stays in `content`
    created: int = field(default_factory=now)

    @property
    def tokenizer(self) -> DeepSeekTokenizer:
        return self.engine.tokenizer

    def check_model(self, model: str) -> None:
        if model != self.model_name:
            raise APIError(404, f"The model `{model}` does not exist; this server serves `{self.model_name}`.",
                           "model", "model_not_found")

    def token_text(self, token_id: int) -> str:
        return self.tokenizer.decode([token_id])


def sse(payload: dict[str, Any] | str) -> str:
    """One server-sent event carrying JSON (or the literal `[DONE]`)."""
    data = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)
    return f"data: {data}\n\n"


def chat_logprobs(ctx: ServerContext, logprobs: list[TokenLogprob]) -> dict[str, Any]:
    """OpenAI chat `logprobs` object: {"content": [{token, logprob, bytes, top_logprobs}]}."""

    def entry(token_id: int, logprob: float) -> dict[str, Any]:
        text = ctx.token_text(token_id)
        return {"token": text, "logprob": logprob, "bytes": list(text.encode("utf-8"))}

    return {"content": [
        {**entry(lp.token_id, lp.logprob), "top_logprobs": [entry(t, v) for t, v in lp.top.items()]}
        for lp in logprobs
    ]}


def completion_logprobs(ctx: ServerContext, logprobs: list[TokenLogprob], offset: int = 0) -> dict[str, Any]:
    """OpenAI completions `logprobs` object: tokens, token_logprobs, top_logprobs, text_offset."""
    tokens, offsets = [], []
    for lp in logprobs:
        text = ctx.token_text(lp.token_id)
        tokens.append(text)
        offsets.append(offset)
        offset += len(text)
    return {
        "tokens": tokens,
        "token_logprobs": [lp.logprob for lp in logprobs],
        "top_logprobs": [{ctx.token_text(t): v for t, v in lp.top.items()} for lp in logprobs],
        "text_offset": offsets,
    }
