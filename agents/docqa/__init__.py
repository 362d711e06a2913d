"""Document QA agent (LangGraph): retrieve, answer with citations, check each citation exists."""
from agents.docqa.graph import DocQAAgent, DocQAConfig, QAResult

__all__ = ["DocQAAgent", "DocQAConfig", "QAResult"]
