"""Load time and peak RSS for a ~300 MB checkpoint, and forward latency against transformers.

Writes a random DeepSeek-V3-architecture checkpoint (bf16, sharded with an index, MTP layer),
then in fresh subprocesses: (1) our loader, measuring wall time and peak RSS above the
interpreter's baseline next to the loaded model's size; (2) forward latency of our model and of
transformers' DeepseekV3ForCausalLM on the same weights, same thread count, median of N runs.

    python benchmarks/model_load.py --out bench-out/load [--threads 2]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

CONFIG = dict(
    model_type="deepseek_v3", vocab_size=16000, hidden_size=1024, intermediate_size=2816, moe_intermediate_size=512,
    num_hidden_layers=4, num_attention_heads=8, num_key_value_heads=8, q_lora_rank=384, kv_lora_rank=512,
    qk_nope_head_dim=64, qk_rope_head_dim=64, v_head_dim=64, n_routed_experts=12, n_shared_experts=1,
    num_experts_per_tok=4, n_group=4, topk_group=2, first_k_dense_replace=1, num_nextn_predict_layers=1,
    max_position_embeddings=4096, rope_scaling=None, tie_word_embeddings=False,
)

LOAD = """
import json, sys, time, torch
torch.set_num_threads({threads})
from model_runtime import load_model
def hwm_kb():  # peak RSS of this process (VmHWM; unlike ru_maxrss it does not survive exec)
    return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM"))
base = hwm_kb()
t = time.perf_counter()
model = load_model(sys.argv[1], dtype=getattr(torch, sys.argv[2]))
seconds = time.perf_counter() - t
peak = hwm_kb()
with torch.no_grad():
    model(torch.zeros(1, 16, dtype=torch.long))  # touches every weight of the dense path and the used experts
    for p in model.parameters():
        p.add_(0)  # and every other page: the peak of a model in use, not just loaded
peak_used = hwm_kb()
size = sum(p.numel() * p.element_size() for p in model.state_dict().values())
print(json.dumps({{"dtype": sys.argv[2], "load_s": seconds, "baseline_rss_mb": base / 1024,
                  "peak_rss_mb": peak / 1024, "model_mb": size / 2**20, "peak_above_baseline_mb": (peak - base) / 1024,
                  "peak_in_use_above_baseline_mb": (peak_used - base) / 1024}}))
"""

LATENCY = """
import json, statistics, sys, time, torch
torch.set_num_threads({threads})
from model_runtime import load_model
from transformers import DeepseekV3Config, DeepseekV3ForCausalLM
path, runs = sys.argv[1], int(sys.argv[2])
ours = load_model(path, dtype=torch.float32)
cfg = DeepseekV3Config.from_pretrained(path)
theirs = DeepseekV3ForCausalLM.from_pretrained(path, config=cfg, torch_dtype=torch.float32).eval()
ids = torch.randint(0, 16000, (1, 128), generator=torch.Generator().manual_seed(0))
def timed(model, get):
    times = []
    with torch.no_grad():
        get(model(ids))
        for _ in range(runs):
            t = time.perf_counter(); get(model(ids)); times.append(time.perf_counter() - t)
    return statistics.median(times)
with torch.no_grad():
    diff = (ours(ids) - theirs(ids).logits).abs().max().item()
t_ours = timed(ours, lambda x: x)
t_theirs = timed(theirs, lambda x: x.logits)
print(json.dumps({{"tokens": 128, "ours_ms": t_ours * 1e3, "transformers_ms": t_theirs * 1e3,
                  "speedup": t_theirs / t_ours, "max_abs_logit_diff": diff}}))
"""


def random_checkpoint(ckpt: Path) -> Path:
    """Write the random ~162M-parameter checkpoint (bf16, 100 MB shards) unless it is there."""
    if not (ckpt / "config.json").exists():
        import torch

        from model_runtime import DeepseekV3ForCausalLM, ModelConfig
        from model_runtime.loader.save import save_checkpoint

        config = ModelConfig.from_dict(CONFIG)
        model = DeepseekV3ForCausalLM(config)
        with torch.no_grad():
            for p in model.parameters():
                p.normal_(0, 0.02) if p.dim() > 1 else p.fill_(1.0)
        save_checkpoint(model, config, ckpt, dtype=torch.bfloat16, max_shard_bytes=100 << 20)
    return ckpt


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="bench-out/load")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    out = Path(args.out)
    ckpt = random_checkpoint(out / "checkpoint")
    disk_mb = sum(f.stat().st_size for f in ckpt.glob("*.safetensors")) / 2**20
    results = {"checkpoint_mb": disk_mb, "threads": args.threads, "load": []}
    for dtype in ("bfloat16", "float32"):
        run = subprocess.run([sys.executable, "-c", LOAD.format(threads=args.threads), str(ckpt), dtype],
                             capture_output=True, text=True, check=True)
        results["load"].append(json.loads(run.stdout.strip().splitlines()[-1]))
    run = subprocess.run([sys.executable, "-c", LATENCY.format(threads=args.threads), str(ckpt), str(args.runs)],
                         capture_output=True, text=True, check=True)
    results["forward"] = json.loads(run.stdout.strip().splitlines()[-1])
    (out / "results.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
