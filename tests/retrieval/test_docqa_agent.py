"""The doc-QA agent over a real index and a real OpenAI-compatible HTTP server (scripted replies)."""
from __future__ import annotations

from agents.docqa import DocQAAgent, DocQAConfig
from agents.model_client import ChatModel, ModelConfig
from tests.retrieval.documents import filler_paragraphs, make_pdf
from tests.support.scripted_openai import ScriptedOpenAIServer
from tools.retrieval import DocumentIndex

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
