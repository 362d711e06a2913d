"""The captured decode step with the paged attention kernel vs gathered attention, side by side.

Two engines on the bundled model, identical but for the captured step's cache window (the kernel's
`KernelBatchView` or the reference `BatchView`), interleaved rounds in one process, one thread,
greedy, 64 new tokens per request. Prints each one's median tok/s; the outputs must be identical.

    PYTHONPATH=. HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/paged_attention_ab.py --requests 16 --rounds 5
"""
import argparse
import statistics
import time

import torch

from model_runtime import LLM, SamplingParams
from model_runtime.engine import paged_attention
from model_runtime.engine.kv_cache import BatchView, KernelBatchView


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="models/deepseek-v3-tiny")
    parser.add_argument("--requests", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    if not paged_attention.load():
        raise SystemExit("the paged attention kernel could not be built (is a C++ compiler installed?)")
    n = args.requests
    prompts = [[(7 * i + j) % 4000 + 2 for j in range(16 + i)] for i in range(n)]
    params = SamplingParams(temperature=0, max_tokens=64, ignore_eos=True)
    engines, outputs = {}, {}
    for name, view in (("kernel", KernelBatchView), ("gathered", BatchView)):
        llm = LLM(args.model, dtype="float32", max_num_seqs=n)
        llm.engine.runner.captured.view_type = view  # before its first compile
        outputs[name] = [o.outputs[0].token_ids for o in llm.generate(prompts, params)]  # compiles
        engines[name] = llm
    if outputs["kernel"] != outputs["gathered"]:
        raise SystemExit("outputs differ between the kernel and the gathered attention")
    seconds: dict[str, list[float]] = {name: [] for name in engines}
    for _ in range(args.rounds):
        for name, llm in engines.items():
            start = time.perf_counter()
            llm.generate(prompts, params)
            seconds[name].append(time.perf_counter() - start)
    for name, times in seconds.items():
        print(f"{name}: {n} requests {n * 64 / statistics.median(times):.1f} tok/s (rounds: {[round(t, 3) for t in times]})")


if __name__ == "__main__":
    main()
