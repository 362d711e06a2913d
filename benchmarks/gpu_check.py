"""The checks that need a GPU, as one run (benchmarks/gpu_check.sh); never a test dependency.

1. bf16 parity: our model vs transformers' DeepseekV3ForCausalLM on the device (logit error, greedy
   agreement over 32 tokens), and the engine's greedy output vs transformers.
2. Decode tokens/s at 1, 16 and 64 concurrent requests, captured step and eager.
3. MTP acceptance and speedup at one request, k = 1 and 2.
4. A 32K-token prefill (chunked) on a random checkpoint with a 40K context.
Prints one JSON line per check and writes them all to --out.

    python benchmarks/gpu_check.py --device cuda --out bench-out/gpu.json
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from model_load import CONFIG

from model_runtime import LLM, SamplingParams, load_model, load_tokenizer


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def parity(model: str, device: str) -> dict:
    from transformers import DeepseekV3ForCausalLM

    ours = load_model(model, dtype=torch.bfloat16, device=device)
    theirs = DeepseekV3ForCausalLM.from_pretrained(model, torch_dtype=torch.bfloat16).to(device).eval()
    ids = load_tokenizer(model).encode("def fibonacci(n):\n    ", add_bos=True)
    x = torch.tensor([ids], device=device)
    with torch.no_grad():
        diff = (ours(x).float() - theirs(x).logits.float()).abs().max().item()
        # an explicit mask: BOS is id 0, which generate would otherwise take for padding
        hf = theirs.generate(x, attention_mask=torch.ones_like(x), max_new_tokens=32, do_sample=False,
                             pad_token_id=0)[0, len(ids):].tolist()
    engine = LLM(model, dtype="bfloat16", device=device).generate([ids], SamplingParams(temperature=0, max_tokens=32))
    out = engine[0].outputs[0].token_ids
    agree = next((i for i, (a, b) in enumerate(zip(out, hf, strict=False)) if a != b), min(len(out), len(hf)))
    return {"max_abs_logit_diff_bf16": diff, "greedy_tokens_agreeing": agree, "of": len(hf)}


def throughput(model: str, device: str, enforce_eager: bool) -> dict:
    llm = LLM(model, dtype="bfloat16", device=device, max_num_seqs=64, enforce_eager=enforce_eager)
    tokenizer = llm.tokenizer
    result = {}
    for c in (1, 16, 64):
        batch = [tokenizer.encode(f"def f{i}(values):\n", add_bos=True) for i in range(c)]
        params = SamplingParams(temperature=0, max_tokens=128, ignore_eos=True)
        llm.generate(batch, params)  # compiles this batch's shapes
        sync(device)
        start = time.perf_counter()
        llm.generate(batch, params)
        sync(device)
        result[c] = c * 128 / (time.perf_counter() - start)
    return result


def mtp(model: str, device: str) -> dict:
    ids = [load_tokenizer(model).encode("def quicksort(values):\n", add_bos=True)]
    params = SamplingParams(temperature=0, max_tokens=128, ignore_eos=True)
    result, base = {}, None
    for k in (0, 1, 2):
        llm = LLM(model, dtype="bfloat16", device=device, speculative_tokens=k, max_num_seqs=1)
        tokens = llm.generate(ids, params)[0].outputs[0].token_ids  # compiles
        start = time.perf_counter()
        llm.generate(ids, params)
        sync(device)
        tok_s = 128 / (time.perf_counter() - start)
        stats = llm.stats()
        base = base or (tok_s, tokens)
        result[k] = {"tok_s": tok_s, "speedup": tok_s / base[0], "identical": tokens == base[1],
                     "acceptance": stats["spec_tokens_accepted"] / max(1, stats["spec_tokens_proposed"])}
    return result


def long_prefill(device: str, tokens: int = 32768) -> dict:
    from model_runtime import DeepseekV3ForCausalLM, ModelConfig
    from model_runtime.loader.save import save_checkpoint

    path = Path("bench-out/long-context")
    if not (path / "config.json").exists():
        config = ModelConfig.from_dict(dict(CONFIG, max_position_embeddings=40960, rope_scaling={
            "type": "yarn", "factor": 10.0, "original_max_position_embeddings": 4096, "beta_fast": 32, "beta_slow": 1,
            "mscale": 1.0, "mscale_all_dim": 1.0}))
        model = DeepseekV3ForCausalLM(config)
        with torch.no_grad():
            for p in model.parameters():
                p.normal_(0, 0.02) if p.dim() > 1 else p.fill_(1.0)
        save_checkpoint(model, config, path, dtype=torch.bfloat16)
    llm = LLM(str(path), dtype="bfloat16", device=device, max_model_len=tokens + 64, kv_cache_memory_bytes=4 << 30,
              max_num_batched_tokens=8192)
    prompt = [(7 * i) % 15000 + 2 for i in range(tokens)]
    sync(device)
    start = time.perf_counter()
    llm.generate([prompt], SamplingParams(temperature=0, max_tokens=1))
    sync(device)
    seconds = time.perf_counter() - start
    return {"prompt_tokens": tokens, "seconds": seconds, "prefill_tok_s": tokens / seconds}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="models/deepseek-v3-tiny")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--checks", default="parity,throughput,mtp,prefill")
    parser.add_argument("--out", default="bench-out/gpu.json")
    args = parser.parse_args()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    checks = args.checks.split(",")
    results = {}
    runs = {"parity": lambda: parity(args.model, args.device),
            "throughput": lambda: {"captured": throughput(args.model, args.device, False),
                                   "eager": throughput(args.model, args.device, True)},
            "mtp": lambda: mtp(args.model, args.device),
            "prefill": lambda: long_prefill(args.device)}
    for name in checks:
        try:
            results[name] = runs[name]()
        except Exception as exc:  # one failed check must not hide the others' figures
            results[name] = {"error": f"{type(exc).__name__}: {exc}"}
        print(json.dumps({name: results[name]}), flush=True)
        Path(args.out).write_text(json.dumps(results, indent=2))
    if args.device.startswith("cuda"):
        results["device"] = torch.cuda.get_device_name()
        Path(args.out).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
