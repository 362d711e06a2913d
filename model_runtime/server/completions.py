"""POST /v1/completions: one prompt (text, or token ids used as given), `n` choices, whole or streamed.

A text prompt is tokenised with BOS first, as `LLM.generate` does. `echo`, `suffix`,
`best_of` other than `n`, and several prompts in one request are refused with a 400.
"""
from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from model_runtime.engine.outputs import StepOutput
from model_runtime.server.chat import CLIENT_CLOSED_REQUEST
from model_runtime.server.context import ServerContext, completion_logprobs, sse
from model_runtime.server.errors import bad_request, error_body
from model_runtime.server.generation import collect_or_cancel, merge, start_choices
from model_runtime.server.protocol import CompletionRequest, Usage, new_id, now
from model_runtime.server.sampling import build_sampling_params, choice_seed, max_new_tokens

log = logging.getLogger(__name__)

DEFAULT_MAX_TOKENS = 16  # OpenAI's default for /v1/completions


def _prompt_ids(ctx: ServerContext, prompt: Any) -> list[int]:
    if isinstance(prompt, list) and prompt and isinstance(prompt[0], (str, list)):
        if len(prompt) != 1:
            raise bad_request("several prompts in one request are not supported; send one request per prompt",
                              "prompt")
        prompt = prompt[0]
    if isinstance(prompt, str):
        if not prompt:
            raise bad_request("the prompt is empty", "prompt")
        return ctx.tokenizer.encode(prompt, add_bos=True)
    if not prompt:
        raise bad_request("the prompt is empty", "prompt")
    return list(prompt)


async def create_completion(ctx: ServerContext, body: CompletionRequest, request: Request) -> Response:
    ctx.check_model(body.model)
    if body.echo:
        raise bad_request("echo is not supported", "echo")
    if body.suffix:
        raise bad_request("suffix is not supported", "suffix")
    if body.best_of not in (None, body.n):
        raise bad_request("best_of other than n is not supported", "best_of")
    prompt_ids = _prompt_ids(ctx, body.prompt)
    max_tokens = max_new_tokens(body.max_tokens, len(prompt_ids), ctx.engine.max_model_len, "prompt")
    if body.max_tokens is None:
        max_tokens = min(max_tokens, DEFAULT_MAX_TOKENS)
    params = [build_sampling_params(body, max_tokens=max_tokens, logprobs=body.logprobs, logits_processors=[],
                                    seed=choice_seed(body.seed, i)) for i in range(body.n)]
    request_id = new_id("cmpl")
    outputs = await start_choices(ctx.engine, ctx.metrics, prompt_ids, params, request_id)
    header = {"id": request_id, "object": "text_completion", "created": now(), "model": ctx.model_name}
    if body.stream:
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        return StreamingResponse(_stream(ctx, outputs, header, include_usage, body.logprobs is not None),
                                 media_type="text/event-stream")
    collected = await collect_or_cancel(outputs, request)
    if collected is None:
        return Response(status_code=CLIENT_CLOSED_REQUEST)
    choices = [{
        "index": index,
        "text": choice.text,
        "logprobs": completion_logprobs(ctx, choice.logprobs) if body.logprobs is not None else None,
        "finish_reason": choice.finish_reason,
    } for index, choice in enumerate(collected)]
    usage = Usage.of(collected[0].prompt_tokens, sum(c.completion_tokens for c in collected))
    return JSONResponse({**header, "choices": choices, "usage": usage.model_dump()})


async def _stream(ctx: ServerContext, outputs: list[AsyncIterator[StepOutput]], header: dict, include_usage: bool,
                  logprobs: bool) -> AsyncIterator[str]:
    prompt_tokens, completion_tokens = 0, [0] * len(outputs)
    offsets = [0] * len(outputs)
    async with contextlib.aclosing(merge(outputs)) as merged:
        try:
            async for index, output in merged:
                lp = (completion_logprobs(ctx, output.logprobs, offsets[index])
                      if logprobs and output.logprobs else None)
                offsets[index] += len(output.text_delta)
                prompt_tokens, completion_tokens[index] = output.num_prompt_tokens, output.num_output_tokens
                if output.text_delta or lp or output.finished:
                    yield sse({**header, "choices": [{
                        "index": index, "text": output.text_delta, "logprobs": lp,
                        "finish_reason": output.finish_reason if output.finished else None,
                    }]})
        except Exception as exc:  # the engine failed mid-stream: tell the client in-band
            log.exception("generation failed during a stream")
            yield sse(error_body(500, f"generation failed: {exc}"))
    if include_usage:
        yield sse({**header, "choices": [], "usage": Usage.of(prompt_tokens, sum(completion_tokens)).model_dump()})
    yield sse("[DONE]")
