"""Chunking: token limits, overlap, structure-following cuts, dedupe, exact offsets."""
from tools.retrieval import RetrievalConfig, TokenCounter
from tools.retrieval.chunking import chunk_document
from tools.retrieval.parsing import parse_document
from tests.retrieval.documents import filler_paragraphs

CONFIG = RetrievalConfig(chunk_tokens=64, overlap_tokens=8, min_chunk_tokens=16)


def test_chunks_respect_the_token_limit_and_offsets(counter: TokenCounter) -> None:
    text = "\n\n".join(filler_paragraphs(40))
    parsed = parse_document("a.txt", text.encode())
    chunked = chunk_document(parsed, counter, CONFIG)
    assert chunked.n_tokens == counter.count(text)
    assert len(chunked.chunks) > 5
    for chunk in chunked.chunks:
        assert chunk.n_tokens <= CONFIG.chunk_tokens
        assert chunk.text == text[chunk.char_start : chunk.char_end]
        assert abs(counter.count(chunk.text) - chunk.n_tokens) <= 2


def test_neighbouring_chunks_overlap_and_cover_the_text(counter: TokenCounter) -> None:
    text = " ".join(filler_paragraphs(30))  # one paragraph: cuts fall at sentence ends
    chunks = chunk_document(parse_document("a.txt", text.encode()), counter, CONFIG).chunks
    assert chunks[0].char_start == 0 and chunks[-1].char_end == len(text)
    for previous, chunk in zip(chunks, chunks[1:], strict=False):
        assert chunk.char_start < previous.char_end, "no overlap"
        assert chunk.char_start > previous.char_start
        assert counter.count(text[chunk.char_start : previous.char_end]) <= CONFIG.overlap_tokens + 1


def test_cuts_prefer_paragraph_breaks(counter: TokenCounter) -> None:
    text = "\n\n".join(filler_paragraphs(30))
    chunks = chunk_document(parse_document("a.txt", text.encode()), counter, CONFIG).chunks
    ends = [c.char_end for c in chunks[:-1]]
    assert all(text[end - 2 : end] == "\n\n" for end in ends)


def test_code_is_cut_at_top_level_definitions(counter: TokenCounter) -> None:
    functions = [f"def function_{i}(x):\n    total = x * {i}\n    return total + {i}\n\n" for i in range(20)]
    source = "".join(functions)
    chunks = chunk_document(parse_document("m.py", source.encode()), counter, CONFIG).chunks
    assert len(chunks) > 2
    for chunk in chunks[:-1]:
        assert source[chunk.char_end :].startswith("def function_"), source[chunk.char_end : chunk.char_end + 30]
    assert chunks[0].section.startswith("lines 1-")


def test_pdf_chunks_never_cross_pages_and_carry_the_page(counter: TokenCounter) -> None:
    from tests.retrieval.documents import make_pdf

    data = make_pdf([filler_paragraphs(3), ["Only line on page two."]])
    chunks = chunk_document(parse_document("r.pdf", data), counter, CONFIG).chunks
    assert {c.page for c in chunks} == {1, 2}
    assert [c.text.strip() for c in chunks if c.page == 2] == ["Only line on page two."]


def test_identical_chunks_are_stored_once(counter: TokenCounter) -> None:
    text = "# A\nSame boilerplate paragraph.\n# B\nSame boilerplate paragraph.\n# C\nUnique words.\n"
    chunks = chunk_document(parse_document("d.md", text.encode()), counter, CONFIG).chunks
    assert [c.section for c in chunks] == ["A", "B", "C"]  # the headings make them differ
    text = "Same boilerplate paragraph.\n\n" * 50
    chunks = chunk_document(parse_document("d.txt", text.encode()), counter, CONFIG).chunks
    assert len({c.content_hash for c in chunks}) == len(chunks)
    assert len(chunks) < 5
