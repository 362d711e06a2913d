"""PDF bombs: what one costs in-process (the old path) vs the bounded child process, and four at once
through a running app while /health is polled.

    python benchmarks/pdf_bomb.py [--app-url URL --key KEY]

The bomb is 7 pages of ~10 MB inflated text operators (~120 KB on disk), made by
tests/retrieval/documents.py. In-process extraction is timed on one page and scaled by 7 (the
whole file takes about a minute of CPU).
"""
from __future__ import annotations

import argparse
import io
import resource
import statistics
import sys
import threading
import time
from pathlib import Path

import httpx
from pypdf import PdfReader

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.retrieval.documents import make_pdf_bomb  # noqa: E402
from tools.retrieval import DocumentError  # noqa: E402
from tools.retrieval.parsing import parse_document  # noqa: E402


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--app-url")
    parser.add_argument("--key")
    args = parser.parse_args()
    bomb = make_pdf_bomb(7, 10 << 20)
    print(f"bomb: {len(bomb):,} bytes, 7 pages")
    start = cpu()
    PdfReader(io.BytesIO(bomb)).pages[0].extract_text()
    one_page = cpu() - start
    print(f"old path (pypdf in the app process): {one_page:.1f} CPU-s for page 1, ~{7 * one_page:.0f} CPU-s for all 7")
    walls = []
    for _ in range(5):
        t0 = time.perf_counter()
        try:
            parse_document("bomb.pdf", bomb)
        except DocumentError as exc:
            message = str(exc)
        walls.append(time.perf_counter() - t0)
    print(f"bounded path: refused in {statistics.median(walls):.2f} s (median of 5): {message}")
    if args.app_url:
        results, health = [], []

        def upload() -> None:
            t0 = time.perf_counter()
            resp = httpx.post(f"{args.app_url}/api/documents", headers={"Authorization": f"Bearer {args.key}"},
                              files={"file": ("bomb.pdf", bomb, "application/pdf")}, timeout=120)
            results.append((resp.status_code, time.perf_counter() - t0))

        threads = [threading.Thread(target=upload) for _ in range(4)]
        for t in threads:
            t.start()
        while any(t.is_alive() for t in threads):
            t0 = time.perf_counter()
            httpx.get(f"{args.app_url}/health", timeout=30)
            health.append(time.perf_counter() - t0)
        for t in threads:
            t.join()
        print(f"4 bombs at once through the app: statuses {sorted(s for s, _ in results)}, slowest answer "
              f"{max(w for _, w in results):.2f} s; /health during them: median {statistics.median(health) * 1000:.0f} ms, "
              f"max {max(health) * 1000:.0f} ms over {len(health)} polls")


if __name__ == "__main__":
    main()
