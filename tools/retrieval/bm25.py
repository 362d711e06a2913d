"""Keyword search: an Okapi BM25 index (rank-bm25) over one collection's chunks.

The chunks' text lives in chromadb; the BM25 index is rebuilt from it whenever the collection's
generation (bumped on every write, stored in the collection's metadata) changes, so every process
sees the same index without a second copy of the data on disk.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
from rank_bm25 import BM25Okapi

_WORD = re.compile(r"\w+", re.UNICODE)


def keyword_tokens(text: str) -> list[str]:
    """Lower-cased word tokens; the same for chunks and queries."""
    return _WORD.findall(text.lower())


class LuceneBM25(BM25Okapi):
    """Okapi BM25 with Lucene's idf, log(1 + (N - n + 0.5) / (n + 0.5)), which is never negative.

    rank-bm25's own idf goes negative for terms in over half the chunks, so a small collection
    would rank a matching chunk below a non-matching one.
    """

    def _calc_idf(self, nd: dict[str, int]) -> None:
        for word, freq in nd.items():
            self.idf[word] = math.log(1 + (self.corpus_size - freq + 0.5) / (freq + 0.5))


@dataclass
class BM25Index:
    """BM25 over a fixed list of chunks (`ids[i]`, `texts[i]`, `metadatas[i]`)."""

    generation: str
    ids: list[str]
    texts: list[str]
    metadatas: list[dict[str, Any]]

    def __post_init__(self) -> None:
        corpus = [keyword_tokens(t) for t in self.texts]
        self._bm25 = LuceneBM25(corpus) if corpus else None
        self._document_ids = np.array([m["document_id"] for m in self.metadatas], dtype=object)

    def search(self, query: str, n: int, document_ids: list[str] | None) -> list[tuple[int, float]]:
        """Best `n` (position, score) pairs with a positive score, restricted to `document_ids`."""
        terms = keyword_tokens(query)
        if self._bm25 is None or not terms:
            return []
        scores = self._bm25.get_scores(terms)
        if document_ids is not None:
            scores = np.where(np.isin(self._document_ids, document_ids), scores, 0.0)
        top = np.argsort(-scores, kind="stable")[:n]
        return [(int(i), float(scores[i])) for i in top if scores[i] > 0]
