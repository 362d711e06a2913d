"""Decode throughput side by side, in one process and interleaved: the engine's captured decode step,
its eager path, and transformers `generate` (one static left-padded batch, and one request after
another); the overhead ratio of a step; a matmul-bound model against the memory bandwidth; MTP
speculation with the captured step; sampled requests (captured sampling step vs eager); compile
time per shape; first-request latency after `serve`.

Same checkpoint, thread count and greedy decoding for every peer; every figure is the median of
--repeats rounds, each round running every peer once (interleaved, so load drifts hit all alike).
vLLM (optional) runs in its own venv (`make bench-peers`) behind its OpenAI server.

    python benchmarks/decode_throughput.py --model models/deepseek-v3-tiny --threads 1 \\
        [--vllm-python .venv-vllm/bin/python]
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
import torch
from model_load import random_checkpoint
from peers import bench_vllm, free_port

from model_runtime import LLM, SamplingParams, load_tokenizer
from model_runtime.server.cli import compile_cache

PROMPT = "def {name}(values):\n    \"\"\"Return the {what} of a list of numbers.\"\"\"\n"
WHAT = ["sum", "mean", "largest value", "smallest value", "product", "median", "sorted copy", "length"]


def prompts(tokenizer, n: int) -> list[list[int]]:
    return [tokenizer.encode(PROMPT.format(name=f"f{i}", what=WHAT[i % len(WHAT)]), add_bos=True) for i in range(n)]


def greedy(n: int) -> SamplingParams:
    return SamplingParams(temperature=0, max_tokens=n, ignore_eos=True)


def sampled(n: int) -> SamplingParams:
    return SamplingParams(temperature=0.8, top_k=50, top_p=0.95, seed=1, max_tokens=n, ignore_eos=True)


def sampled_defaults(n: int) -> SamplingParams:
    """OpenAI's defaults: temperature 1, no top-k or top-p."""
    return SamplingParams(temperature=1.0, seed=1, max_tokens=n, ignore_eos=True)


def run_engine(llm: LLM, batch: list[list[int]], new_tokens: int, params=greedy) -> tuple[float, list[list[int]]]:
    start = time.perf_counter()
    outs = llm.generate(batch, params(new_tokens))
    return time.perf_counter() - start, [o.outputs[0].token_ids for o in outs]


class Transformers:
    """`generate` two ways: all requests as one static left-padded batch (its best case: every request
    known up front), and one request after another (a `generate` server without a batching layer)."""

    def __init__(self, model: str):
        from transformers import DeepseekV3ForCausalLM

        self.model = DeepseekV3ForCausalLM.from_pretrained(model, torch_dtype=torch.float32).eval()

    @torch.no_grad()
    def generate(self, batch: list[list[int]], new_tokens: int) -> tuple[float, list[list[int]]]:
        width = max(map(len, batch))
        ids = torch.zeros(len(batch), width, dtype=torch.long)  # [batch, width], left padding
        mask = torch.zeros(len(batch), width, dtype=torch.long)
        for i, p in enumerate(batch):
            ids[i, width - len(p):] = torch.tensor(p)
            mask[i, width - len(p):] = 1
        start = time.perf_counter()
        out = self.model.generate(ids, attention_mask=mask, max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                                  do_sample=False, pad_token_id=0)
        return time.perf_counter() - start, out[:, width:].tolist()

    def one_by_one(self, batch: list[list[int]], new_tokens: int) -> tuple[float, list[list[int]]]:
        runs = [self.generate([p], new_tokens) for p in batch]
        return sum(t for t, _ in runs), [r[0] for _, r in runs]


def interleaved(peers: dict, repeats: int) -> dict[str, dict]:
    """peers: name -> (callable returning (seconds, token ids), tokens generated). Median tok/s each."""
    times: dict[str, list[float]] = {name: [] for name in peers}
    outputs = {}
    for _ in range(repeats):
        for name, (run, _) in peers.items():
            seconds, outputs[name] = run()
            times[name].append(seconds)
    return {name: {"tok_s": tokens / statistics.median(times[name]), "tokens": outputs[name]}
            for name, (_, tokens) in peers.items()}


def decode_steps(llm: LLM, batch: list[list[int]], steps: int) -> tuple[float, float]:
    """Median wall time of a decode step with every row decoding, and the profiler's kernel time of
    one: self CPU time of the aten ops plus that of the compiled graphs' calls (Inductor's fused C++
    kernels, which the profiler does not break down; the Dynamo wrapper around them is not counted).
    Both in ms."""
    from torch.profiler import ProfilerActivity, profile

    engine = llm.engine
    for i, p in enumerate(batch):
        engine.add_request(f"profile-{i}", p, greedy(3 * steps + 4))
    while engine.scheduler.waiting or any(s.is_prefilling or not s.output_ids for s in engine.scheduler.running):
        engine.step()
    walls = []
    for _ in range(steps):
        start = time.perf_counter()
        engine.step()
        walls.append(time.perf_counter() - start)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            engine.step()
    kernel_us = sum(e.self_cpu_time_total for e in prof.key_averages()
                    if e.key.startswith(("aten::", "## Call CompiledFxGraph")))
    while engine.has_unfinished_requests():
        engine.step()
    return statistics.median(walls) * 1e3, kernel_us / steps / 1e3


def memory_bandwidth_gbs(threads: int) -> float:
    """Read bandwidth of this process's threads: summing a 1 GiB float32 tensor, best of 5."""
    x = torch.ones(1 << 28)
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        x.sum()
        best = min(best, time.perf_counter() - start)
    return x.numel() * 4 / best / 1e9


def weight_bytes_per_step(llm: LLM, rows: int) -> int:
    """Weights a decode step reads: all but the embedding table and the MTP layer, counting of each
    MoE layer's routed experts only as many as `rows` tokens can pick (top_k each, at most all)."""
    model, config = llm.engine.model, llm.engine.model_config
    main = set(model.model.layers[: config.num_hidden_layers].parameters()) | set(model.model.norm.parameters())
    main |= set(model.lm_head.parameters())
    total = 0
    for name, p in model.named_parameters():
        if p not in main:
            continue
        if ".experts." in name:
            total += p.numel() * p.element_size() * min(rows * config.num_experts_per_tok, config.n_routed_experts) \
                // config.n_routed_experts
        else:
            total += p.numel() * p.element_size()
    return total


def serve_first_request(model: str, threads: int, *flags: str) -> dict[str, float]:
    """Start `serve`, wait for /health, time the first completion (16 tokens)."""
    port = free_port()
    start = time.perf_counter()
    server = subprocess.Popen([sys.executable, "-m", "model_runtime", "serve", "--model", model, "--port", str(port),
                               "--dtype", "float32", "--num-threads", str(threads), "--log-level", "warning", *flags],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        ready = time.perf_counter() - start
        start = time.perf_counter()
        httpx.post(f"http://127.0.0.1:{port}/v1/completions", timeout=600,
                   json={"model": Path(model).name, "prompt": "def add(a, b):", "max_tokens": 16, "temperature": 0})
        return {"ready_s": ready, "first_request_s": time.perf_counter() - start}
    finally:
        server.terminate()
        server.wait(timeout=30)


def bench_bundled(model: str, batches: dict, n: int, repeats: int) -> tuple[dict, dict, LLM]:
    """Captured vs eager vs transformers at 1, 4 and 16 requests, overhead ratios; compile time per shape."""
    captured = LLM(model, dtype="float32", max_num_seqs=16)
    eager = LLM(model, dtype="float32", max_num_seqs=16, enforce_eager=True)
    hf = Transformers(model)
    for c in sorted(batches):
        run_engine(captured, batches[c], n)  # compiles this batch bucket's context buckets
    compile_s = {str(k): v for k, v in captured.engine.runner.captured.compile_seconds.items()}
    result = {}
    for c in sorted(batches):
        b = batches[c]
        peers = {"captured": (lambda b=b: run_engine(captured, b, n), c * n),
                 "eager": (lambda b=b: run_engine(eager, b, n), c * n),
                 "transformers_batched": (lambda b=b: hf.generate(b, n), c * n),
                 "transformers_one_by_one": (lambda b=b: hf.one_by_one(b, n), c * n)}
        rows = interleaved(peers, repeats)
        tokens = {name: r.pop("tokens") for name, r in rows.items()}
        rows["identical"] = {"captured_eager": tokens["captured"] == tokens["eager"],
                             "captured_transformers_one_by_one": tokens["captured"] == tokens["transformers_one_by_one"]}
        for name, llm in (("captured", captured), ("eager", eager)):
            step_ms, kernel_ms = decode_steps(llm, b, 16)
            rows[name].update(step_ms=step_ms, kernel_ms=kernel_ms, overhead=step_ms / kernel_ms)
        result[c] = rows
        print(json.dumps({c: rows}), flush=True)
    return result, compile_s, captured


def bench_mtp(model: str, captured: LLM, one: list[list[int]], n: int, repeats: int) -> dict:
    """MTP k = 1, 2 with the captured step against k = 0, one request."""
    spec = {0: captured}
    spec.update({k: LLM(model, dtype="float32", speculative_tokens=k, max_num_seqs=1)
                 for k in (1, 2)})
    for llm in spec.values():
        run_engine(llm, one, n)
    rows = interleaved({k: (lambda llm=llm: run_engine(llm, one, n), n) for k, llm in spec.items()}, repeats)
    result = {}
    for k, r in rows.items():
        stats = spec[k].stats()
        result[k] = {"tok_s": r["tok_s"], "speedup": r["tok_s"] / rows[0]["tok_s"],
                     "identical": r["tokens"] == rows[0]["tokens"],
                     "acceptance": stats["spec_tokens_accepted"] / max(1, stats["spec_tokens_proposed"])}
    print(json.dumps({"mtp": result}), flush=True)
    return result


def bench_sampled(model: str, captured: LLM, batches: dict, n: int, repeats: int) -> dict:
    """Sampled requests, seeded: top-k 50 + top-p 0.95 at temperature 0.8, and OpenAI's defaults
    (temperature 1 alone); the captured sampling step vs the eager path at 1 and 16 requests. The
    same seeds must give the same tokens."""
    eager = LLM(model, dtype="float32", max_num_seqs=16, enforce_eager=True)
    result = {}
    for name, params in (("top_k_top_p", sampled), ("temperature_only", sampled_defaults)):
        for c in (1, 16):
            b = batches[c]
            run_engine(captured, b, n, params)  # compiles the sampling step's shapes
            rows = interleaved({"captured": (lambda b=b, p=params: run_engine(captured, b, n, p), c * n),
                                "eager": (lambda b=b, p=params: run_engine(eager, b, n, p), c * n)}, repeats)
            result[f"{name}_{c}"] = {"captured_tok_s": rows["captured"]["tok_s"], "eager_tok_s": rows["eager"]["tok_s"],
                                     "speedup": rows["captured"]["tok_s"] / rows["eager"]["tok_s"],
                                     "identical": rows["captured"]["tokens"] == rows["eager"]["tokens"]}
    print(json.dumps({"sampled": result}), flush=True)
    return result


def bench_matmul_bound(threads: int, n: int, repeats: int) -> dict:
    """The 162M random checkpoint of benchmarks/model_load.py: tok/s vs transformers, bytes per step."""
    big = str(random_checkpoint(Path("bench-out/load/checkpoint")))
    ours = LLM(big, dtype="float32", max_num_seqs=16)
    hf = Transformers(big)
    bandwidth = memory_bandwidth_gbs(threads)
    result: dict = {"memory_bandwidth_gbs": bandwidth}
    for c in (1, 16):
        b = [list(range(100 + 7 * i, 120 + 7 * i)) for i in range(c)]
        run_engine(ours, b, n)
        rows = interleaved({"captured": (lambda b=b: run_engine(ours, b, n), c * n),
                            "transformers_batched": (lambda b=b: hf.generate(b, n), c * n)}, repeats)
        step_ms, kernel_ms = decode_steps(ours, b, 8)
        read = weight_bytes_per_step(ours, c)
        result[c] = {"captured_tok_s": rows["captured"]["tok_s"], "transformers_tok_s": rows["transformers_batched"]["tok_s"],
                     "identical": rows["captured"]["tokens"] == rows["transformers_batched"]["tokens"],
                     "step_ms": step_ms, "kernel_ms": kernel_ms, "weight_bytes_per_step": read,
                     "bandwidth_fraction": read / (step_ms / 1e3) / (bandwidth * 1e9)}
        print(json.dumps({"matmul_bound": {c: result[c]}}), flush=True)
    return result


def bench_serve(model: str, threads: int, cache: str) -> dict:
    """First-request latency after `serve` starts: compiling at first use with an empty Inductor
    cache, then with the cache that run left, and eager."""
    fresh = Path(cache + "-serve").resolve()
    shutil.rmtree(fresh, ignore_errors=True)
    result = {
        "captured_cold_cache": serve_first_request(model, threads, "--compile-cache-dir", str(fresh)),
        "captured_warm_cache": serve_first_request(model, threads, "--compile-cache-dir", str(fresh)),
        "eager": serve_first_request(model, threads, "--enforce-eager"),
    }
    print(json.dumps({"serve": result}), flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="models/deepseek-v3-tiny")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--parts", default="bundled,mtp,sampled,matmul,serve")
    parser.add_argument("--vllm-python", default=None)
    parser.add_argument("--compile-cache-dir", default="bench-out/inductor")
    parser.add_argument("--out", default="bench-out/decode.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    Path("bench-out").mkdir(exist_ok=True)
    cache = str(Path(args.compile_cache_dir).resolve())
    with compile_cache(cache):  # Inductor's on-disk cache for the in-process engines, as `serve` sets it
        run(args, cache)


def run(args: argparse.Namespace, cache: str) -> None:
    parts = args.parts.split(",")
    tokenizer = load_tokenizer(args.model)
    batches = {c: prompts(tokenizer, c) for c in (1, 4, 16)}
    n = args.new_tokens
    result: dict = {"threads": args.threads, "new_tokens": n, "repeats": args.repeats}
    captured = None
    if "bundled" in parts:
        result["bundled"], result["compile_s"], captured = bench_bundled(args.model, batches, n, args.repeats)
    if "mtp" in parts or "sampled" in parts:
        captured = captured or LLM(args.model, dtype="float32", max_num_seqs=16)
        if "mtp" in parts:
            result["mtp"] = bench_mtp(args.model, captured, batches[1], 2 * n, args.repeats)
        if "sampled" in parts:
            result["sampled"] = bench_sampled(args.model, captured, batches, n, args.repeats)
    del captured
    if args.vllm_python:
        result["vllm_cpu"] = bench_vllm(args.vllm_python, args.model, batches, n, args.repeats, args.threads)
    if "matmul" in parts:
        result["matmul_bound"] = bench_matmul_bound(args.threads, n // 2, args.repeats)
    if "serve" in parts:
        result["serve"] = bench_serve(args.model, args.threads, cache)
    Path(args.out).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    sys.exit(main())
