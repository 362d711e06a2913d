"""Serving engine: paged latent KV cache, continuous batching, MTP speculative decoding."""
