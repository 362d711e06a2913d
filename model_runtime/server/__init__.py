"""OpenAI-compatible HTTP server over the engine (contract 3): `create_app(engine, model_name)`."""
from model_runtime.server.app import create_app

__all__ = ["create_app"]
