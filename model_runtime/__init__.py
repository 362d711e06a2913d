"""Native DeepSeek-V3 runtime: the model, its loader, the engine and (in `server`) the HTTP API.

Imports nothing from the platform's other packages.
"""
from model_runtime.config import ConfigError, ModelConfig
from model_runtime.engine.async_engine import AsyncLLMEngine
from model_runtime.engine.config import EngineConfig
from model_runtime.engine.sampling_params import SamplingParams
from model_runtime.llm import LLM
from model_runtime.loader.checkpoint import CheckpointError
from model_runtime.loader.load import load_model
from model_runtime.model import DeepseekV3ForCausalLM
from model_runtime.tokenizer import load_tokenizer

__all__ = [
    "AsyncLLMEngine", "CheckpointError", "ConfigError", "DeepseekV3ForCausalLM", "EngineConfig", "LLM",
    "ModelConfig", "SamplingParams", "load_model", "load_tokenizer",
]
