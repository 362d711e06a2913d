"""POST /v1/chat/completions: prompt rendering, tool choice, response_format, whole or streamed.

Tool choice (docs/SERVER.md):
- "none": the tools are left out of the prompt and the output is plain content.
- "auto" (the default with tools): the tools go into the system prompt; calls the model writes
  in DeepSeek's format are parsed into `tool_calls` (several calls: parallel tool calls).
- "required" / a named function: as "auto", plus constrained decoding (a structural-tag
  grammar) that makes the output one tool-call section: one or more calls (one call when
  `parallel_tool_calls` is false or a function is named) whose arguments match the schema.
`response_format` json_object / json_schema is enforced by constrained decoding too.
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

from model_runtime.chat_template import ChatTemplateError
from model_runtime.engine.outputs import StepOutput
from model_runtime.server.constrained import GrammarError
from model_runtime.server.context import ServerContext, chat_logprobs, sse
from model_runtime.server.errors import bad_request, error_body
from model_runtime.server.generation import Collected, collect_or_cancel, start_generation
from model_runtime.server.protocol import ChatCompletionRequest, NamedToolChoice, Usage, new_id, now
from model_runtime.server.sampling import build_sampling_params, check_unsupported, max_new_tokens
from model_runtime.tool_calls import ContentDelta, ToolCallStreamParser, parse_tool_calls

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


async def _grammar_processors(ctx: ServerContext, body: ChatCompletionRequest, plan: ToolPlan) -> list:
    """Logits processors for response_format and forced tool calls (compiled off the event loop)."""
    response_format = body.response_format.type if body.response_format else "text"
    if plan.forced and response_format != "text":
        raise bad_request("response_format cannot be combined with tool_choice 'required' or a named function",
                          "response_format")
    try:
        if plan.forced:
            parallel = body.parallel_tool_calls and plan.mode == "required"
            compiled = await asyncio.to_thread(ctx.grammars.tool_calls, plan.forced, parallel)
        elif response_format == "json_object":
            compiled = await asyncio.to_thread(ctx.grammars.json_object)
        elif response_format == "json_schema":
            if body.response_format.json_schema is None:
                raise bad_request("response_format of type json_schema needs a `json_schema` object",
                                  "response_format.json_schema")
            compiled = await asyncio.to_thread(ctx.grammars.json_schema, body.response_format.json_schema.schema_)
        else:
            return []
    except GrammarError as exc:
        raise bad_request(str(exc), "response_format" if not plan.forced else "tools") from exc
    return [ctx.grammars.processor(compiled)]


async def create_chat_completion(ctx: ServerContext, body: ChatCompletionRequest, request: Request) -> Response:
    ctx.check_model(body.model)
    check_unsupported(body)
    if body.top_logprobs is not None and not body.logprobs:
        raise bad_request("top_logprobs needs logprobs set to true", "top_logprobs")
    plan = ToolPlan.of(body)
    try:
        prompt_ids = ctx.tokenizer.encode_chat(body.messages, plan.tools or None)
    except ChatTemplateError as exc:
        raise bad_request(str(exc), "messages") from exc
    requested = body.max_completion_tokens if body.max_completion_tokens is not None else body.max_tokens
    max_tokens = max_new_tokens(requested, len(prompt_ids), ctx.engine.max_model_len)
    params = build_sampling_params(
        body, max_tokens=max_tokens, logprobs=(body.top_logprobs or 0) if body.logprobs else None,
        logits_processors=await _grammar_processors(ctx, body, plan))
    request_id = new_id("chatcmpl")
    outputs = await start_generation(ctx.engine, ctx.metrics, prompt_ids, params, request_id)
    header = {"id": request_id, "created": now(), "model": ctx.model_name}
    if body.stream:
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        return StreamingResponse(_stream(ctx, outputs, plan, header, include_usage, body.logprobs),
                                 media_type="text/event-stream")
    collected = await collect_or_cancel(outputs, request)
    if collected is None:
        return Response(status_code=CLIENT_CLOSED_REQUEST)
    return JSONResponse(_response(ctx, collected, plan, header, body.logprobs))


def _finish_reason(reason: str | None, has_calls: bool) -> str | None:
    return "tool_calls" if has_calls and reason == "stop" else reason


def _response(ctx: ServerContext, collected: Collected, plan: ToolPlan, header: dict, logprobs: bool) -> dict:
    content, calls = collected.text, []
    if plan.mode != "none":
        content, calls = parse_tool_calls(collected.text, plan.names)
    message: dict[str, Any] = {"role": "assistant", "content": content if content or not calls else None}
    if calls:
        message["tool_calls"] = [call.to_openai() for call in calls]
    return {
        **header,
        "object": "chat.completion",
        "choices": [{
            "index": 0,
            "message": message,
            "logprobs": chat_logprobs(ctx, collected.logprobs) if logprobs else None,
            "finish_reason": _finish_reason(collected.finish_reason, bool(calls)),
        }],
        "usage": Usage.of(collected.prompt_tokens, collected.completion_tokens).model_dump(),
    }


def _chunk(header: dict, delta: dict[str, Any], finish_reason: str | None = None, logprobs: dict | None = None) -> dict:
    return {**header, "object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": delta, "logprobs": logprobs, "finish_reason": finish_reason}]}


def _deltas(parser: ToolCallStreamParser | None, output: StepOutput) -> tuple[str, list[dict[str, Any]]]:
    """(content, tool-call deltas) for one engine output."""
    if parser is None:
        return output.text_delta, []
    events = parser.feed(output.text_delta)
    if output.finished:
        events += parser.finish()
    content, calls = "", []
    for event in events:
        if isinstance(event, ContentDelta):
            content += event.text
        else:
            calls.append({"index": event.index, **event.call.to_openai()})
    return content, calls


async def _stream(ctx: ServerContext, outputs: AsyncIterator[StepOutput], plan: ToolPlan, header: dict,
                  include_usage: bool, logprobs: bool) -> AsyncIterator[str]:
    parser = ToolCallStreamParser(plan.names) if plan.mode != "none" else None
    has_calls = False
    usage = Usage.of(0, 0)
    async with contextlib.aclosing(outputs):
        yield sse(_chunk(header, {"role": "assistant", "content": ""}))
        try:
            async for output in outputs:
                content, calls = _deltas(parser, output)
                has_calls = has_calls or bool(calls)
                delta: dict[str, Any] = {}
                if content:
                    delta["content"] = content
                if calls:
                    delta["tool_calls"] = calls
                lp = chat_logprobs(ctx, output.logprobs) if logprobs and output.logprobs else None
                if delta or lp:
                    yield sse(_chunk(header, delta, logprobs=lp))
                usage = Usage.of(output.num_prompt_tokens, output.num_output_tokens)
                if output.finished:
                    yield sse(_chunk(header, {}, _finish_reason(output.finish_reason, has_calls)))
        except Exception as exc:  # the engine failed mid-stream: tell the client in-band
            log.exception("generation failed during a stream")
            yield sse(error_body(500, f"generation failed: {exc}"))
    if include_usage:
        yield sse({**header, "object": "chat.completion.chunk", "choices": [], "usage": usage.model_dump()})
    yield sse("[DONE]")
