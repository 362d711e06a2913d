"""A real OpenAI-compatible HTTP server whose replies are scripted by the test.

    with ScriptedOpenAIServer(["Hello", [ToolCall("read_file", {"path": "a.py"})]]) as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="x")
        ...
        server.requests  # every request body it got, as (path, json) pairs

``script`` is either a list of replies consumed in order (one per chat/completions request; a
request after the list is exhausted gets HTTP 500 with a clear message) or a callable
``script(request_json) -> reply``. A reply is one of:

- ``str``: assistant text content;
- a list of :class:`ToolCall` (or of ``{"name", "arguments"}`` dicts): tool calls;
- a :class:`Reply`: content and/or tool calls, plus ``status`` (an HTTP error to return instead,
  e.g. 503 to exercise retries), ``delay_s`` (sleep first, to exercise timeouts),
  ``chunk_delay_s`` (sleep between streamed chunks, to exercise stopping) and ``finish_reason``.

``max_model_len``, when given, is reported in ``GET /v1/models`` as vLLM does.

FastAPI + uvicorn run in a background thread on 127.0.0.1 with a free port. Streaming
(``"stream": true``) sends OpenAI-format SSE chunks: text in several deltas, tool calls as
``delta.tool_calls`` with the arguments split over several chunks, then ``[DONE]``.
"""
from __future__ import annotations

import asyncio
import itertools
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse


@dataclass
class ToolCall:
    """One scripted tool call; ``arguments`` is a dict (JSON-encoded on the wire) or a raw string."""

    name: str
    arguments: dict[str, Any] | str = field(default_factory=dict)
    id: str | None = None


@dataclass
class Reply:
    """One scripted reply."""

    content: str | None = None
    tool_calls: list[ToolCall] = field(default_factory=list)
    finish_reason: str | None = None
    status: int = 200
    delay_s: float = 0.0
    chunk_delay_s: float = 0.0


Script = list | Callable[[dict[str, Any]], Any]


def as_reply(value: Any) -> Reply:
    """Normalise the accepted reply shapes into a :class:`Reply`."""
    if isinstance(value, Reply):
        return value
    if isinstance(value, str):
        return Reply(content=value)
    if isinstance(value, ToolCall):
        return Reply(tool_calls=[value])
    if isinstance(value, list):
        return Reply(tool_calls=[c if isinstance(c, ToolCall) else ToolCall(**c) for c in value])
    if isinstance(value, dict):
        calls = [c if isinstance(c, ToolCall) else ToolCall(**c) for c in value.get("tool_calls", [])]
        return Reply(content=value.get("content"), tool_calls=calls)
    raise TypeError(f"unsupported scripted reply: {value!r}")


def _chunks(text: str, size: int = 8) -> list[str]:
    return [text[i:i + size] for i in range(0, len(text), size)] or [""]


class ScriptedOpenAIServer:
    """Context manager serving the scripted replies over real HTTP; see the module docstring."""

    def __init__(self, script: Script, *, model: str = "scripted-model", max_model_len: int | None = None) -> None:
        self.model = model
        self.max_model_len = max_model_len
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self._script = script
        self._position = 0
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def chat_requests(self) -> list[dict[str, Any]]:
        """Bodies of the /v1/chat/completions requests, in order."""
        return [body for path, body in self.requests if path == "/v1/chat/completions"]

    # -- lifecycle -------------------------------------------------------------------------
    def __enter__(self) -> ScriptedOpenAIServer:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self._app(), log_level="warning", lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]}, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("scripted OpenAI server did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc_info: object) -> None:
        assert self._server is not None and self._thread is not None
        self._server.should_exit = True
        self._thread.join(timeout=10)

    # -- script ----------------------------------------------------------------------------
    def _next_reply(self, body: dict[str, Any]) -> Reply:
        with self._lock:
            if callable(self._script):
                return as_reply(self._script(body))
            if self._position >= len(self._script):
                return Reply(status=500, content=f"script exhausted after {len(self._script)} replies")
            value = self._script[self._position]
            self._position += 1
            return as_reply(value)

    def _record(self, path: str, body: dict[str, Any]) -> None:
        with self._lock:
            self.requests.append((path, body))

    # -- app -------------------------------------------------------------------------------
    def _app(self) -> FastAPI:
        app = FastAPI()

        @app.get("/v1/models")
        def models() -> dict:
            self._record("/v1/models", {})
            card = {"id": self.model, "object": "model", "created": 0, "owned_by": "test"}
            if self.max_model_len is not None:
                card["max_model_len"] = self.max_model_len
            return {"object": "list", "data": [card]}

        async def respond(path: str, request: Request, stream, whole):
            body = await request.json()
            self._record(path, body)
            reply = await asyncio.to_thread(self._next_reply, body)
            if reply.delay_s:
                await asyncio.sleep(reply.delay_s)
            if reply.status != 200:
                return _error(reply)
            if body.get("stream"):
                return StreamingResponse(stream(body, reply), media_type="text/event-stream")
            return whole(body, reply)

        @app.post("/v1/chat/completions")
        async def chat(request: Request):
            return await respond("/v1/chat/completions", request, self._chat_stream, self._chat_body)

        @app.post("/v1/completions")
        async def completions(request: Request):
            return await respond("/v1/completions", request, self._completion_stream, self._completion_body)

        return app

    def _tool_calls_json(self, reply: Reply) -> list[dict[str, Any]]:
        return [{
            "id": call.id or f"call_{next(self._ids)}",
            "type": "function",
            "function": {"name": call.name, "arguments": call.arguments if isinstance(call.arguments, str)
                         else json.dumps(call.arguments)},
        } for call in reply.tool_calls]

    @staticmethod
    def _finish(reply: Reply) -> str:
        return reply.finish_reason or ("tool_calls" if reply.tool_calls else "stop")

    @staticmethod
    def _usage(body: dict[str, Any], text: str) -> dict[str, int]:
        prompt = len(json.dumps(body.get("messages", body.get("prompt", ""))).split())
        completion = len(text.split())
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}

    def _chat_body(self, body: dict[str, Any], reply: Reply) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": reply.content}
        if reply.tool_calls:
            message["tool_calls"] = self._tool_calls_json(reply)
        return {
            "id": f"chatcmpl-{next(self._ids)}", "object": "chat.completion", "created": int(time.time()),
            "model": body.get("model", self.model),
            "choices": [{"index": 0, "message": message, "finish_reason": self._finish(reply)}],
            "usage": self._usage(body, reply.content or ""),
        }

    def _chat_stream(self, body: dict[str, Any], reply: Reply) -> Iterator[str]:
        base = {"id": f"chatcmpl-{next(self._ids)}", "object": "chat.completion.chunk",
                "created": int(time.time()), "model": body.get("model", self.model)}

        def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
            payload = {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
            return f"data: {json.dumps(payload)}\n\n"

        yield chunk({"role": "assistant", "content": ""})
        if reply.content:
            for piece in _chunks(reply.content):
                time.sleep(reply.chunk_delay_s)
                yield chunk({"content": piece})
        for index, call in enumerate(self._tool_calls_json(reply)):
            yield chunk({"tool_calls": [{"index": index, "id": call["id"], "type": "function",
                                         "function": {"name": call["function"]["name"], "arguments": ""}}]})
            for piece in _chunks(call["function"]["arguments"]):
                yield chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
        yield chunk({}, self._finish(reply))
        if (body.get("stream_options") or {}).get("include_usage"):
            yield f"data: {json.dumps({**base, 'choices': [], 'usage': self._usage(body, reply.content or '')})}\n\n"
        yield "data: [DONE]\n\n"

    def _completion_body(self, body: dict[str, Any], reply: Reply) -> dict[str, Any]:
        return {
            "id": f"cmpl-{next(self._ids)}", "object": "text_completion", "created": int(time.time()),
            "model": body.get("model", self.model),
            "choices": [{"index": 0, "text": reply.content or "", "logprobs": None,
                         "finish_reason": reply.finish_reason or "stop"}],
            "usage": self._usage(body, reply.content or ""),
        }

    def _completion_stream(self, body: dict[str, Any], reply: Reply) -> Iterator[str]:
        base = {"id": f"cmpl-{next(self._ids)}", "object": "text_completion",
                "created": int(time.time()), "model": body.get("model", self.model)}
        for piece in _chunks(reply.content or ""):
            choice = {"index": 0, "text": piece, "logprobs": None, "finish_reason": None}
            yield f"data: {json.dumps({**base, 'choices': [choice]})}\n\n"
        final = {"index": 0, "text": "", "logprobs": None, "finish_reason": reply.finish_reason or "stop"}
        yield f"data: {json.dumps({**base, 'choices': [final]})}\n\n"
        yield "data: [DONE]\n\n"


def _error(reply: Reply) -> JSONResponse:
    message = reply.content or f"scripted error {reply.status}"
    return JSONResponse(status_code=reply.status,
                        content={"error": {"message": message, "type": "scripted_error", "code": reply.status}})
