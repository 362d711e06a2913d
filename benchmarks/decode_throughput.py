"""Decode throughput side by side: our engine, transformers `generate`, and (optionally) vLLM's CPU
build serving the same checkpoint; plus MTP speculation on/off at one request.

Same checkpoint, machine, thread count and greedy decoding for every peer; each number is the
median of --repeats runs. vLLM runs in its own venv (`make bench-peers`) behind its OpenAI server.

    python benchmarks/decode_throughput.py --model models/deepseek-v3-tiny --threads 2 \
        [--vllm-python .venv-vllm/bin/python]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from model_runtime import LLM, SamplingParams, load_tokenizer

PROMPT = "def {name}(values):\n    \"\"\"Return the {what} of a list of numbers.\"\"\"\n"
WHAT = ["sum", "mean", "largest value", "smallest value", "product", "median", "sorted copy", "length"]


def prompts(tokenizer, n: int) -> list[list[int]]:
    return [tokenizer.encode(PROMPT.format(name=f"f{i}", what=WHAT[i % len(WHAT)]), add_bos=True) for i in range(n)]


def bench_ours(model: str, batch: list[list[int]], new_tokens: int, repeats: int, k: int = 0) -> tuple[float, list, dict]:
    llm = LLM(model, dtype="float32", speculative_tokens=k, max_num_seqs=64)
    params = SamplingParams(temperature=0, max_tokens=new_tokens, ignore_eos=True)
    llm.generate(batch[:1], SamplingParams(temperature=0, max_tokens=4, ignore_eos=True))  # warm up
    times, outs = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        outs = llm.generate(batch, params)
        times.append(time.perf_counter() - start)
    return len(batch) * new_tokens / statistics.median(times), [o.outputs[0].token_ids for o in outs], llm.stats()


def bench_transformers(model: str, batch: list[list[int]], new_tokens: int, repeats: int) -> dict[str, float]:
    """tok/s of `generate` two ways: all requests as one static left-padded batch (its best case:
    every request known up front), and one request after another (what a `generate`-based server
    without a batching layer does with concurrent requests)."""
    from transformers import DeepseekV3ForCausalLM

    hf = DeepseekV3ForCausalLM.from_pretrained(model, torch_dtype=torch.float32).eval()

    def padded(prompts: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        width = max(map(len, prompts))
        ids = torch.zeros(len(prompts), width, dtype=torch.long)  # [batch, width], left padding
        mask = torch.zeros(len(prompts), width, dtype=torch.long)
        for i, p in enumerate(prompts):
            ids[i, width - len(p):] = torch.tensor(p)
            mask[i, width - len(p):] = 1
        return ids, mask

    def run(prompts: list[list[int]]) -> None:
        ids, mask = padded(prompts)
        hf.generate(ids, attention_mask=mask, max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                    do_sample=False, pad_token_id=0)

    result = {}
    with torch.no_grad():
        warm_ids, warm_mask = padded(batch[:1])
        hf.generate(warm_ids, attention_mask=warm_mask, max_new_tokens=4, do_sample=False, pad_token_id=0)
        for name, once in (("batched", lambda: run(batch)), ("sequential", lambda: [run([p]) for p in batch])):
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                once()
                times.append(time.perf_counter() - start)
            result[name] = len(batch) * new_tokens / statistics.median(times)
    return result


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _vllm_round(base_url: str, batch: list[list[int]], new_tokens: int) -> float:
    from openai import AsyncOpenAI

    async with AsyncOpenAI(base_url=base_url, api_key="EMPTY") as client:  # closed inside this event loop
        start = time.perf_counter()
        await asyncio.gather(*(client.completions.create(model="m", prompt=p, max_tokens=new_tokens, temperature=0,
                                                          extra_body={"ignore_eos": True}) for p in batch))
        return time.perf_counter() - start


def bench_vllm(python: str, model: str, batches: dict[int, list[list[int]]], new_tokens: int, repeats: int, threads: int) -> dict[int, float]:
    port = free_port()
    env = dict(os.environ, VLLM_CPU_KVCACHE_SPACE="1", VLLM_CPU_OMP_THREADS_BIND=f"0-{threads - 1}", OMP_NUM_THREADS=str(threads))
    log = open(Path("bench-out") / "vllm.log", "w")
    server = subprocess.Popen([python, "-m", "vllm.entrypoints.openai.api_server", "--model", model, "--served-model-name", "m",
                               "--dtype", "float32", "--port", str(port), "--max-model-len", "2048", "--enforce-eager"],
                              stdout=log, stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}/v1"
    try:
        import httpx

        for _ in range(600):
            if server.poll() is not None:
                raise RuntimeError("vLLM exited; see bench-out/vllm.log")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(1)
        result = {}
        for c, batch in batches.items():
            asyncio.run(_vllm_round(base, batch[:1], 4))
            times = [asyncio.run(_vllm_round(base, batch, new_tokens)) for _ in range(repeats)]
            result[c] = c * new_tokens / statistics.median(times)
        return result
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="models/deepseek-v3-tiny")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--concurrency", default="1,4,16")
    parser.add_argument("--vllm-python", default=None)
    parser.add_argument("--out", default="bench-out/decode.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    Path("bench-out").mkdir(exist_ok=True)
    tokenizer = load_tokenizer(args.model)
    levels = [int(c) for c in args.concurrency.split(",")]
    batches = {c: prompts(tokenizer, c) for c in levels}
    rows = {}
    for c in levels:
        ours, _, _ = bench_ours(args.model, batches[c], args.new_tokens, args.repeats)
        theirs = bench_transformers(args.model, batches[c], args.new_tokens, args.repeats)
        rows[c] = {"ours": ours, "transformers": theirs["batched"], "transformers_sequential": theirs["sequential"]}
    if args.vllm_python:
        for c, tps in bench_vllm(args.vllm_python, args.model, batches, args.new_tokens, args.repeats, args.threads).items():
            rows[c]["vllm_cpu"] = tps
    print(f"threads={args.threads}, {args.new_tokens} new tokens per request, greedy, median of {args.repeats}\n")
    print("| concurrent requests | this engine tok/s | transformers batched tok/s | ratio "
          "| transformers one by one tok/s | ratio | vLLM CPU tok/s | ratio |")
    print("|---|---|---|---|---|---|---|---|")
    for c, r in rows.items():
        v = r.get("vllm_cpu")
        vtxt = f"{v:.1f} | {r['ours'] / v:.2f}x" if v else "not run | -"
        seq = r["transformers_sequential"]
        print(f"| {c} | {r['ours']:.1f} | {r['transformers']:.1f} | {r['ours'] / r['transformers']:.2f}x "
              f"| {seq:.1f} | {r['ours'] / seq:.2f}x | {vtxt} |")
    # MTP speculation on vs off at one request
    one = prompts(tokenizer, 1)
    spec = {}
    for k in (0, 1, 2):
        tps, tokens, stats = bench_ours(args.model, one, 128, args.repeats, k=k)
        spec[k] = {"tok_s": tps, "tokens": tokens, "proposed": stats["spec_tokens_proposed"], "accepted": stats["spec_tokens_accepted"]}
    print("\n| MTP drafts k | tok/s (1 request) | speedup | acceptance | greedy output identical to k=0 |")
    print("|---|---|---|---|---|")
    for k, s in spec.items():
        acc = s["accepted"] / s["proposed"] if s["proposed"] else float("nan")
        print(f"| {k} | {s['tok_s']:.1f} | {s['tok_s'] / spec[0]['tok_s']:.2f}x | {acc:.3f} | {s['tokens'] == spec[0]['tokens']} |")
    Path(args.out).write_text(json.dumps({"throughput": rows, "speculation": {k: {kk: vv for kk, vv in s.items() if kk != "tokens"} for k, s in spec.items()}}, indent=2))


if __name__ == "__main__":
    sys.exit(main())
