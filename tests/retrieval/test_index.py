"""DocumentIndex against a real chromadb: ingest, search modes, idempotency, filters, rollback."""
from __future__ import annotations

from dataclasses import replace

import pytest

from tests.retrieval.documents import filler_paragraphs, make_pdf
from tools.retrieval import DocumentError, DocumentIndex, RetrievalConfig, TokenCounter
from tools.retrieval.embeddings import MiniLMEmbeddingFunction

NEEDLE = "The access code for the north warehouse is 4417-ZETA."


def _text_with_needle() -> bytes:
    paragraphs = filler_paragraphs(30)
    paragraphs.insert(17, NEEDLE)
    return "\n\n".join(paragraphs).encode()


@pytest.mark.parametrize("mode", ["vector", "bm25", "hybrid"])
def test_each_search_mode_finds_the_needle(index: DocumentIndex, mode: str) -> None:
    index.ingest("d1", "notes.txt", _text_with_needle())
    hits = index.search("What is the access code for the north warehouse?", k=3, mode=mode)
    assert hits and "4417-ZETA" in hits[0].text
    assert hits[0].document_id == "d1" and hits[0].filename == "notes.txt"
    assert hits[0].section.startswith("lines ")
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_pdf_hits_carry_their_page(index: DocumentIndex) -> None:
    index.ingest("p1", "r.pdf", make_pdf([filler_paragraphs(2), ["The launch date is March 3rd."]]))
    hit = index.search("launch date", k=1)[0]
    assert hit.page == 2 and hit.section is None and "March 3rd" in hit.text


def test_reingesting_the_same_file_is_idempotent(index: DocumentIndex) -> None:
    first = index.ingest("d1", "notes.txt", _text_with_needle())
    count = index.count()
    second = index.ingest("d1", "notes.txt", _text_with_needle())
    assert first.created and not second.created
    assert second.n_chunks == first.n_chunks == count == index.count()
    assert second.n_tokens == first.n_tokens


def test_new_bytes_replace_the_old_chunks(index: DocumentIndex) -> None:
    index.ingest("d1", "notes.txt", _text_with_needle())
    index.ingest("d1", "notes.txt", b"Completely different content about penguins.")
    assert index.count("d1") == 1
    assert index.search("4417-ZETA warehouse", k=5, mode="bm25") == []
    assert "penguins" in index.search("penguins", k=1)[0].text


def test_search_is_limited_to_the_given_documents(index: DocumentIndex) -> None:
    index.ingest("mine", "a.txt", b"Blue whales are the largest animals.")
    index.ingest("theirs", "b.txt", b"Blue whales sing long songs.")
    for mode in ("vector", "bm25", "hybrid"):
        hits = index.search("blue whales", k=5, document_ids=["mine"], mode=mode)
        assert {h.document_id for h in hits} == {"mine"}, mode
    assert index.search("blue whales", k=5, document_ids=[]) == []


def test_delete_removes_vectors_and_keywords(index: DocumentIndex) -> None:
    index.ingest("d1", "notes.txt", _text_with_needle())
    index.ingest("d2", "other.txt", b"Unrelated text on tides.")
    index.delete("d1")
    assert index.count("d1") == 0 and index.count() == 1
    assert all(h.document_id == "d2" for h in index.search("access code warehouse", k=5))


def test_bad_files_store_nothing(index: DocumentIndex) -> None:
    with pytest.raises(DocumentError):
        index.ingest("bad", "x.pdf", b"%PDF-1.4 garbage")
    assert index.count() == 0


def test_a_failure_while_storing_rolls_back(
    config: RetrievalConfig, counter: TokenCounter, embedder: MiniLMEmbeddingFunction
) -> None:
    class FailsOnSecondBatch(MiniLMEmbeddingFunction):
        def __init__(self) -> None:  # share the loaded model
            self.__dict__.update(embedder.__dict__)
            self.calls = 0

        def __call__(self, input):  # noqa: A002 - chromadb's parameter name
            self.calls += 1
            if self.calls == 2:
                raise RuntimeError("disk full")
            return super().__call__(input)

    small_batches = RetrievalConfig(**{**config.__dict__, "embed_batch_size": 2})
    index = DocumentIndex(small_batches, counter, FailsOnSecondBatch())
    with pytest.raises(RuntimeError, match="disk full"):
        index.ingest("d1", "notes.txt", _text_with_needle())
    assert index.count() == 0


def test_the_index_persists_and_bm25_is_rebuilt_in_a_new_process_view(
    index: DocumentIndex, config: RetrievalConfig, counter: TokenCounter, embedder: MiniLMEmbeddingFunction
) -> None:
    index.ingest("d1", "notes.txt", _text_with_needle())
    reopened = DocumentIndex(config, counter, embedder)
    assert "4417-ZETA" in reopened.search("north warehouse access code", k=1, mode="bm25")[0].text
    index.ingest("d2", "more.txt", b"The south warehouse code is 9001-OMEGA.")
    assert "9001-OMEGA" in reopened.search("south warehouse code", k=1, mode="bm25")[0].text


def test_chunks_come_back_in_reading_order(index: DocumentIndex) -> None:
    index.ingest("d1", "notes.txt", _text_with_needle())
    chunks = index.chunks(["d1"])
    assert [c.chunk_index for c in chunks] == list(range(len(chunks)))
    assert index.chunk(chunks[1].chunk_id) == chunks[1]
    assert index.chunk("d1:nope") is None


def test_the_sentence_reranker_puts_the_needle_first(index: DocumentIndex) -> None:
    index.ingest("d1", "notes.txt", _text_with_needle())
    hits = index.search("access code of the north warehouse", k=3, rerank=True)
    assert "4417-ZETA" in hits[0].text
    assert hits[0].score > hits[1].score  # cosine of the best sentence, best first


def test_hnsw_settings_are_used_and_ef_search_follows_the_config(
    index: DocumentIndex, config: RetrievalConfig, counter: TokenCounter, embedder: MiniLMEmbeddingFunction
) -> None:
    hnsw = index._collection.configuration["hnsw"]
    assert (hnsw["max_neighbors"], hnsw["ef_construction"], hnsw["ef_search"]) == (
        config.hnsw_max_neighbors, config.hnsw_ef_construction, config.hnsw_ef_search)
    index.ingest("d1", "notes.txt", _text_with_needle())
    wider = DocumentIndex(replace(config, hnsw_ef_search=config.hnsw_ef_search + 100), counter, embedder)
    assert wider._collection.configuration["hnsw"]["ef_search"] == config.hnsw_ef_search + 100
    assert "4417-ZETA" in wider.search("north warehouse access code", k=1, mode="vector")[0].text
    with pytest.raises(ValueError, match="must be positive"):
        replace(config, hnsw_ef_search=0)


def test_storing_reports_chunks_and_pages_as_they_are_done(index: DocumentIndex, config: RetrievalConfig) -> None:
    small_batches = DocumentIndex(replace(config, embed_batch_size=4), index.counter, index._embedder)
    pages = [[f"Page {n}: {p}" for p in filler_paragraphs(4 + n)] for n in range(6)]
    heard = []
    prepared = small_batches.prepare("six.pdf", make_pdf(pages))
    small_batches.store("six", prepared, heard.append)
    total = len(prepared.chunked.chunks)
    assert total > 8
    assert [p.chunks_done for p in heard] == [0, *range(4, total, 4), total]
    assert {(p.chunks_total, p.pages_total) for p in heard} == {(total, 6)}
    assert heard[0].pages_done == 0 and heard[-1].pages_done == 6
    done_pages = [p.pages_done for p in heard]
    assert done_pages == sorted(done_pages) and len(set(done_pages)) > 2
    again = []
    small_batches.store("six", prepared, again.append)  # already stored: done at once
    assert again == [heard[-1]]


def test_a_store_cut_short_by_a_crash_is_completed_embedding_only_the_rest(index: DocumentIndex) -> None:
    """A killed ingestion leaves some chunks of the file behind; storing it again once reported
    those few as the whole document (ready with 64 of 226 chunks)."""
    prepared = index.prepare("notes.txt", _text_with_needle())
    chunks = prepared.chunked.chunks
    assert len(chunks) > 4
    first_part = replace(prepared, chunked=replace(prepared.chunked, chunks=chunks[:3]))
    index.store("d1", first_part)  # what the killed process got to write
    assert index.count("d1") == 3
    heard = []
    result = index.store("d1", prepared, heard.append)
    assert result.n_chunks == len(chunks) == index.count("d1")
    assert heard[0].chunks_done == 3 and heard[-1].chunks_done == len(chunks)
    assert "4417-ZETA" in index.search("north warehouse access code", k=1)[0].text
