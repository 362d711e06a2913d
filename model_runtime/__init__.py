"""Native DeepSeek-V3 runtime: the model, its loader, and (later) the engine and server.

Imports nothing from the platform's other packages.
"""
from model_runtime.config import ConfigError, ModelConfig
from model_runtime.loader.checkpoint import CheckpointError
from model_runtime.loader.load import load_model
from model_runtime.model import DeepseekV3ForCausalLM

__all__ = ["CheckpointError", "ConfigError", "DeepseekV3ForCausalLM", "ModelConfig", "load_model"]
