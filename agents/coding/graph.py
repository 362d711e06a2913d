"""LangGraph graph of the coding agent.

    START -> model --(no tool calls)--------------------------> END  (status "done")
               |  --(step budget spent)-----------------------> END  (status "budget_exhausted")
               |  --(dangerous call, no auto-approve)-> approve -> tools -> model
               '--(otherwise)---------------------------------------> tools -> model

State is a list of OpenAI-format message dicts plus a step counter; a checkpointer stores it
after every node, so a thread survives a restart. ``approve`` pauses the graph with
``interrupt`` until a human answers (``CodingAgent.run(thread_id, resume=...)``).
Streaming: tokens and tool results are written to LangGraph's custom stream and surface as
:class:`AgentEvent` objects.
"""
from __future__ import annotations

import json
import operator
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, TypedDict

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.config import get_stream_writer
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, interrupt

from agents.coding.prompts import SYSTEM_PROMPT
from agents.model_client import ChatModel
from tools.registry import ToolRegistry

_FINISHED = object()  # resume of a thread that already ended: nothing to stream, report the end

Status = Literal["running", "done", "budget_exhausted", "awaiting_approval"]


class AgentState(TypedDict, total=False):
    messages: Annotated[list[dict[str, Any]], operator.add]
    steps: int
    status: Status
    denied: list[str]  # ids of tool calls the human rejected


@dataclass(frozen=True)
class AgentConfig:
    """Agent behaviour: ``max_steps`` model calls per task; approval for dangerous tools."""

    max_steps: int = 30
    auto_approve: bool = False
    system_prompt: str = SYSTEM_PROMPT


@dataclass
class AgentEvent:
    """One thing the agent did, for printing or streaming.

    kind: "token" (text), "assistant" (message), "tool" (name, arguments, result, ok),
    "approval" (calls awaiting a decision), "finished" (status, text = final answer).
    """

    kind: str
    text: str = ""
    name: str = ""
    arguments: str = ""
    ok: bool = True
    status: str = ""
    calls: list[dict[str, Any]] = field(default_factory=list)
    message: dict[str, Any] = field(default_factory=dict)


class CodingAgent:
    """Builds and runs the graph for one model, tool registry and checkpointer."""

    def __init__(self, model: ChatModel, registry: ToolRegistry, checkpointer: BaseCheckpointSaver,
                 config: AgentConfig = AgentConfig()) -> None:
        self.model = model
        self.registry = registry
        self.config = config
        self.graph = self._build().compile(checkpointer=checkpointer)

    # -- graph -----------------------------------------------------------------------------
    def _build(self) -> StateGraph:
        graph = StateGraph(AgentState)
        graph.add_node("model", self._model_node)
        graph.add_node("approve", self._approve_node)
        graph.add_node("tools", self._tools_node)
        graph.add_edge(START, "model")
        graph.add_conditional_edges("model", self._route, ["approve", "tools", END])
        graph.add_edge("approve", "tools")
        graph.add_edge("tools", "model")
        return graph

    def _model_node(self, state: AgentState) -> dict[str, Any]:
        writer = get_stream_writer()
        messages = [{"role": "system", "content": self.config.system_prompt}, *state["messages"]]
        reply = self.model.chat(messages, self.registry.schemas(), on_token=lambda t: writer({"token": t}))
        steps = state.get("steps", 0) + 1
        if not reply.get("tool_calls"):
            status: Status = "done"
        elif steps >= self.config.max_steps:
            status = "budget_exhausted"
        else:
            status = "running"
        return {"messages": [reply], "steps": steps, "status": status, "denied": []}

    def _route(self, state: AgentState) -> str:
        if state["status"] != "running":
            return END
        calls = state["messages"][-1]["tool_calls"]
        if not self.config.auto_approve and any(self.registry.is_dangerous(c["function"]["name"]) for c in calls):
            return "approve"
        return "tools"

    def _approve_node(self, state: AgentState) -> dict[str, Any]:
        calls = [c for c in state["messages"][-1]["tool_calls"] if self.registry.is_dangerous(c["function"]["name"])]
        decision = interrupt({"calls": calls})
        if isinstance(decision, dict) and decision.get("approved"):
            return {"denied": []}
        return {"denied": [c["id"] for c in calls]}

    def _tools_node(self, state: AgentState) -> dict[str, Any]:
        writer = get_stream_writer()
        denied = set(state.get("denied") or [])
        results = []
        for call in state["messages"][-1]["tool_calls"]:
            name, arguments = call["function"]["name"], call["function"]["arguments"]
            if call["id"] in denied:
                result, ok = "error: the user did not approve this action", False
            else:
                record = self.registry.call(name, arguments)
                result, ok = record.result, record.ok
            writer({"tool": name, "arguments": arguments, "result": result, "ok": ok})
            results.append({"role": "tool", "tool_call_id": call["id"], "content": result})
        return {"messages": results}

    # -- running ---------------------------------------------------------------------------
    def pending_approval(self, thread_id: str) -> list[dict[str, Any]] | None:
        """The tool calls a paused thread waits on, or None when it is not paused."""
        snapshot = self.graph.get_state(self._thread(thread_id))
        for task in snapshot.tasks:
            for pending in task.interrupts:
                return pending.value["calls"]
        return None

    def messages(self, thread_id: str) -> list[dict[str, Any]]:
        return self.graph.get_state(self._thread(thread_id)).values.get("messages", [])

    def run(self, thread_id: str, task: str | None = None, approved: bool | None = None,
            resume: bool = False) -> Iterator[AgentEvent]:
        """Start ``task`` on the thread, or (``approved`` given) answer its pending approval.

        With ``resume`` (a job picking up after its process died), a thread that has a checkpoint
        continues from it instead: a pending approval is reported again, an unfinished step is
        redone, a finished thread only reports its end; without a checkpoint ``task`` starts.
        Yields events as they happen and ends with a "finished" or an "approval" event.
        """
        config = self._thread(thread_id)
        snapshot = self.graph.get_state(config)
        pending = self.pending_approval(thread_id)
        payload: Any
        if approved is not None and pending is not None:
            payload = Command(resume={"approved": approved})
        elif (resume or approved is not None) and snapshot.values:
            if pending is not None:
                yield AgentEvent("approval", calls=pending, status="awaiting_approval")
                return
            payload = None if snapshot.next else _FINISHED
        elif task is not None:
            messages = [*self._unanswered_calls(thread_id), {"role": "user", "content": task}]
            payload = {"messages": messages, "steps": 0, "status": "running"}
        else:
            raise ValueError("give a task or an approval decision")
        yield from self._stream(config, payload)

    def _stream(self, config: dict[str, Any], payload: Any) -> Iterator[AgentEvent]:
        chunks = [] if payload is _FINISHED else self.graph.stream(payload, config, stream_mode=["updates", "custom"])
        for mode, chunk in chunks:
            if mode == "custom" and "token" in chunk:
                yield AgentEvent("token", text=chunk["token"])
            elif mode == "custom":
                yield AgentEvent("tool", name=chunk["tool"], arguments=chunk["arguments"], text=chunk["result"],
                                 ok=chunk["ok"])
            elif "model" in chunk:
                yield AgentEvent("assistant", message=chunk["model"]["messages"][-1])
            elif "__interrupt__" in chunk:
                yield AgentEvent("approval", calls=chunk["__interrupt__"][0].value["calls"],
                                 status="awaiting_approval")
                return
        values = self.graph.get_state(config).values
        final = values["messages"][-1] if values.get("messages") else {}
        yield AgentEvent("finished", status=values.get("status", "done"), text=final.get("content") or "")

    def _unanswered_calls(self, thread_id: str) -> list[dict[str, Any]]:
        """Tool results for calls left unrun when a task stopped (the API requires one per call)."""
        history = self.messages(thread_id)
        if not history or not history[-1].get("tool_calls"):
            return []
        return [{"role": "tool", "tool_call_id": c["id"], "content": "not run: the step budget was exhausted"}
                for c in history[-1]["tool_calls"]]

    @staticmethod
    def _thread(thread_id: str) -> dict[str, Any]:
        return {"configurable": {"thread_id": thread_id}, "recursion_limit": 10_000}


def describe_call(call: dict[str, Any]) -> str:
    """``name {json args}`` for one OpenAI tool call, for display."""
    try:
        arguments = json.dumps(json.loads(call["function"]["arguments"] or "{}"), ensure_ascii=False)
    except json.JSONDecodeError:
        arguments = call["function"]["arguments"]
    return f"{call['function']['name']} {arguments}"
