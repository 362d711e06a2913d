"""`/v1/*`: the OpenAI API of the configured model backend, behind the platform's API keys.

Requests are forwarded as they are (body untouched, so `stream: true` works); the response is
streamed back chunk by chunk. The platform key is replaced by the backend's own key.

Only the backend's `/v1/...` endpoints are reachable: the (already percent-decoded) path must be
plain segments of URL-safe characters, without `.`/`..` or empty segments, so `..%2Fmetrics` or a
control character is a 400 in OpenAI's error JSON instead of a request to another backend path.
"""
import re

import httpx
from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask

from app.api.deps import CurrentUser

router = APIRouter(prefix="/v1", tags=["openai"])

FORWARDED_REQUEST_HEADERS = ("content-type", "accept", "openai-beta")
FORWARDED_RESPONSE_HEADERS = ("content-type", "cache-control", "openai-processing-ms", "x-request-id")
SEGMENT = re.compile(r"[A-Za-z0-9_.:@+~-]{1,200}")


def backend_path(path: str) -> str:
    """`path` if it names an endpoint under the backend's /v1; 400 otherwise."""
    segments = path.split("/")
    if len(segments) > 8 or any(s in (".", "..") or not SEGMENT.fullmatch(s) for s in segments):
        raise HTTPException(status.HTTP_400_BAD_REQUEST, f"invalid /v1 path: {path[:200]!r}")
    return path


@router.get("/{path:path}", operation_id="openai_proxy_get")
@router.post("/{path:path}", operation_id="openai_proxy_post")
async def proxy(path: str, request: Request, _user: CurrentUser) -> StreamingResponse:
    backend = request.app.state.backend
    client: httpx.AsyncClient = request.app.state.http
    headers = {k: v for k, v in request.headers.items() if k.lower() in FORWARDED_REQUEST_HEADERS}
    if backend.api_key:
        headers["authorization"] = f"Bearer {backend.api_key}"
    upstream = client.build_request(
        request.method,
        f"{backend.base_url}/{backend_path(path)}",
        params=request.query_params,
        headers=headers,
        content=await request.body(),
    )
    try:
        resp = await client.send(upstream, stream=True)
    except httpx.HTTPError as exc:
        state = await backend.status()
        raise HTTPException(
            status.HTTP_502_BAD_GATEWAY,
            f"model backend unavailable ({state.backend}: {state.state} {state.detail}): {exc.__class__.__name__}",
        ) from None
    out_headers = {k: v for k, v in resp.headers.items() if k.lower() in FORWARDED_RESPONSE_HEADERS}
    return StreamingResponse(
        resp.aiter_raw(), status_code=resp.status_code, headers=out_headers, background=BackgroundTask(resp.aclose)
    )
