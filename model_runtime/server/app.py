"""The FastAPI app: OpenAI-compatible routes over one engine (contract 3)."""
from __future__ import annotations

import os

from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from model_runtime.server.body_limit import BodyLimitMiddleware
from model_runtime.server.chat import create_chat_completion
from model_runtime.server.completions import create_completion
from model_runtime.server.constrained import GrammarBackend
from model_runtime.server.context import Engine, ServerContext
from model_runtime.server.errors import install_error_handlers, send_error
from model_runtime.server.metrics import ServerMetrics
from model_runtime.server.protocol import ChatCompletionRequest, CompletionRequest, ModelCard, ModelList


class RequestCounter:
    """ASGI middleware counting HTTP requests by route template and status (streams included)."""

    def __init__(self, app: ASGIApp, metrics: ServerMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500

        async def send_and_record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_record)
        finally:
            route = scope.get("route")
            endpoint = getattr(route, "path", None) or "unmatched"
            self.metrics.requests.labels(endpoint, str(status)).inc()


DEFAULT_MAX_BODY_BYTES = 4 << 20  # a 128K-token prompt is well under 1 MB of JSON


def create_app(engine: Engine, model_name: str, model_root: str | None = None,
               reasoning_parser: str = "deepseek_r1", max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> FastAPI:
    """An app serving `engine` under the name `model_name` (what clients pass as `model`);
    `reasoning_parser` "deepseek_r1" splits thinking into `reasoning_content`, "none" does not;
    request bodies over `max_body_bytes` are a 413 before they are parsed."""
    ctx = ServerContext(engine=engine, model_name=model_name, model_root=model_root or model_name,
                        metrics=ServerMetrics(engine.stats), grammars=GrammarBackend(engine.tokenizer),
                        reasoning_parser=reasoning_parser)
    app = FastAPI(title="model_runtime OpenAI-compatible server")
    app.state.context = ctx
    install_error_handlers(app)
    app.add_middleware(BodyLimitMiddleware, limit_for=lambda _headers: (max_body_bytes, "request body"),
                       reject=send_error)
    app.add_middleware(RequestCounter, metrics=ctx.metrics)

    @app.get("/health")
    async def health() -> dict[str, str | int]:
        """Liveness; `pid` lets a supervisor tell its own server from another one on the port."""
        return {"status": "ok", "pid": os.getpid()}

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(ctx.metrics.render(), media_type=ctx.metrics.content_type)

    @app.get("/v1/models")
    async def models() -> ModelList:
        return ModelList(data=[ModelCard(id=ctx.model_name, created=ctx.created, root=ctx.model_root,
                                         max_model_len=engine.max_model_len)])

    @app.post("/v1/chat/completions")
    async def chat_completions(body: ChatCompletionRequest, request: Request) -> Response:
        return await create_chat_completion(ctx, body, request)

    @app.post("/v1/completions")
    async def completions(body: CompletionRequest, request: Request) -> Response:
        return await create_completion(ctx, body, request)

    return app
