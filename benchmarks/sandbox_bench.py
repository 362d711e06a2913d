"""Sandbox overhead: wall time of trivial runs, alone and from many threads.

    .venv/bin/python benchmarks/sandbox_bench.py [--runs 20] [--threads 8]

Prints JSON: median/p90 seconds for `true` and for `python -c pass` run sequentially, and the
throughput (runs/s) of `python -c pass` from a thread pool (the benchmark harness's pattern).
"""
import argparse
import json
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tools.sandbox import Sandbox  # noqa: E402


def timed(sandbox: Sandbox, argv: list[str]) -> float:
    start = time.perf_counter()
    result = sandbox.run(argv)
    assert result.ok, result.stderr
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()
    sandbox = Sandbox()
    report = {"drops_privileges": sandbox.drops_privileges}
    for name, argv in (("true", ["true"]), ("python_pass", [sys.executable, "-c", "pass"])):
        times = sorted(timed(sandbox, argv) for _ in range(args.runs))
        report[name] = {"median_s": round(statistics.median(times), 4),
                        "p90_s": round(times[int(0.9 * (len(times) - 1))], 4)}
    start = time.perf_counter()
    with ThreadPoolExecutor(args.threads) as pool:
        list(pool.map(lambda _: timed(sandbox, [sys.executable, "-c", "pass"]), range(args.runs * 2)))
    report["threaded_python_pass"] = {"threads": args.threads,
                                      "runs_per_s": round(args.runs * 2 / (time.perf_counter() - start), 2)}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
