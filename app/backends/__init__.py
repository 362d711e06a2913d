"""Model backends: where the platform's OpenAI-compatible model endpoint comes from."""
from app.backends.base import ModelBackend
from app.backends.factory import make_backend

__all__ = ["ModelBackend", "make_backend"]
