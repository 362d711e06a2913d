"""The doc-QA graph: retrieve -> answer -> check_citations, streamed.

retrieve      sizes the question's budget from the served model's window (window.py), keeps the
              most recent history that fits a quarter of it, and fits the documents (whole, or
              their best chunks) into the rest, counting tokens with the served model's tokenizer.
              Without documents it is plain chat with the model.
answer        asks an OpenAI-compatible model for at most the window's answer tokens, streaming
              them out as they arrive; it ends early when asked to stop (`stop` event) or when the
              answer has fallen into a loop (ending.py).
check_citations  finds every [document, page or section] citation in the answer and checks that
              it names a passage the model was given; citations that do not exist are reported.

`DocQAAgent.stream(...)` yields events (dicts with a "type"): "context" (passage labels and the
budget), "token" (answer text pieces), "citations" (checked citations) and finally "done" (the
answer, its citations and how it ended: "complete", "stopped" or "loop"). `DocQAAgent.run(...)`
returns the final `QAResult`.
"""
from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, TypedDict

from langgraph.config import get_stream_writer
from langgraph.graph import END, START, StateGraph

from agents.docqa.ending import loop_start
from agents.docqa.prompts import CHAT_PROMPT, system_prompt
from agents.docqa.window import Window, resolve_window
from agents.model_client import ChatModel
from tools.retrieval import AssembledContext, DocumentIndex, TokenCounter, assemble_context
from tools.retrieval.citations import Citation, check_citations

MESSAGE_OVERHEAD = 8  # role markers of the chat template, per message
TEMPLATE_MARGIN = 16  # BOS and the assistant marker that open the prompt and the answer
HISTORY_SHARE = 4  # history keeps at most 1/HISTORY_SHARE of the prompt budget


@dataclass(frozen=True)
class DocQAConfig:
    """Budget knobs; None means "ask the served model" (window) or "derive it" (answer reserve)."""

    context_window: int | None = None
    answer_reserve: int | None = None
    fallback_window: int = 8_192
    history_messages: int = 6
    stop_loops: bool = True

    def __post_init__(self) -> None:
        if self.context_window is not None and self.context_window < 64:
            raise ValueError("context_window must be at least 64 tokens")
        if self.answer_reserve is not None and self.answer_reserve < 1:
            raise ValueError("answer_reserve must be positive")


class QuestionTooLong(ValueError):
    """The question (with the prompt around it) does not fit the model's window."""


class _AnswerEnded(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class QAResult:
    """An answer, its checked citations, the context it was given and how it ended."""

    answer: str
    citations: list[Citation]
    context: AssembledContext
    ending: str = "complete"


class QAState(TypedDict, total=False):
    question: str
    document_ids: list[str]
    history: list[dict[str, str]]
    stop: threading.Event | None
    window: Window
    context: AssembledContext
    answer: str
    ending: str
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
    """Answers questions over documents in a `DocumentIndex` with a model behind the OpenAI API.

    `counter` counts tokens as the served model does (its own tokenizer); default: the index's.
    """

    def __init__(self, index: DocumentIndex, model: ChatModel, config: DocQAConfig,
                 counter: TokenCounter | None = None) -> None:
        self._index = index
        self._model = model
        self._config = config
        self._counter = counter or index.counter
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

    def window(self) -> Window:
        """The budget the next question gets."""
        c = self._config
        return resolve_window(self._model, c.context_window, c.answer_reserve, c.fallback_window)

    def _messages(self, state: QAState, context: str) -> list[dict[str, str]]:
        system = system_prompt(context) if state["document_ids"] else CHAT_PROMPT
        return [{"role": "system", "content": system}, *state.get("history", []),
                {"role": "user", "content": state["question"]}]

    def _cost(self, messages: list[dict[str, str]]) -> int:
        return sum(self._counter.count(m["content"]) + MESSAGE_OVERHEAD for m in messages)

    def _fitting_history(self, history: list[dict[str, str]], budget: int) -> list[dict[str, str]]:
        """The most recent messages (at most `history_messages`) whose cost stays within `budget`."""
        kept: list[dict[str, str]] = []
        for message in reversed(history[-self._config.history_messages :]):
            budget -= self._cost([message])
            if budget < 0:
                break
            kept.insert(0, message)
        return kept

    def _retrieve(self, state: QAState) -> dict[str, Any]:
        window = self.window()
        bare = self._cost(self._messages({**state, "history": []}, "")) + TEMPLATE_MARGIN
        if bare >= window.prompt_tokens:
            raise QuestionTooLong(
                f"the question needs {bare} tokens with its prompt, but the model's window of "
                f"{window.context_window} tokens keeps {window.answer_tokens} for the answer; shorten the question")
        history = self._fitting_history(state.get("history", []), (window.prompt_tokens - bare) // HISTORY_SHARE)
        budget = window.prompt_tokens - bare - self._cost(history)
        if state["document_ids"]:
            context = assemble_context(self._index, state["question"], state["document_ids"], budget, self._counter)
        else:
            context = AssembledContext([], 0, True)
        get_stream_writer()(
            {
                "type": "context",
                "whole_documents": context.whole_documents,
                "n_tokens": context.n_tokens,
                "window": window.as_dict(),
                "passages": [{"label": p.label, "document_id": p.document_id} for p in context.passages],
            }
        )
        return {"context": context, "window": window, "history": history}

    def _answer(self, state: QAState) -> dict[str, Any]:
        write = get_stream_writer()
        stop = state.get("stop")
        text = ""

        def on_token(piece: str) -> None:
            nonlocal text
            if stop is not None and stop.is_set():
                raise _AnswerEnded("stopped")
            text += piece
            write({"type": "token", "text": piece})
            if self._config.stop_loops and loop_start(text) is not None:
                raise _AnswerEnded("loop")

        messages = self._messages(state, state["context"].render())
        try:
            reply = self._model.chat(messages, on_token=on_token, max_tokens=state["window"].answer_tokens)
        except _AnswerEnded as end:
            cut = loop_start(text) if end.reason == "loop" else None
            return {"answer": text[:cut].rstrip() if cut else text, "ending": end.reason}
        return {"answer": reply.get("content") or "", "ending": "complete"}

    def _check_citations(self, state: QAState) -> dict[str, Any]:
        citations = check_citations(state["answer"], state["context"].passages) if state["document_ids"] else []
        get_stream_writer()({"type": "citations", "citations": [citation_dict(c) for c in citations]})
        return {"citations": citations}

    def stream(
        self, question: str, document_ids: list[str], history: list[dict[str, str]] | None = None,
        stop: threading.Event | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Run the graph, yielding its events; the last is {"type": "done", "answer", "citations", "ending"}.

        An empty `document_ids` is plain chat with the model. Setting `stop` ends the answer
        where it is (ending "stopped"); the model's stream is closed.
        """
        state: QAState = {"question": question, "document_ids": document_ids, "history": history or [], "stop": stop}
        final: dict[str, Any] = {}
        for mode, payload in self._graph.stream(state, stream_mode=["custom", "values"]):
            if mode == "custom":
                yield payload
            else:
                final = payload
        yield {
            "type": "done",
            "answer": final.get("answer", ""),
            "ending": final.get("ending", "complete"),
            "answer_tokens": self._counter.count(final.get("answer", "")),
            "citations": [citation_dict(c) for c in final.get("citations", [])],
        }

    def run(self, question: str, document_ids: list[str], history: list[dict[str, str]] | None = None) -> QAResult:
        """Answer without streaming."""
        state = self._graph.invoke({"question": question, "document_ids": document_ids, "history": history or []})
        return QAResult(state["answer"], state["citations"], state["context"], state["ending"])
