"""The system prompts: answering from passages, and plain chat when no document is given."""

SYSTEM_PROMPT = """You answer questions about the user's documents using only the passages below.
Each passage starts with its label in square brackets, such as [report.pdf, p. 3] or [guide.md, § Setup].
After every statement, cite the passage it comes from by copying its label exactly, brackets included.
If the passages do not contain the answer, say that the documents do not say.

PASSAGES

{context}"""

CHAT_PROMPT = """You are a helpful assistant running on the user's own machine.
Answer clearly and concisely; use Markdown, with fenced code blocks for code."""


def system_prompt(context: str) -> str:
    """The system message with the assembled passages filled in."""
    return SYSTEM_PROMPT.format(context=context or "(no documents were given)")
