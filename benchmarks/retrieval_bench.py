"""Retrieval benchmark: needle recall@5 at 8K-1M tokens, ingest throughput, query latency.

    .venv/bin/python benchmarks/retrieval_bench.py --sizes 8k,32k,128k --out bench-out/retrieval.json
    .venv/bin/python benchmarks/retrieval_bench.py --sizes 1m --out bench-out/retrieval-1m.json

The haystack is real English prose: docstrings of the Python standard library and the installed
packages, read as text (never imported), in a fixed order. Twenty made-up facts ("needles") are
planted at random depths (seeded); a query hits when one of its top 5 chunks holds the needle's
answer. Each size is ingested into a fresh embedded chromadb. Token counts use DeepSeek-V3's
tokenizer; chunking uses the library defaults (RetrievalConfig()).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import re
import sys
import sysconfig
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tools.retrieval import DocumentIndex, RetrievalConfig, TokenCounter  # noqa: E402
from tools.retrieval.embeddings import MiniLMEmbeddingFunction  # noqa: E402

SIZES = {"8k": 8_192, "32k": 32_768, "128k": 131_072, "1m": 1_048_576}
MODES = {"vector": ("vector", False), "bm25": ("bm25", False), "fused": ("hybrid", False), "fused+rerank": ("hybrid", True)}
NEEDLES = [  # (sentence planted, question asked, answer that must appear in a hit)
    ("The access code for the Orion storage vault is 7391-KESTREL.", "What is the access code for the Orion storage vault?", "7391-KESTREL"),
    ("Marisol Quenby was the first lighthouse keeper on Tarn Island, starting in 1887.", "Who was the first lighthouse keeper on Tarn Island?", "Marisol Quenby"),
    ("The annual rainfall at Ashgrove weather station averages 1,284 millimetres.", "How much rain falls each year at Ashgrove weather station?", "1,284 millimetres"),
    ("Our recipe for blue ginger soup uses exactly nine cardamom pods.", "How many cardamom pods go into the blue ginger soup?", "nine cardamom pods"),
    ("The Velmont bridge is painted a shade called harbour ochre.", "What colour is the Velmont bridge painted?", "harbour ochre"),
    ("Pilot whales in the Sorrel Strait migrate north every October.", "When do pilot whales in the Sorrel Strait migrate?", "every October"),
    ("The winning bid for the Halvard tapestry was 48,500 euros.", "How much was the winning bid for the Halvard tapestry?", "48,500 euros"),
    ("Dr. Ines Moravec discovered the glowing lichen on Mount Brevik.", "Who discovered the glowing lichen on Mount Brevik?", "Ines Moravec"),
    ("The maximum towing capacity of the Quillon X4 truck is 3,200 kilograms.", "What can the Quillon X4 truck tow at most?", "3,200 kilograms"),
    ("Tickets for the Pemberton jazz festival go on sale on the 14th of May.", "When do Pemberton jazz festival tickets go on sale?", "14th of May"),
    ("The mascot of the Larkfield rowing club is a copper heron.", "What is the Larkfield rowing club's mascot?", "copper heron"),
    ("Server rack 12 in the Dunmore data centre is cooled by liquid nitrogen.", "How is server rack 12 in the Dunmore data centre cooled?", "liquid nitrogen"),
    ("Grandmother Odile hid the family deed inside the grandfather clock.", "Where did grandmother Odile hide the family deed?", "grandfather clock"),
    ("The Zephyrine comet returns to the inner solar system every 212 years.", "How often does the Zephyrine comet return?", "212 years"),
    ("The password hint for the archive terminal is the name of a purple owl.", "What is the password hint for the archive terminal?", "purple owl"),
    ("Caldera Bakery sells its sourdough loaves for 6.75 dollars each.", "How much does a sourdough loaf cost at Caldera Bakery?", "6.75 dollars"),
    ("The Brightwater dam generates 740 megawatts at full capacity.", "How much power does the Brightwater dam generate?", "740 megawatts"),
    ("Captain Rowena Albright commanded the icebreaker Nordlys in 1962.", "Who commanded the icebreaker Nordlys?", "Rowena Albright"),
    ("The secret ingredient in the Fenwick chili contest winner was smoked plum.", "What was the secret ingredient of the Fenwick chili winner?", "smoked plum"),
    ("Employees at Tessaract Labs receive 31 days of paid leave per year.", "How many days of paid leave do Tessaract Labs employees get?", "31 days"),
]
_DOCSTRING = re.compile(r'"""(.{200,4000}?)"""', re.S)


def haystack_paragraphs(counter: TokenCounter, tokens_needed: int) -> list[tuple[str, int]]:
    """Prose paragraphs with their token counts, enough for `tokens_needed` tokens."""
    roots = [Path(sysconfig.get_paths()["stdlib"]), Path(sysconfig.get_paths()["purelib"])]
    paragraphs: list[tuple[str, int]] = []
    seen: set[str] = set()
    total = 0
    for root in roots:
        for path in sorted(root.rglob("*.py")):
            if "test" in path.parts or "tests" in path.parts:
                continue
            for match in _DOCSTRING.finditer(path.read_text(encoding="utf-8", errors="ignore")):
                text = " ".join(match.group(1).split())
                if text in seen or sum(ch.isalpha() for ch in text) < 0.7 * len(text):
                    continue
                seen.add(text)
                n = counter.count(text)
                paragraphs.append((text, n))
                total += n
                if total >= tokens_needed:
                    return paragraphs
    raise RuntimeError(f"not enough haystack text for {tokens_needed} tokens")


def build_document(paragraphs, size: int, needles, rng: random.Random) -> str:
    """Paragraphs up to `size` tokens with each needle inserted at a random depth."""
    chosen, total = [], 0
    for text, n in paragraphs:
        if total + n > size:
            break
        chosen.append(text)
        total += n
    for sentence, _, _ in needles:
        chosen.insert(rng.randint(0, len(chosen)), sentence)
    return "\n\n".join(chosen)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def needle_rankings(index: DocumentIndex, depth: int) -> list[dict]:
    """Per needle: the vector and BM25 rankings (chunk ids, best first, `depth` deep) and the ids
    of the chunks that hold the answer, for studying fusion without ingesting again."""
    rows = []
    for _, question, answer in NEEDLES:
        row = {"question": question, "answer_chunks": set()}
        for mode in ("vector", "bm25"):
            hits = index.search(question, k=depth, mode=mode, candidates=depth)
            row[mode] = [hit.chunk_id for hit in hits]
            row["answer_chunks"] |= {hit.chunk_id for hit in hits if answer in hit.text}
        row["answer_chunks"] = sorted(row["answer_chunks"])
        rows.append(row)
    return rows


def run_size(label, size, paragraphs, counter, embedder, workdir: Path, rng, modes: list[str], depth: int) -> dict:
    """Ingest one needle document of `size` tokens and measure recall@5 and latency per mode.

    When `workdir` already holds this size's index (same document), ingest is skipped and the
    row says `"reused": true` instead of giving ingest timings."""
    config = replace(RetrievalConfig(), persist_dir=workdir / label)
    index = DocumentIndex(config, counter, embedder)
    text = build_document(paragraphs, size, NEEDLES, rng)
    started, cpu_started, load = time.perf_counter(), time.process_time(), os.getloadavg()[0]
    result = index.ingest(label, f"haystack-{label}.txt", text.encode())
    ingest_s = time.perf_counter() - started
    ingest_cpu_s = time.process_time() - cpu_started
    print(f"[{label}] ingested {result.n_chunks} chunks in {ingest_s:.1f}s", file=sys.stderr, flush=True)
    row = {"size": label, "doc_tokens": result.n_tokens, "chunks": result.n_chunks, "reused": not result.created}
    if result.created:
        row.update(
            ingest_s=round(ingest_s, 2),
            chunks_per_s=round(result.n_chunks / ingest_s, 1),
            ingest_cpu_s=round(ingest_cpu_s, 1),  # process CPU time, all threads
            load_average_at_start=round(load, 1),
        )
    row.update({"recall@5": {}, "latency_ms": {}})
    index.search("warm up the query path", k=5)
    for name in modes:
        mode, rerank = MODES[name]
        hits, latencies, cpu = 0, [], []
        for repeat in range(1 if rerank else 3):  # the reranker is slow; one pass is enough
            for _, question, answer in NEEDLES:
                started, cpu_started = time.perf_counter(), time.process_time()
                found = index.search(question, k=5, mode=mode, rerank=rerank)
                latencies.append((time.perf_counter() - started) * 1000)
                cpu.append((time.process_time() - cpu_started) * 1000)
                if repeat == 0:
                    hits += any(answer in hit.text for hit in found)
        row["recall@5"][name] = hits / len(NEEDLES)
        print(f"[{label}] {name}: recall@5 {hits / len(NEEDLES):.2f}", file=sys.stderr, flush=True)
        row["latency_ms"][name] = {
            "p50": round(percentile(latencies, 0.5), 1),
            "p99": round(percentile(latencies, 0.99), 1),
            "cpu_p50": round(percentile(cpu, 0.5), 1),  # process CPU time per query, all threads
        }
    if depth:
        row["rankings"] = needle_rankings(index, depth)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="8k,32k,128k", help=f"comma list of {','.join(SIZES)}")
    parser.add_argument("--modes", default=",".join(MODES), help=f"comma list of {','.join(MODES)}")
    parser.add_argument("--batch-threads", type=int, default=None,
                        help="onnxruntime threads for embedding chunks at ingest (default: every core, as the app)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("bench-out/retrieval.json"))
    parser.add_argument("--workdir", type=Path, help="keep each size's chromadb here and reuse it on the next run")
    parser.add_argument("--rankings-depth", type=int, default=0,
                        help="also record each needle's vector and BM25 rankings this deep (for fusion studies)")
    args = parser.parse_args()
    labels = [s.strip().lower() for s in args.sizes.split(",")]
    unknown = [s for s in labels if s not in SIZES]
    if unknown:
        parser.error(f"unknown sizes {unknown}; choose from {list(SIZES)}")
    modes = [m.strip() for m in args.modes.split(",")]
    if any(m not in MODES for m in modes):
        parser.error(f"unknown modes in {modes}; choose from {list(MODES)}")
    counter, embedder = TokenCounter.from_file(), MiniLMEmbeddingFunction(batch_threads=args.batch_threads)
    paragraphs = haystack_paragraphs(counter, max(SIZES[s] for s in labels))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = args.workdir or Path(tmp)
        for label in labels:
            rng = random.Random(args.seed)
            row = run_size(label, SIZES[label], paragraphs, counter, embedder, workdir, rng, modes, args.rankings_depth)
            print(json.dumps({k: v for k, v in row.items() if k != "rankings"}), flush=True)
            rows.append(row)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"seed": args.seed, "batch_threads": args.batch_threads or len(os.sched_getaffinity(0)), "config": repr(RetrievalConfig()), "results": rows}, indent=2))


if __name__ == "__main__":
    main()
