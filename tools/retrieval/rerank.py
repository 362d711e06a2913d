"""Optional reranking of fused candidates by their best-matching sentence.

A chunk embedding averages a few hundred tokens, so one relevant sentence among unrelated ones
(a "needle") is diluted. The reranker embeds each candidate's sentences and scores the chunk by
its best sentence's cosine similarity to the query; it uses the same offline embedding model.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import numpy as np

_SENTENCE_SPLIT = re.compile(r"(?<=[.!?])\s+|\n\s*\n|\n(?=\s*[-*#\d])")

Embed = Callable[[list[str]], Sequence[np.ndarray]]


def split_sentences(text: str, max_sentences: int = 64) -> list[str]:
    """Non-empty sentences (or paragraph lines) of `text`, at most `max_sentences`."""
    parts = [p.strip() for p in _SENTENCE_SPLIT.split(text)]
    return [p for p in parts if len(p) > 3][:max_sentences] or [text.strip()]


class SentenceReranker:
    """Scores each text by max over its sentences of cosine(query, sentence)."""

    def __init__(self, embed: Embed) -> None:
        self._embed = embed

    def scores(self, query: str, texts: Sequence[str]) -> list[float]:
        """One score per text, in [-1, 1] (the vectors are normalised)."""
        sentences = [split_sentences(t) for t in texts]
        flat = [query] + [s for group in sentences for s in group]
        vectors = np.asarray(self._embed(flat), dtype=np.float32)
        similarity = vectors[1:] @ vectors[0]
        result, position = [], 0
        for group in sentences:
            result.append(float(similarity[position : position + len(group)].max()))
            position += len(group)
        return result
