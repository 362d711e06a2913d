"""The captured decode step's attention: a C++ kernel that reads the paged latent cache in place.

`paged_attention.cpp` holds the kernel (CPU, float32; docstring there). It is built at first use
with torch's `cpp_extension` (about 15 s, once: the build is cached under `TORCH_EXTENSIONS_DIR`,
by default ~/.cache/torch_extensions, and rebuilt when the source changes) for the machine it runs
on (`-march=native`, as Inductor compiles its own kernels). Where it cannot be built or does not
apply (another device or dtype) the step gathers the context and runs the reference attention.
"""
from __future__ import annotations

import functools
import logging
from pathlib import Path

import torch

log = logging.getLogger(__name__)
SOURCE = Path(__file__).with_name("paged_attention.cpp")
OP = "deepseek_mla::paged_latent_attention"


@functools.cache
def load() -> bool:
    """Build (or load the cached build of) the kernel and register its fake for torch.compile."""
    from torch.utils import cpp_extension

    try:
        cpp_extension.load("deepseek_mla_paged_attention", [str(SOURCE)], is_python_module=False,
                           extra_cflags=["-O3", "-march=native", "-ffp-contract=fast"])
    except Exception:  # no compiler, say: the reference attention stays in use
        log.exception("building the paged attention kernel failed; decode attention gathers the cache instead")
        return False
    torch.library.register_fake(OP)(_shape)
    return True


def _shape(q, new, storage, slots, starts, scale, r, heads):
    return q.new_empty(q.shape[0], q.shape[1], r)


def applies(storage: torch.Tensor) -> bool:
    """Whether steps over this cache storage can use the kernel (building it on first call)."""
    return storage.device.type == "cpu" and storage.dtype == torch.float32 and load()


def paged_latent_attention(q: torch.Tensor, new: torch.Tensor, layer: torch.Tensor, slots: torch.Tensor,
                           starts: torch.Tensor, scale: float, kv_lora_rank: int, heads: int) -> torch.Tensor:
    """q [B, T*H, r + rope] (absorbed queries), new [B, T, r + rope], layer [slots, r + rope] (one
    layer's storage), slots [B, S], starts [B] -> o_latent [B, T*H, kv_lora_rank]."""
    return torch.ops.deepseek_mla.paged_latent_attention(q, new, layer, slots, starts, scale, kv_lora_rank, heads)
