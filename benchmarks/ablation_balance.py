"""Small-scale ablation of expert load balancing (DeepSeek-V3 §2.1.2 / §4.5.2 at toy scale).

Same config, data, steps and seed; only the balancing differs: auxiliary-loss-free bias updates,
a classic auxiliary balance loss, or none. Prints held-out loss and MaxVio (whole held-out set,
mean over MoE layers, MTP layer included) as a Markdown table and writes JSON.

    python benchmarks/ablation_balance.py --corpus var/stdlib-4k/corpus --steps 150
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from model_runtime.training.trainer import Trainer, TrainConfig


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--corpus", required=True)
    parser.add_argument("--model-config", default="models/configs/deepseek-v3-tiny.json")
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--gamma", type=float, default=0.01)
    parser.add_argument("--alpha", type=float, default=0.01)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default="bench-out/ablation")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    results = {}
    for mode in ("loss_free", "aux_loss", "none"):
        config = TrainConfig(
            corpus=args.corpus, out=f"{args.out}/{mode}", model_config=args.model_config, steps=args.steps,
            batch_size=args.batch_size, seq_len=args.seq_len, lr=3e-3, warmup_steps=20, eval_every=args.steps,
            eval_batches=16, save_every=10**9, balance=mode, bias_gamma=args.gamma, aux_alpha=args.alpha, seed=0,
        )
        started = time.perf_counter()
        result = Trainer(config).train()
        result["seconds"] = time.perf_counter() - started
        results[mode] = result
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "results.json").write_text(json.dumps({"args": vars(args), "results": results}, indent=2))
    print("| balancing | held-out loss (main) | held-out MTP loss | MaxVio (held-out, mean of layers) | MaxVio per layer |")
    print("|---|---|---|---|---|")
    for mode, r in results.items():
        print(f"| {mode} | {r['main']:.4f} | {r.get('mtp', float('nan')):.4f} | {r['max_vio']:.3f} | {r['max_vio_per_layer']} |")


if __name__ == "__main__":
    main()
