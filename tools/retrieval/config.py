"""Typed configuration of the retrieval library; built by the caller and passed down."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class ParseLimits:
    """Bounds on turning one upload into text (PDFs are extracted in a child process, see pdf_worker.py).

    Attributes:
        max_pages: most PDF pages.
        max_chars: most characters of extracted text (about 4 per token: 4M is ~1M tokens).
        max_content_bytes, max_page_content_bytes: most bytes of inflated PDF content streams
            (what extraction interprets, about 1 CPU-second per MB in pypdf), in all and on one
            page; checked before any text is extracted, so a PDF bomb is refused at once.
        cpu_seconds, wall_seconds, memory_bytes: the extraction child's CPU limit, the time after
            which it is killed, and its address-space limit.
    """

    max_pages: int = 2000
    max_chars: int = 4_000_000
    max_content_bytes: int = 16 << 20
    max_page_content_bytes: int = 4 << 20
    cpu_seconds: int = 20
    wall_seconds: float = 30.0
    memory_bytes: int = 2 << 30


@dataclass(frozen=True)
class RetrievalConfig:
    """Where vectors live and how documents are chunked, searched and fitted into a prompt.

    Attributes:
        persist_dir: directory of the embedded chromadb `PersistentClient` (used when `chroma_url` is None).
        chroma_url: URL of a Chroma server (`http://host:8000`); when set, an `HttpClient` is used.
        collection: chromadb collection name; the BM25 index is kept per collection.
        chunk_tokens: most tokens (model tokenizer) in one chunk. all-MiniLM-L6-v2 reads 256 word
            pieces, so chunks stay near that to be embedded whole.
        overlap_tokens: tokens the start of a chunk repeats from the end of the previous one.
        min_chunk_tokens: a chunk boundary is not placed before this many tokens, unless a section ends.
        candidates: how many hits each of vector and BM25 search contributes before fusion.
        rrf_k: the constant of reciprocal rank fusion, score = sum 1 / (rrf_k + rank).
        rerank: rerank the fused candidates by their best-matching sentence (see rerank.py); off by
            default: fused recall is at target without it and it costs an embedding pass per query.
        rerank_top: how many fused candidates the reranker rescores.
        embed_batch_size: chunks written to chromadb per upsert (each upsert embeds them).
        hnsw_max_neighbors, hnsw_ef_construction: graph degree and build-time beam of the
            collection's HNSW index, fixed when the collection is created. chromadb's defaults
            (16, 100) built graphs whose searches missed the true nearest chunk of a needle
            question: all-MiniLM-L6-v2 vectors of prose crowd together (docs/BENCHMARKS.md).
        hnsw_ef_search: search-time beam; applied to existing collections when opened.
        parse: bounds on parsing one upload (pages, characters, CPU, time).
    """

    persist_dir: Path = Path("var/chroma")
    chroma_url: str | None = None
    collection: str = "documents"
    chunk_tokens: int = 200
    overlap_tokens: int = 32
    min_chunk_tokens: int = 64
    candidates: int = 50
    rrf_k: int = 60
    rerank: bool = False
    rerank_top: int = 20
    embed_batch_size: int = 64
    hnsw_max_neighbors: int = 32
    hnsw_ef_construction: int = 200
    hnsw_ef_search: int = 1000
    parse: ParseLimits = field(default_factory=ParseLimits)

    def __post_init__(self) -> None:
        if self.chunk_tokens < 16:
            raise ValueError("chunk_tokens must be at least 16")
        if not 0 <= self.overlap_tokens < self.chunk_tokens // 2:
            raise ValueError("overlap_tokens must be >= 0 and under half of chunk_tokens")
        if not 0 < self.min_chunk_tokens <= self.chunk_tokens:
            raise ValueError("min_chunk_tokens must be in (0, chunk_tokens]")
        positive = ("candidates", "rrf_k", "rerank_top", "embed_batch_size", "hnsw_max_neighbors",
                    "hnsw_ef_construction", "hnsw_ef_search")
        if any(getattr(self, name) < 1 for name in positive):
            raise ValueError(f"{', '.join(positive)} must be positive")
