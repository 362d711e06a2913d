"""`DocumentIndex`: ingest files into one chromadb collection and search it (vector + BM25, fused).

Every chunk is stored with metadata: `document_id`, `filename`, `chunk_index`, `page` or
`section`, `n_tokens`, `section_index`, `char_start`, `char_end`, `content_hash`, and the
document's `file_sha256` and `doc_tokens`. Chunk ids are `{document_id}:{content_hash[:16]}`,
so upserting the same content twice stores it once.
"""
from __future__ import annotations

import hashlib
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from chromadb.api import ClientAPI

from tools.retrieval.bm25 import BM25Index
from tools.retrieval.chunking import Chunk, ChunkedDocument, chunk_document
from tools.retrieval.config import RetrievalConfig
from tools.retrieval.embeddings import MiniLMEmbeddingFunction
from tools.retrieval.fusion import reciprocal_rank_fusion
from tools.retrieval.parsing import ParsedDocument, parse_document
from tools.retrieval.rerank import SentenceReranker
from tools.retrieval.store import make_client
from tools.retrieval.tokens import TokenCounter

SearchMode = Literal["hybrid", "vector", "bm25"]
_GENERATION_KEY = "bm25_generation"


@dataclass(frozen=True)
class SearchHit:
    """One search result; `page` for PDFs, `section` (heading or line range) otherwise."""

    document_id: str
    chunk_id: str
    text: str
    score: float
    page: int | None
    section: str | None
    filename: str
    chunk_index: int


@dataclass(frozen=True)
class StoredChunk:
    """A stored chunk with its metadata, as read back for context assembly."""

    chunk_id: str
    document_id: str
    filename: str
    text: str
    chunk_index: int
    page: int | None
    section: str | None
    n_tokens: int
    section_index: int
    char_start: int
    char_end: int
    doc_tokens: int


@dataclass(frozen=True)
class PreparedDocument:
    """A parsed and chunked file, ready to embed and store."""

    filename: str
    file_sha256: str
    parsed: ParsedDocument
    chunked: ChunkedDocument


@dataclass(frozen=True)
class IngestResult:
    """What ingesting a file did; `created` is False when the same file was already indexed."""

    document_id: str
    kind: str
    n_chunks: int
    n_pages: int | None
    n_tokens: int
    created: bool


@dataclass(frozen=True)
class IngestProgress:
    """How far storing a document has got: chunks embedded and stored, and the pages they cover
    (pages are None for documents without pages)."""

    chunks_done: int
    chunks_total: int
    pages_done: int | None
    pages_total: int | None


ProgressCallback = Callable[[IngestProgress], None]


def _progress(chunked: ChunkedDocument, n_pages: int | None, done: int) -> IngestProgress:
    """Pages are done up to the page before that of the next chunk to store (chunks are in reading order)."""
    chunks = chunked.chunks
    if n_pages is None:
        pages = None
    elif done >= len(chunks):
        pages = n_pages
    else:
        pages = max(0, (chunks[done].page or 1) - 1)
    return IngestProgress(done, len(chunks), pages, n_pages)


def prepare_document(filename: str, data: bytes, counter: TokenCounter, config: RetrievalConfig) -> PreparedDocument:
    """Parse and chunk a file (no embedding model needed); raises `DocumentError` for unusable files."""
    parsed = parse_document(filename, data, config.parse)
    return PreparedDocument(filename, hashlib.sha256(data).hexdigest(), parsed, chunk_document(parsed, counter, config))


class DocumentIndex:
    """Hybrid search over one chromadb collection; safe to share between threads."""

    def __init__(
        self,
        config: RetrievalConfig,
        counter: TokenCounter,
        embedder: MiniLMEmbeddingFunction,
        client: ClientAPI | None = None,
    ) -> None:
        self.config = config
        self.counter = counter
        self._embedder = embedder
        self._client = client or make_client(config)
        self._collection = self._client.get_or_create_collection(
            config.collection,
            embedding_function=embedder,
            configuration={
                "hnsw": {
                    "space": "cosine",
                    "max_neighbors": config.hnsw_max_neighbors,
                    "ef_construction": config.hnsw_ef_construction,
                    "ef_search": config.hnsw_ef_search,
                }
            },
            metadata={_GENERATION_KEY: uuid.uuid4().hex},
        )
        hnsw = (self._collection.configuration or {}).get("hnsw") or {}
        if hnsw.get("ef_search", config.hnsw_ef_search) != config.hnsw_ef_search:
            self._collection.modify(configuration={"hnsw": {"ef_search": config.hnsw_ef_search}})
        self._reranker = SentenceReranker(embedder)
        self._bm25: BM25Index | None = None
        self._lock = threading.Lock()

    @property
    def embedder(self) -> MiniLMEmbeddingFunction:
        """The embedding model of this index (the app serves it at /v1/embeddings)."""
        return self._embedder

    # ----- writing -----

    def prepare(self, filename: str, data: bytes) -> PreparedDocument:
        """Parse and chunk a file without storing anything; raises `DocumentError` for unusable files."""
        return prepare_document(filename, data, self.counter, self.config)

    def ingest(self, document_id: str, filename: str, data: bytes) -> IngestResult:
        """`prepare` then `store`: parse, chunk, embed and store a file under `document_id`."""
        return self.store(document_id, self.prepare(filename, data))

    def store(self, document_id: str, prepared: PreparedDocument,
              on_progress: ProgressCallback | None = None) -> IngestResult:
        """Embed and store a prepared document under `document_id`.

        Storing the same bytes under the same id again changes nothing; different bytes replace
        the old chunks. A store cut short by a crash (some of the chunks of these bytes present)
        is completed: only the missing chunks are embedded. If storing fails half-way with an
        error, the document's chunks are removed before the error propagates. `on_progress` hears
        before the first batch and after every batch of `embed_batch_size` chunks.
        """
        parsed, chunked = prepared.parsed, prepared.chunked
        report = on_progress or (lambda _progress: None)
        ids = [f"{document_id}:{c.content_hash[:16]}" for c in chunked.chunks]
        existing = self._collection.get(where={"document_id": document_id}, include=["metadatas"])
        kept = {i for i, meta in zip(existing["ids"], existing["metadatas"], strict=True)
                if meta.get("file_sha256") == prepared.file_sha256}
        if kept >= set(ids):
            report(_progress(chunked, parsed.n_pages, len(chunked.chunks)))
            return IngestResult(document_id, parsed.kind, len(ids), parsed.n_pages, chunked.n_tokens, False)
        stale = [i for i in existing["ids"] if i not in kept or i not in set(ids)]
        missing = [(i, c) for i, c in zip(ids, chunked.chunks, strict=True) if i not in kept]
        common = {"document_id": document_id, "filename": prepared.filename, "file_sha256": prepared.file_sha256}
        done = len(ids) - len(missing)
        try:
            if stale:
                self._collection.delete(ids=stale)
            report(_progress(chunked, parsed.n_pages, done))
            for start in range(0, len(missing), self.config.embed_batch_size):
                batch = missing[start : start + self.config.embed_batch_size]
                self._collection.upsert(
                    ids=[i for i, _ in batch],
                    documents=[c.text for _, c in batch],
                    metadatas=[_chunk_metadata(c, common, chunked.n_tokens) for _, c in batch],
                )
                done += len(batch)
                report(_progress(chunked, parsed.n_pages, done))
        except BaseException:
            self._collection.delete(where={"document_id": document_id})
            raise
        finally:
            self._bump_generation()
        return IngestResult(document_id, parsed.kind, len(ids), parsed.n_pages, chunked.n_tokens, True)

    def delete(self, document_id: str) -> None:
        """Remove every chunk of a document (no error when there are none)."""
        self._collection.delete(where={"document_id": document_id})
        self._bump_generation()

    def _bump_generation(self) -> None:
        self._collection.modify(metadata={_GENERATION_KEY: uuid.uuid4().hex})

    # ----- reading -----

    def count(self, document_id: str | None = None) -> int:
        """Chunks stored in total, or for one document."""
        if document_id is None:
            return self._collection.count()
        return len(self._collection.get(where={"document_id": document_id}, include=[])["ids"])

    def chunks(self, document_ids: list[str]) -> list[StoredChunk]:
        """All chunks of the given documents, grouped by document (in the given order), in reading order."""
        if not document_ids:
            return []
        got = self._collection.get(where=_in_documents(document_ids), include=["documents", "metadatas"])
        stored = [_stored(i, t, m) for i, t, m in zip(got["ids"], got["documents"], got["metadatas"], strict=True)]
        order = {doc: n for n, doc in enumerate(document_ids)}
        return sorted(stored, key=lambda c: (order[c.document_id], c.chunk_index))

    def chunk(self, chunk_id: str) -> StoredChunk | None:
        """One chunk by id, or None."""
        got = self._collection.get(ids=[chunk_id], include=["documents", "metadatas"])
        if not got["ids"]:
            return None
        return _stored(got["ids"][0], got["documents"][0], got["metadatas"][0])

    def search(
        self,
        query: str,
        k: int = 5,
        document_ids: list[str] | None = None,
        mode: SearchMode = "hybrid",
        candidates: int | None = None,
        rerank: bool | None = None,
    ) -> list[SearchHit]:
        """Best `k` chunks for `query`, best first, optionally only within `document_ids`.

        `mode`: "vector" (embeddings), "bm25" (keywords) or "hybrid" (both, reciprocal rank
        fusion, then the optional sentence reranker). `candidates`: hits each method contributes
        (default `config.candidates`). `rerank` overrides `config.rerank` for this query.
        """
        if not query.strip() or k < 1 or document_ids == []:
            return []
        n = max(candidates or self.config.candidates, k)
        found: dict[str, tuple[str, dict[str, Any]]] = {}
        rankings: list[list[str]] = []
        if mode in ("vector", "hybrid"):
            rankings.append(self._vector_search(query, n, document_ids, found))
        if mode in ("bm25", "hybrid"):
            rankings.append(self._bm25_search(query, n, document_ids, found))
        fused = reciprocal_rank_fusion(rankings, self.config.rrf_k)
        if mode == "hybrid" and (self.config.rerank if rerank is None else rerank) and fused:
            fused = self._rerank(query, fused, found)
        return [_hit(chunk_id, score, *found[chunk_id]) for chunk_id, score in fused[:k]]

    def _vector_search(self, query, n, document_ids, found) -> list[str]:
        total = self._collection.count()
        if total == 0:
            return []
        result = self._collection.query(
            query_texts=[query],
            n_results=min(n, total),
            where=_in_documents(document_ids) if document_ids else None,
            include=["documents", "metadatas"],
        )
        for chunk_id, text, meta in zip(result["ids"][0], result["documents"][0], result["metadatas"][0], strict=True):
            found[chunk_id] = (text, meta)
        return list(result["ids"][0])

    def _bm25_search(self, query, n, document_ids, found) -> list[str]:
        index = self._current_bm25()
        ranked = index.search(query, n, document_ids)
        for position, _ in ranked:
            found[index.ids[position]] = (index.texts[position], index.metadatas[position])
        return [index.ids[position] for position, _ in ranked]

    def _current_bm25(self) -> BM25Index:
        """The BM25 index of the collection as it is now, rebuilt when another write happened."""
        generation = (self._client.get_collection(self.config.collection).metadata or {}).get(_GENERATION_KEY, "")
        with self._lock:
            if self._bm25 is None or self._bm25.generation != generation:
                got = self._collection.get(include=["documents", "metadatas"])
                self._bm25 = BM25Index(generation, got["ids"], got["documents"], got["metadatas"])
            return self._bm25

    def _rerank(self, query, fused, found) -> list[tuple[str, float]]:
        """Reorder the top `rerank_top` fused candidates by best-sentence similarity."""
        head, tail = fused[: self.config.rerank_top], fused[self.config.rerank_top :]
        scores = self._reranker.scores(query, [found[chunk_id][0] for chunk_id, _ in head])
        reranked = sorted(zip((c for c, _ in head), scores, strict=True), key=lambda pair: pair[1], reverse=True)
        return reranked + tail


def _in_documents(document_ids: list[str]) -> dict[str, Any]:
    return {"document_id": {"$in": list(document_ids)}}


def _chunk_metadata(chunk: Chunk, common: dict[str, Any], doc_tokens: int) -> dict[str, Any]:
    meta = dict(common)
    meta.update(
        chunk_index=chunk.index,
        n_tokens=chunk.n_tokens,
        section_index=chunk.section_index,
        char_start=chunk.char_start,
        char_end=chunk.char_end,
        content_hash=chunk.content_hash,
        doc_tokens=doc_tokens,
    )
    if chunk.page is not None:
        meta["page"] = chunk.page
    if chunk.section is not None:
        meta["section"] = chunk.section
    return meta


def _stored(chunk_id: str, text: str, meta: dict[str, Any]) -> StoredChunk:
    return StoredChunk(
        chunk_id=chunk_id,
        document_id=meta["document_id"],
        filename=meta["filename"],
        text=text,
        chunk_index=int(meta["chunk_index"]),
        page=meta.get("page"),
        section=meta.get("section"),
        n_tokens=int(meta["n_tokens"]),
        section_index=int(meta["section_index"]),
        char_start=int(meta["char_start"]),
        char_end=int(meta["char_end"]),
        doc_tokens=int(meta["doc_tokens"]),
    )


def _hit(chunk_id: str, score: float, text: str, meta: dict[str, Any]) -> SearchHit:
    return SearchHit(
        document_id=meta["document_id"],
        chunk_id=chunk_id,
        text=text,
        score=float(score),
        page=meta.get("page"),
        section=meta.get("section"),
        filename=meta["filename"],
        chunk_index=int(meta["chunk_index"]),
    )
