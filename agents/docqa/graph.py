"""The doc-QA graph: retrieve -> answer -> check_citations, streamed.

retrieve      fits the documents (whole, or their best chunks) into the model's window minus the
              answer reserve, counting tokens with the model's tokenizer.
answer        asks an OpenAI-compatible model, streaming its tokens out as they arrive.
check_citations  finds every [document, page or section] citation in the answer and checks that
              it names a passage the model was given; citations that do not exist are reported.

`DocQAAgent.stream(...)` yields events (dicts with a "type"): "context" (passage labels),
"token" (answer text pieces), "citations" (checked citations) and finally "done" (the answer and
its citations). `DocQAAgent.run(...)` returns the final `QAResult`.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, TypedDict

from langgraph.config import get_stream_writer
from langgraph.graph import END, START, StateGraph

from agents.docqa.prompts import system_prompt
from agents.model_client import ChatModel
from tools.retrieval import AssembledContext, DocumentIndex, assemble_context
from tools.retrieval.citations import Citation, check_citations


@dataclass(frozen=True)
class DocQAConfig:
    """The model's window and how much of it stays free for the answer (DeepSeek-V3: 128K)."""

    context_window: int = 131_072
    answer_reserve: int = 4_096
    history_messages: int = 6

    def __post_init__(self) -> None:
        if not 0 < self.answer_reserve < self.context_window:
            raise ValueError("answer_reserve must be positive and smaller than context_window")


@dataclass(frozen=True)
class QAResult:
    """An answer, its checked citations and the context it was given."""

    answer: str
    citations: list[Citation]
    context: AssembledContext


class QAState(TypedDict, total=False):
    question: str
    document_ids: list[str]
    history: list[dict[str, str]]
    context: AssembledContext
    answer: str
    citations: list[Citation]


def citation_dict(citation: Citation) -> dict[str, Any]:
    """A citation as JSON: what was written, whether it exists, and the passage it opens."""
    passage = citation.passage
    return {
        "text": citation.text,
        "filename": citation.filename,
        "page": citation.page,
        "section": citation.section,
        "exists": citation.exists,
        "document_id": passage.document_id if passage else None,
        "chunk_ids": list(passage.chunk_ids) if passage else [],
        "passage": passage.text.strip() if passage else None,
    }


class DocQAAgent:
    """Answers questions over documents in a `DocumentIndex` with a model behind the OpenAI API."""

    def __init__(self, index: DocumentIndex, model: ChatModel, config: DocQAConfig) -> None:
        self._index = index
        self._model = model
        self._config = config
        self._graph = self._build()

    def _build(self):
        graph = StateGraph(QAState)
        graph.add_node("retrieve", self._retrieve)
        graph.add_node("answer", self._answer)
        graph.add_node("check_citations", self._check_citations)
        graph.add_edge(START, "retrieve")
        graph.add_edge("retrieve", "answer")
        graph.add_edge("answer", "check_citations")
        graph.add_edge("check_citations", END)
        return graph.compile()

    def _messages(self, state: QAState, context: str) -> list[dict[str, str]]:
        history = state.get("history", [])[-self._config.history_messages :]
        return [
            {"role": "system", "content": system_prompt(context)},
            *history,
            {"role": "user", "content": state["question"]},
        ]

    def _retrieve(self, state: QAState) -> dict[str, Any]:
        counter = self._index.counter
        overhead = sum(counter.count(m["content"]) + 8 for m in self._messages(state, ""))
        budget = self._config.context_window - self._config.answer_reserve - overhead
        if budget <= 0:
            raise ValueError("the question and history leave no room for documents in the model's window")
        context = assemble_context(self._index, state["question"], state["document_ids"], budget)
        get_stream_writer()(
            {
                "type": "context",
                "whole_documents": context.whole_documents,
                "n_tokens": context.n_tokens,
                "passages": [{"label": p.label, "document_id": p.document_id} for p in context.passages],
            }
        )
        return {"context": context}

    def _answer(self, state: QAState) -> dict[str, Any]:
        write = get_stream_writer()
        reply = self._model.chat(
            self._messages(state, state["context"].render()),
            on_token=lambda text: write({"type": "token", "text": text}),
        )
        return {"answer": reply.get("content") or ""}

    def _check_citations(self, state: QAState) -> dict[str, Any]:
        citations = check_citations(state["answer"], state["context"].passages)
        get_stream_writer()({"type": "citations", "citations": [citation_dict(c) for c in citations]})
        return {"citations": citations}

    def stream(
        self, question: str, document_ids: list[str], history: list[dict[str, str]] | None = None
    ) -> Iterator[dict[str, Any]]:
        """Run the graph, yielding its events; the last is {"type": "done", "answer", "citations"}."""
        state: QAState = {"question": question, "document_ids": document_ids, "history": history or []}
        final: dict[str, Any] = {}
        for mode, payload in self._graph.stream(state, stream_mode=["custom", "values"]):
            if mode == "custom":
                yield payload
            else:
                final = payload
        yield {
            "type": "done",
            "answer": final.get("answer", ""),
            "citations": [citation_dict(c) for c in final.get("citations", [])],
        }

    def run(self, question: str, document_ids: list[str], history: list[dict[str, str]] | None = None) -> QAResult:
        """Answer without streaming."""
        state = self._graph.invoke({"question": question, "document_ids": document_ids, "history": history or []})
        return QAResult(state["answer"], state["citations"], state["context"])
