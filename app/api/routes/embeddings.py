"""`POST /v1/embeddings`: the embedding model the retrieval uses (all-MiniLM-L6-v2), OpenAI-shaped.

The model server behind `/v1/*` has no embedding model, so this route answers here, before the
proxy (app/api/router.py). `input` is a string or a list of strings (token-id inputs are
refused: the vectors must match what the retrieval index computes from text);
`encoding_format` "float" or "base64" (little-endian float32, what the openai client asks for
by default). Vectors are 384-d and L2-normalised. Errors use OpenAI's `{"error": {...}}`.
"""
import asyncio
import base64
from typing import Literal

import numpy as np
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from app.api.deps import CurrentUser
from app.services.retrieval import retrieval_service

router = APIRouter(prefix="/v1", tags=["openai"])

EMBEDDING_MODEL = "all-MiniLM-L6-v2"
MODEL_NAMES = (EMBEDDING_MODEL, f"sentence-transformers/{EMBEDDING_MODEL}")
MAX_INPUTS = 256


class EmbeddingRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model: str
    input: str | list[str] = Field(min_length=1)
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = None
    user: str | None = None


def _error(status: int, message: str, param: str | None = None, code: str | None = None) -> JSONResponse:
    kind = "invalid_request_error" if status < 500 else "internal_error"
    return JSONResponse({"error": {"message": message, "type": kind, "param": param, "code": code}},
                        status_code=status)


@router.post("/embeddings")
async def create_embeddings(request: Request, _user: CurrentUser) -> JSONResponse:
    try:
        body = EmbeddingRequest.model_validate_json(await request.body())
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        hint = " (token-id inputs are not supported: send text)" if where.startswith("input") else ""
        return _error(400, f"{where or 'body'}: {first.get('msg')}{hint}", where or None)
    if body.model not in MODEL_NAMES:
        return _error(404, f"The model `{body.model}` does not exist; embeddings are served by `{EMBEDDING_MODEL}`.",
                      "model", "model_not_found")
    texts = [body.input] if isinstance(body.input, str) else body.input
    if len(texts) > MAX_INPUTS or any(not text for text in texts):
        return _error(400, f"input must hold 1 to {MAX_INPUTS} non-empty strings", "input")
    if body.dimensions not in (None, 384):
        return _error(400, f"{EMBEDDING_MODEL} gives 384 dimensions only", "dimensions")
    embedder = await asyncio.to_thread(lambda: retrieval_service(request).index.embedder)
    vectors, tokens = await asyncio.to_thread(lambda: (embedder(texts), embedder.count_tokens(texts)))
    data = []
    for index, vector in enumerate(vectors):
        values = np.asarray(vector, dtype="<f4")
        embedding = base64.b64encode(values.tobytes()).decode() if body.encoding_format == "base64" else values.tolist()
        data.append({"object": "embedding", "index": index, "embedding": embedding})
    return JSONResponse({"object": "list", "data": data, "model": EMBEDDING_MODEL,
                         "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})
