"""Document QA agent (LangGraph): retrieve, answer with citations, check each citation exists."""
from agents.docqa.graph import DocQAAgent, DocQAConfig, QAResult, QuestionTooLong
from agents.docqa.window import Window

__all__ = ["DocQAAgent", "DocQAConfig", "QAResult", "QuestionTooLong", "Window"]
