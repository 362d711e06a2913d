"""The doc-QA agent over a real index and a real OpenAI-compatible HTTP server (scripted replies)."""
from __future__ import annotations

import threading
from pathlib import Path

import pytest

from agents.docqa import DocQAAgent, DocQAConfig, QuestionTooLong
from agents.model_client import ChatModel, ModelConfig
from tests.retrieval.documents import FACT, filler_paragraphs, long_pdf, make_pdf
from tests.support.scripted_openai import Reply, ScriptedOpenAIServer
from tools.retrieval import DocumentIndex, TokenCounter

TINY_TOKENIZER = Path(__file__).resolve().parents[2] / "models" / "deepseek-v3-tiny" / "tokenizer.json"

ANSWER = "The rent is 900 euros a month [lease.pdf, p. 2]. Pets are allowed [lease.pdf, p. 7]."


def _agent(index: DocumentIndex, server: ScriptedOpenAIServer, config: DocQAConfig) -> DocQAAgent:
    model = ChatModel(ModelConfig(base_url=server.base_url, model="scripted-model", max_retries=0))
    return DocQAAgent(index, model, config)


def _lease(index: DocumentIndex) -> None:
    pages = [filler_paragraphs(3), ["The monthly rent is 900 euros, due on the first day."], filler_paragraphs(6)[4:]]
    index.ingest("lease", "lease.pdf", make_pdf(pages))


def test_streamed_answer_with_checked_citations(index: DocumentIndex) -> None:
    _lease(index)
    with ScriptedOpenAIServer([ANSWER]) as server:
        events = list(_agent(index, server, DocQAConfig()).stream("What is the rent?", ["lease"]))
        request = server.chat_requests[0]
    kinds = [e["type"] for e in events]
    assert kinds[0] == "context" and kinds[-2:] == ["citations", "done"]
    tokens = [e["text"] for e in events if e["type"] == "token"]
    assert len(tokens) > 1 and "".join(tokens) == ANSWER
    assert events[0]["whole_documents"] and [p["label"] for p in events[0]["passages"]] == [
        "lease.pdf, p. 1", "lease.pdf, p. 2", "lease.pdf, p. 3"
    ]
    done = events[-1]
    assert done["answer"] == ANSWER
    assert [(c["text"], c["exists"]) for c in done["citations"]] == [("[lease.pdf, p. 2]", True), ("[lease.pdf, p. 7]", False)]
    assert "900 euros" in done["citations"][0]["passage"] and done["citations"][0]["document_id"] == "lease"
    system = request["messages"][0]["content"]
    assert request["stream"] is True and "[lease.pdf, p. 2]\nThe monthly rent is 900 euros" in system
    assert request["messages"][-1] == {"role": "user", "content": "What is the rent?"}


def test_a_small_window_gets_the_best_chunks_only(index: DocumentIndex) -> None:
    paragraphs = filler_paragraphs(80)
    paragraphs.insert(50, "The warranty lasts exactly 27 months from delivery.")
    index.ingest("big", "terms.txt", "\n\n".join(paragraphs).encode())
    with ScriptedOpenAIServer(["27 months [terms.txt, lines 101-101]."]) as server:
        config = DocQAConfig(context_window=900, answer_reserve=200)
        result = _agent(index, server, config).run("How long does the warranty last?", ["big"], history=[])
        system = server.chat_requests[0]["messages"][0]["content"]
    assert not result.context.whole_documents
    assert "27 months" in system
    assert result.context.n_tokens <= 900 - 200
    assert index.counter.count(system) < 900 - 200
    assert result.citations[0].exists, result.context.passages


def test_history_is_sent_before_the_question(index: DocumentIndex) -> None:
    _lease(index)
    history = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]
    with ScriptedOpenAIServer(["No citation here."]) as server:
        result = _agent(index, server, DocQAConfig()).run("And the rent?", ["lease"], history=history)
        messages = server.chat_requests[0]["messages"]
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert result.answer == "No citation here." and result.citations == []


def test_a_4k_model_gets_a_prompt_and_an_answer_that_fit_its_window(index: DocumentIndex) -> None:
    """The bug of issue 13: 131,072 tokens assumed and 4,096 answer tokens asked of a 4,096-token model."""
    tiny = TokenCounter.from_file(TINY_TOKENIZER)
    index.ingest("report", "report.pdf", long_pdf(n_pages=10, fact_page=7))
    index.ingest("note", "note.md", b"# Rent\n\nThe monthly rent is 900 euros.\n")
    with ScriptedOpenAIServer(["It is 7741-B [report.pdf, p. 7].", "900 euros [note.md, \u00a7 Rent]."],
                              max_model_len=4_096) as server:
        agent = DocQAAgent(index, ChatModel(ModelConfig(base_url=server.base_url, model="scripted-model",
                                                        max_retries=0)), DocQAConfig(), tiny)
        big = agent.run("What is the inspection certificate number?", ["report"])
        small = agent.run("What is the rent?", ["note"])
        requests = server.chat_requests
    assert not big.context.whole_documents and small.context.whole_documents
    assert FACT in requests[0]["messages"][0]["content"]
    assert big.citations[0].exists and small.citations[0].exists
    for request in requests:
        prompt = sum(tiny.count(m["content"]) + 8 for m in request["messages"]) + 16
        assert request["max_tokens"] == 512
        assert prompt + request["max_tokens"] <= 4_096, prompt


def test_a_looping_answer_ends_where_the_loop_starts(index: DocumentIndex) -> None:
    _lease(index)
    with ScriptedOpenAIServer(["The rent is 900 euros [lease.pdf, p. 2].\n" + "#\n" * 400]) as server:
        events = list(_agent(index, server, DocQAConfig()).stream("What is the rent?", ["lease"]))
    done = events[-1]
    assert done["ending"] == "loop" and done["answer"] == "The rent is 900 euros [lease.pdf, p. 2].\n#"
    assert sum(len(e["text"]) for e in events if e["type"] == "token") < 400  # it stopped reading
    assert done["citations"][0]["exists"]


def test_stop_ends_the_answer_and_keeps_what_came(index: DocumentIndex) -> None:
    _lease(index)
    stop = threading.Event()
    with ScriptedOpenAIServer([Reply(content="word " * 400, chunk_delay_s=0.01)]) as server:
        events = []
        for event in _agent(index, server, DocQAConfig()).stream("What is the rent?", ["lease"], stop=stop):
            events.append(event)
            if event["type"] == "token" and len(events) > 5:
                stop.set()
    done = events[-1]
    assert done["ending"] == "stopped"
    assert 0 < len(done["answer"]) < len("word " * 400) / 2 and "word " * 400 != done["answer"]


def test_without_documents_it_is_plain_chat(index: DocumentIndex) -> None:
    _lease(index)
    with ScriptedOpenAIServer(["Hello! [not, p. 1]"]) as server:
        result = _agent(index, server, DocQAConfig()).run("Say hello", [])
        system = server.chat_requests[0]["messages"][0]["content"]
    assert "PASSAGES" not in system and "900 euros" not in system
    assert result.answer == "Hello! [not, p. 1]" and result.citations == [] and result.context.passages == []


def test_history_keeps_the_newest_messages_that_fit_a_quarter_of_the_window(index: DocumentIndex) -> None:
    _lease(index)
    old = [{"role": "user", "content": "old " * 300}, {"role": "assistant", "content": "older " * 300}]
    recent = [{"role": "user", "content": "Is there a deposit?"}, {"role": "assistant", "content": "Yes."}]
    with ScriptedOpenAIServer(["Fine."], max_model_len=1_500) as server:
        _agent(index, server, DocQAConfig()).run("And the rent?", ["lease"], history=old + recent)
        messages = server.chat_requests[0]["messages"]
    assert messages[1:] == [*recent, {"role": "user", "content": "And the rent?"}]


def test_a_question_longer_than_the_window_is_refused_clearly(index: DocumentIndex) -> None:
    _lease(index)
    with ScriptedOpenAIServer(["never sent"], max_model_len=300) as server:
        with pytest.raises(QuestionTooLong, match="model's window of 300 tokens"):
            _agent(index, server, DocQAConfig()).run("why " * 400, ["lease"])
        assert server.chat_requests == []
