"""The DeepSeek-V3 architecture in PyTorch."""
from model_runtime.model.transformer import DeepseekV3ForCausalLM

__all__ = ["DeepseekV3ForCausalLM"]
