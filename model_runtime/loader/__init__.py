"""Checkpoint loading: HF-layout safetensors (single or sharded), bf16/fp32 or FP8 block weights."""
