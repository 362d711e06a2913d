"""Fusion study: recall@5 of rank-fusion variants, computed from recorded needle rankings.

    .venv/bin/python benchmarks/retrieval_bench.py --sizes 1m --modes fused --rankings-depth 200 \\
        --workdir bench-out/retrieval-index --out bench-out/retrieval-1m.json
    .venv/bin/python benchmarks/fusion_study.py bench-out/retrieval-1m.json

For every size in the file it prints where each needle's chunk sits in the vector and BM25
rankings, then recall@5 of weighted reciprocal rank fusion over a grid of the RRF constant k,
the vector list's weight (BM25's is 1) and the depth of the lists fused. No model is loaded.
"""
from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tools.retrieval.fusion import reciprocal_rank_fusion  # noqa: E402

RRF_KS = (10, 30, 60)
VECTOR_WEIGHTS = (1.0, 0.75, 0.5, 0.25)
DEPTHS = (20, 50, 100, 200)


def rank_of(ranking: list[str], wanted: set[str]) -> int | None:
    return next((n for n, chunk_id in enumerate(ranking, 1) if chunk_id in wanted), None)


def recall_at_5(rankings: list[dict], k: int, vector_weight: float, depth: int) -> float:
    hits = 0
    for row in rankings:
        fused = reciprocal_rank_fusion([row["vector"][:depth], row["bm25"][:depth]], k, (vector_weight, 1.0))
        hits += bool(set(row["answer_chunks"]) & {chunk_id for chunk_id, _ in fused[:5]})
    return hits / len(rankings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", type=Path, nargs="+", help="retrieval_bench.py output written with --rankings-depth")
    args = parser.parse_args()
    for path in args.results:
        for result in json.loads(path.read_text())["results"]:
            rankings = result.get("rankings")
            if not rankings:
                sys.exit(f"{path}: size {result['size']} has no rankings; rerun retrieval_bench.py with --rankings-depth")
            print(f"## {result['size']} ({result['chunks']} chunks)")
            for row in rankings:
                wanted = set(row["answer_chunks"])
                print(f"  vector rank {rank_of(row['vector'], wanted)!s:>4}  bm25 rank {rank_of(row['bm25'], wanted)!s:>4}  {row['question']}")
            print("  recall@5 by RRF k / vector weight / depth:")
            for k, weight, depth in itertools.product(RRF_KS, VECTOR_WEIGHTS, DEPTHS):
                print(f"  k={k:<3} w_vector={weight:<5} depth={depth:<4} {recall_at_5(rankings, k, weight, depth):.2f}")


if __name__ == "__main__":
    main()
