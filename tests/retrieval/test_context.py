"""Context assembly: whole documents when they fit, else the best chunks in document order."""
from tests.retrieval.documents import filler_paragraphs, make_pdf
from tools.retrieval import DocumentIndex, assemble_context
from tools.retrieval.citations import check_citations

FACT = "The penalty for late delivery is 12 percent of the order value."


def _ingest(index: DocumentIndex) -> None:
    paragraphs = filler_paragraphs(60)
    paragraphs.insert(41, FACT)
    index.ingest("big", "terms.txt", "\n\n".join(paragraphs).encode())
    index.ingest("pdf", "memo.pdf", make_pdf([["Memo page one."], ["Memo page two mentions the budget."]]))


def test_documents_that_fit_go_in_whole_with_labels(index: DocumentIndex) -> None:
    _ingest(index)
    context = assemble_context(index, "late delivery penalty", ["pdf", "big"], budget_tokens=100_000)
    assert context.whole_documents
    assert [p.label for p in context.passages[:2]] == ["memo.pdf, p. 1", "memo.pdf, p. 2"]
    text_passage = context.passages[2]
    assert text_passage.label.startswith("terms.txt, lines 1-")
    assert text_passage.text.strip() == "\n\n".join(filler_paragraphs(60)[:41] + [FACT] + filler_paragraphs(60)[41:])
    assert context.n_tokens == index.counter.count(context.render())


def test_too_large_sets_get_the_best_chunks_in_document_order_within_budget(index: DocumentIndex) -> None:
    _ingest(index)
    whole = assemble_context(index, "x", ["big"], budget_tokens=100_000).n_tokens
    budget = whole // 3
    context = assemble_context(index, "What is the penalty for late delivery?", ["big"], budget_tokens=budget)
    assert not context.whole_documents
    assert context.n_tokens == index.counter.count(context.render()) <= budget
    assert context.n_tokens > budget // 2
    assert FACT in context.render()
    starts = [int(p.section.split()[1].split("-")[0]) for p in context.passages]
    assert starts == sorted(starts)


def test_citations_are_checked_against_the_passages(index: DocumentIndex) -> None:
    _ingest(index)
    context = assemble_context(index, "budget", ["pdf"], budget_tokens=10_000)
    answer = "The memo mentions the budget [memo.pdf, p. 2]. It has a cover [memo.pdf, p. 9] [other.pdf, p. 1]."
    citations = check_citations(answer, context.passages)
    assert [(c.text, c.exists) for c in citations] == [
        ("[memo.pdf, p. 2]", True),
        ("[memo.pdf, p. 9]", False),
        ("[other.pdf, p. 1]", False),
    ]
    assert citations[0].passage.chunk_ids and "budget" in citations[0].passage.text
