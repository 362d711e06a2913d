"""vLLM's CPU build as a decode-throughput peer: its OpenAI server in its own venv, timed from here."""
from __future__ import annotations

import asyncio
import os
import socket
import statistics
import subprocess
import time
from pathlib import Path


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


