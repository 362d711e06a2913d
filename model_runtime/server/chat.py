"""POST /v1/chat/completions: prompt rendering, tool choice, response_format, whole or streamed.

Tool choice (docs/SERVER.md):
- "none": the tools are left out of the prompt and the output is plain content.
- "auto" (the default with tools): the tools go into the system prompt; calls the model writes
  in DeepSeek's format are parsed into `tool_calls` (several calls: parallel tool calls).
- "required" / a named function: as "auto", plus constrained decoding (a structural-tag
  grammar) that makes the output one tool-call section: one or more calls (one call when
  `parallel_tool_calls` is false or a function is named) whose arguments match the schema.
`response_format` json_object / json_schema is enforced by constrained decoding too.

Reasoning (`--reasoning-parser deepseek_r1`, the default): when the rendered prompt ends in
`<think>` (R1; V3.1 with `chat_template_kwargs: {"thinking": true}`) or the output starts with
`<think>`, the thinking comes back as `reasoning_content` and only the answer as `content`
(tool calls are parsed from the answer). A grammar (response_format, forced tool calls) holds
the output from its first token, so such requests have no thinking.

`n` > 1: n engine requests on one prompt (generation.start_choices shares it through the prefix
cache); choice i samples with `seed + i` when a seed is given. Usage counts the prompt once.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

import xgrammar as xgr

from model_runtime.chat_template import ChatTemplateError
from model_runtime.engine.outputs import StepOutput
from model_runtime.reasoning import prompt_opens_thinking
from model_runtime.server.chat_output import ChoiceStream, OutputPlan
from model_runtime.server.constrained import GrammarError
from model_runtime.server.context import ServerContext, chat_logprobs, sse
from model_runtime.server.errors import bad_request, error_body
from model_runtime.server.generation import Collected, collect_or_cancel, merge, start_choices
from model_runtime.server.protocol import ChatCompletionRequest, NamedToolChoice, Usage, new_id, now
from model_runtime.server.sampling import build_sampling_params, choice_seed, max_new_tokens

log = logging.getLogger(__name__)

CLIENT_CLOSED_REQUEST = 499


@dataclass(frozen=True)
class ToolPlan:
    """How a request uses its tools: mode "none" | "auto" | "required" | "named"."""

    mode: str
    tools: list[dict[str, Any]] = field(default_factory=list)  # OpenAI tool dicts, for the prompt
    forced: list[tuple[str, dict[str, Any] | None]] = field(default_factory=list)  # (name, parameters)

    @property
    def names(self) -> list[str]:
        return [tool["function"]["name"] for tool in self.tools]

    @classmethod
    def of(cls, body: ChatCompletionRequest) -> "ToolPlan":
        tools = body.tools or []
        choice = body.tool_choice if body.tool_choice is not None else ("auto" if tools else "none")
        if not tools:
            if choice != "none":
                raise bad_request("tool_choice other than 'none' needs a non-empty `tools` list", "tool_choice")
            return cls("none")
        if choice == "none":
            return cls("none")
        dicts = [tool.model_dump(exclude_none=True) for tool in tools]
        if len(set(t.function.name for t in tools)) != len(tools):
            raise bad_request("tool names must be unique", "tools")
        if choice == "auto":
            return cls("auto", dicts)
        if choice == "required":
            return cls("required", dicts, [(t.function.name, t.function.parameters) for t in tools])
        assert isinstance(choice, NamedToolChoice)
        named = [t for t in tools if t.function.name == choice.function.name]
        if not named:
            raise bad_request(f"tool_choice names the function {choice.function.name!r}, which is not in `tools`",
                              "tool_choice")
        return cls("named", dicts, [(named[0].function.name, named[0].function.parameters)])


async def _grammar(ctx: ServerContext, body: ChatCompletionRequest, plan: ToolPlan) -> xgr.CompiledGrammar | None:
    """The grammar for response_format or forced tool calls (compiled off the event loop), if any."""
    response_format = body.response_format.type if body.response_format else "text"
    if plan.forced and response_format != "text":
        raise bad_request("response_format cannot be combined with tool_choice 'required' or a named function",
                          "response_format")
    try:
        if plan.forced:
            parallel = body.parallel_tool_calls and plan.mode == "required"
            return await asyncio.to_thread(ctx.grammars.tool_calls, plan.forced, parallel,
                                           ctx.tokenizer.chat_format.call_style)
        if response_format == "json_object":
            return await asyncio.to_thread(ctx.grammars.json_object)
        if response_format == "json_schema":
            if body.response_format.json_schema is None:
                raise bad_request("response_format of type json_schema needs a `json_schema` object",
                                  "response_format.json_schema")
            return await asyncio.to_thread(ctx.grammars.json_schema, body.response_format.json_schema.schema_)
    except GrammarError as exc:
        raise bad_request(str(exc), "response_format" if not plan.forced else "tools") from exc
    return None


async def create_chat_completion(ctx: ServerContext, body: ChatCompletionRequest, request: Request) -> Response:
    ctx.check_model(body.model)
    if body.top_logprobs is not None and not body.logprobs:
        raise bad_request("top_logprobs needs logprobs set to true", "top_logprobs")
    plan = ToolPlan.of(body)
    try:
        prompt_text = ctx.tokenizer.apply_chat_template(body.messages, plan.tools or None,
                                                        template_kwargs=body.chat_template_kwargs)
    except ChatTemplateError as exc:
        raise bad_request(str(exc), "messages") from exc
    prompt_ids = ctx.tokenizer.encode(prompt_text)
    requested = body.max_completion_tokens if body.max_completion_tokens is not None else body.max_tokens
    max_tokens = max_new_tokens(requested, len(prompt_ids), ctx.engine.max_model_len, "messages")
    grammar = await _grammar(ctx, body, plan)
    output_plan = OutputPlan(reasoning=ctx.reasoning_parser != "none" and grammar is None,
                             in_thinking=prompt_opens_thinking(prompt_text),
                             tool_names=plan.names if plan.mode != "none" else None)
    params = [build_sampling_params(
        body, max_tokens=max_tokens, logprobs=(body.top_logprobs or 0) if body.logprobs else None,
        logits_processors=[ctx.grammars.processor(grammar)] if grammar is not None else [],
        seed=choice_seed(body.seed, i)) for i in range(body.n)]
    request_id = new_id("chatcmpl")
    outputs = await start_choices(ctx.engine, ctx.metrics, prompt_ids, params, request_id)
    header = {"id": request_id, "created": now(), "model": ctx.model_name}
    if body.stream:
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        return StreamingResponse(_stream(ctx, outputs, output_plan, header, include_usage, body.logprobs),
                                 media_type="text/event-stream")
    collected = await collect_or_cancel(outputs, request)
    if collected is None:
        return Response(status_code=CLIENT_CLOSED_REQUEST)
    return JSONResponse(_response(ctx, collected, output_plan, header, body.logprobs))


def _finish_reason(reason: str | None, has_calls: bool) -> str | None:
    return "tool_calls" if has_calls and reason == "stop" else reason


def _response(ctx: ServerContext, collected: list[Collected], plan: OutputPlan, header: dict, logprobs: bool) -> dict:
    choices = []
    for index, choice in enumerate(collected):
        message, has_calls = plan.message(choice.text)
        choices.append({
            "index": index,
            "message": message,
            "logprobs": chat_logprobs(ctx, choice.logprobs) if logprobs else None,
            "finish_reason": _finish_reason(choice.finish_reason, has_calls),
        })
    usage = Usage.of(collected[0].prompt_tokens, sum(c.completion_tokens for c in collected))
    return {**header, "object": "chat.completion", "choices": choices, "usage": usage.model_dump()}


def _chunk(header: dict, index: int, delta: dict[str, Any], finish_reason: str | None = None,
           logprobs: dict | None = None) -> dict:
    return {**header, "object": "chat.completion.chunk",
            "choices": [{"index": index, "delta": delta, "logprobs": logprobs, "finish_reason": finish_reason}]}


async def _stream(ctx: ServerContext, outputs: list[AsyncIterator[StepOutput]], plan: OutputPlan, header: dict,
                  include_usage: bool, logprobs: bool) -> AsyncIterator[str]:
    choices = [ChoiceStream(plan) for _ in outputs]
    prompt_tokens, completion_tokens = 0, [0] * len(outputs)
    async with contextlib.aclosing(merge(outputs)) as merged:
        for index in range(len(outputs)):
            yield sse(_chunk(header, index, {"role": "assistant", "content": ""}))
        try:
            async for index, output in merged:
                delta = choices[index].delta(output.text_delta, output.finished)
                lp = chat_logprobs(ctx, output.logprobs) if logprobs and output.logprobs else None
                if delta or lp:
                    yield sse(_chunk(header, index, delta, logprobs=lp))
                prompt_tokens, completion_tokens[index] = output.num_prompt_tokens, output.num_output_tokens
                if output.finished:
                    finish = _finish_reason(output.finish_reason, choices[index].has_calls)
                    yield sse(_chunk(header, index, {}, finish))
        except Exception as exc:  # the engine failed mid-stream: tell the client in-band
            log.exception("generation failed during a stream")
            yield sse(error_body(500, f"generation failed: {exc}"))
    if include_usage:
        usage = Usage.of(prompt_tokens, sum(completion_tokens))
        yield sse({**header, "object": "chat.completion.chunk", "choices": [], "usage": usage.model_dump()})
    yield sse("[DONE]")
