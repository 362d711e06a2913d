"""Run schemathesis (the maintained OpenAPI fuzzer) against a live server and read its JSON report.

Every phase runs (coverage of each parameter's edge values, random fuzzing, stateful sequences
that follow inferred links) with the one check that matters here: no response is a 5xx.
FUZZ_MAX_EXAMPLES (default 5 in the suite; `make fuzz` uses 100) sets the cases per operation.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")


def run_schemathesis(schema_url: str, report_dir: Path, *, headers: dict[str, str] | None = None,
                     seed: int = 1, extra: tuple[str, ...] = ()) -> dict:
    """The run's JSON report (schemathesis' `--report json`), after a bounded, seeded run."""
    max_examples = int(os.environ.get("FUZZ_MAX_EXAMPLES", "5"))
    command = [str(SCHEMATHESIS), "run", schema_url, "--checks", "not_a_server_error",
               "--max-examples", str(max_examples), "--seed", str(seed), "--workers", "1", "--no-color",
               "--request-timeout", "60", "--generation-database", "none", "--report", "json", "--report-dir", str(report_dir), *extra]
    for name, value in (headers or {}).items():
        command += ["-H", f"{name}: {value}"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=900, check=False)
    reports = sorted(report_dir.glob("*.json"))
    if not reports:
        raise AssertionError(f"schemathesis wrote no report (exit {done.returncode}):\n{done.stdout[-4000:]}"
                             f"\n{done.stderr[-2000:]}")
    report = json.loads(reports[-1].read_text())
    report["output"] = done.stdout[-8000:]
    return report


def summary(report: dict) -> str:
    """One line for test output and docs: operations, cases, failures."""
    cases = report["test_cases"]
    return (f"{report['operations']['tested']} operations, {cases['generated']} cases, "
            f"{cases['with_failures']} with failures, {len(report['errors'])} errors")
