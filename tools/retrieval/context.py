"""Context assembly against a token budget.

If every requested document fits the budget, all of them go in whole. Otherwise the best chunks
for the question (hybrid search) are taken best-first until the budget is full, then put back in
document order. Either way the text is a list of passages, each headed by the label to cite it
by, e.g. `[contract.pdf, p. 3]`, `[guide.md, § Setup > Linux]`, `[main.py, lines 10-42]`.
Token counts are the served model's tokenizer's count of the rendered text: `counter`, by
default the index's own (the one its chunks were sized with).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from tools.retrieval.index import DocumentIndex, StoredChunk
from tools.retrieval.tokens import TokenCounter

_LINES = re.compile(r"^lines (\d+)-(\d+)$")
# Another tokenizer may count up to this many times the index's tokens for the same text: documents
# that the index counts above budget x this are not rendered and counted whole.
_MAX_TOKENIZER_RATIO = 4


@dataclass(frozen=True)
class Passage:
    """A contiguous run of one document with one citation location."""

    document_id: str
    filename: str
    page: int | None
    section: str | None
    text: str
    chunk_ids: tuple[str, ...]

    @property
    def label(self) -> str:
        """What a citation of this passage says inside its brackets."""
        if self.page is not None:
            return f"{self.filename}, p. {self.page}"
        if self.section and _LINES.match(self.section):
            return f"{self.filename}, {self.section}"
        return f"{self.filename}, § {self.section or 'start'}"

    def render(self) -> str:
        """The passage as the model sees it."""
        return f"[{self.label}]\n{self.text.strip()}\n"


@dataclass(frozen=True)
class AssembledContext:
    """The passages to show the model, their token count, and whether the documents went in whole."""

    passages: list[Passage]
    n_tokens: int
    whole_documents: bool

    def render(self) -> str:
        return "\n".join(p.render() for p in self.passages)


def assemble_context(
    index: DocumentIndex, query: str, document_ids: list[str], budget_tokens: int, counter: TokenCounter | None = None
) -> AssembledContext:
    """Fit `document_ids` (whole, or their best chunks for `query`) into `budget_tokens` tokens of `counter`."""
    if budget_tokens <= 0:
        raise ValueError("the token budget must be positive")
    counter = counter or index.counter
    chunks = index.chunks(document_ids)
    if not chunks:
        return AssembledContext([], 0, True)
    doc_tokens = sum({c.document_id: c.doc_tokens for c in chunks}.values())
    limit = budget_tokens if counter is index.counter else budget_tokens * _MAX_TOKENIZER_RATIO
    if doc_tokens <= limit:
        whole = _passages(chunks)
        n_tokens = counter.count(_render(whole))
        if n_tokens <= budget_tokens:
            return AssembledContext(whole, n_tokens, True)
    return _best_chunks(index, counter, query, document_ids, chunks, budget_tokens)


def _best_chunks(
    index: DocumentIndex, counter: TokenCounter, query: str, document_ids: list[str], chunks: list[StoredChunk],
    budget_tokens: int,
) -> AssembledContext:
    """Best chunks best-first up to the budget, then in document order; trimmed to the exact count."""
    by_id = {c.chunk_id: c for c in chunks}
    cost = dict(zip(by_id, counter.count_many([c.text for c in chunks]), strict=True))
    average = max(1, sum(cost.values()) // len(chunks))
    wanted = min(len(chunks), 2 * budget_tokens // average + 1)
    hits = index.search(query, k=wanted, document_ids=document_ids, candidates=wanted)
    ranked = [by_id[h.chunk_id] for h in hits if h.chunk_id in by_id]
    ranked += [c for c in chunks if c.chunk_id not in {r.chunk_id for r in ranked}]
    selected: list[StoredChunk] = []
    used = 0
    label_cost = 16  # "[name, p. N]\n" and the blank line, an estimate corrected below
    for chunk in ranked:
        if used + cost[chunk.chunk_id] + label_cost <= budget_tokens:
            selected.append(chunk)
            used += cost[chunk.chunk_id] + label_cost
    order = {doc: n for n, doc in enumerate(document_ids)}
    while selected:
        passages = _passages(sorted(selected, key=lambda c: (order[c.document_id], c.chunk_index)))
        n_tokens = counter.count(_render(passages))
        if n_tokens <= budget_tokens:
            return AssembledContext(passages, n_tokens, False)
        selected.pop()  # the lowest-ranked chunk
    return AssembledContext([], 0, False)


def _render(passages: list[Passage]) -> str:
    return "\n".join(p.render() for p in passages)


def _passages(chunks: list[StoredChunk]) -> list[Passage]:
    """Join chunks (in reading order) into passages, dropping the overlap of neighbours."""
    passages: list[Passage] = []
    last: StoredChunk | None = None
    for chunk in chunks:
        if last is not None and _continues(last, chunk) and passages:
            previous = passages[-1]
            fresh = chunk.text[max(0, last.char_end - chunk.char_start) :]
            passages[-1] = Passage(
                previous.document_id,
                previous.filename,
                previous.page,
                _merge_sections(previous.section, chunk.section),
                previous.text + fresh,
                previous.chunk_ids + (chunk.chunk_id,),
            )
        else:
            passages.append(
                Passage(chunk.document_id, chunk.filename, chunk.page, chunk.section, chunk.text, (chunk.chunk_id,))
            )
        last = chunk
    return passages


def _continues(previous: StoredChunk, chunk: StoredChunk) -> bool:
    """True when `chunk` directly follows `previous` in the same section with the same location."""
    same_place = previous.page == chunk.page and (
        previous.section == chunk.section or bool(_LINES.match(chunk.section or ""))
    )
    return (
        chunk.document_id == previous.document_id
        and chunk.section_index == previous.section_index
        and chunk.char_start <= previous.char_end
        and same_place
    )


def _merge_sections(first: str | None, second: str | None) -> str | None:
    """Line ranges merge into one range; other labels stay as they are."""
    a, b = _LINES.match(first or ""), _LINES.match(second or "")
    if a and b:
        return f"lines {a.group(1)}-{b.group(2)}"
    return first
