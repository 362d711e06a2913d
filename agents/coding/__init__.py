"""The private coding agent: a LangGraph loop of model and tools over one workspace."""
from agents.coding.graph import AgentConfig, AgentEvent, CodingAgent

__all__ = ["AgentConfig", "AgentEvent", "CodingAgent"]
