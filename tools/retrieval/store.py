"""The chromadb client: embedded `PersistentClient` by default, `HttpClient` for a Chroma server."""
from __future__ import annotations

from urllib.parse import urlparse

import chromadb
from chromadb.api import ClientAPI
from chromadb.config import Settings as ChromaSettings

from tools.retrieval.config import RetrievalConfig


def make_client(config: RetrievalConfig) -> ClientAPI:
    """A client for `config.chroma_url` when set, else a persistent one under `config.persist_dir`."""
    settings = ChromaSettings(anonymized_telemetry=False)
    if config.chroma_url:
        url = urlparse(config.chroma_url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"chroma_url must be http(s)://host[:port], got {config.chroma_url!r}")
        ssl = url.scheme == "https"
        return chromadb.HttpClient(
            host=url.hostname, port=url.port or (443 if ssl else 8000), ssl=ssl, settings=settings
        )
    config.persist_dir.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(config.persist_dir), settings=settings)
