"""A report that sets runs side by side, as HTML (plots embedded) or Markdown (PNGs beside it).

Sections: the runs (scores in percent with the published DeepSeek-V3 score of the same metric,
in the same unit, and the timings), charts with every bar labelled (pass@k, MATH-500 by subject
and level), the comparison of each run with the first run of the same benchmark (score deltas
in points, the problems that got better or worse), and a per-problem drill-down of every sample
(completion, the program that ran, the first failing test and the error, or the extracted
answer; generation and test times).
"""
from __future__ import annotations

import base64
import html
from dataclasses import dataclass
from pathlib import Path

from evals.datasets import load_problems
from evals.report_figures import bar_chart
from evals.store import load_run

# DeepSeek-V3 technical report (arXiv 2412.19437): Table 6 (chat model) and Table 3 (base model),
# in percent. (benchmark, mode) -> (what was measured, metric it matches here, score).
PUBLISHED = {
    ("humaneval", "chat"): ("DeepSeek-V3 chat, HumanEval-Mul pass@1 (multilingual HumanEval)", "pass@1", 82.6),
    ("math500", "chat"): ("DeepSeek-V3 chat, MATH-500 EM", "accuracy", 90.2),
    ("humaneval", "completion"): ("DeepSeek-V3 base, HumanEval pass@1 (0-shot)", "pass@1", 65.2),
    ("math500", "completion"): ("DeepSeek-V3 base, MATH EM (4-shot, full MATH test set)", "accuracy", 61.6),
}
MAX_TEXT = 6000  # characters of a completion or program shown in the drill-down


@dataclass(frozen=True)
class Block:
    """One piece of the report: kind "h2" | "p" | "table" | "figure" | "details"."""

    kind: str
    title: str = ""
    header: tuple = ()
    rows: tuple = ()
    png: bytes = b""


@dataclass(frozen=True)
class Run:
    label: str
    benchmark: str
    mode: str
    summary: dict
    samples: list


def _pct(value: float | None) -> str:
    return "" if value is None else f"{100 * value:.1f}%"


def _published(run: Run) -> tuple[str, str, float] | None:
    return PUBLISHED.get((run.benchmark.replace("_plus", ""), run.mode)) if run.benchmark != "humaneval_plus" else None


def _headline(summary: dict) -> dict[str, float]:
    return {k: v for k, v in summary.get("metrics", {}).items() if isinstance(v, float)}


def _runs_table(runs: list[Run]) -> Block:
    keys = sorted({k for r in runs for k in _headline(r.summary)})
    header = ("run", "benchmark", "mode", "temperature", "samples", "problems", "complete", *keys,
              "published DeepSeek-V3", "elapsed", "tokens/s", "median generation")
    rows = []
    for run in runs:
        s, metrics, timings = run.summary, _headline(run.summary), run.summary.get("timings", {})
        published = _published(run)
        rows.append((run.label, run.benchmark, run.mode, str(s.get("temperature", "")),
                     str(s.get("samples_per_problem", "")), str(s.get("n_problems", "")),
                     str(s.get("complete", "no summary yet")), *[_pct(metrics.get(k)) for k in keys],
                     f"{published[2]:.1f}% {published[1]} ({published[0]})" if published else "none published",
                     f"{s.get('elapsed_s', 0):.1f} s", str(timings.get("session_tokens_per_s") or ""),
                     f"{timings['generation_s_median']:.2f} s" if timings.get("generation_s_median") is not None else ""))
    return Block("table", "Runs", header, tuple(rows))


def _figures(runs: list[Run]) -> list[Block]:
    blocks = []
    headline = {"this run": [], "published DeepSeek-V3": []}
    for run in runs:
        published = _published(run)
        metric = published[1] if published else "pass@1" if "pass@1" in _headline(run.summary) else "accuracy"
        headline["this run"].append(100 * _headline(run.summary).get(metric, 0.0))
        headline["published DeepSeek-V3"].append(published[2] if published else None)
    blocks.append(Block("figure", "Score (pass@1 or accuracy) beside the published DeepSeek-V3 score",
                        png=bar_chart("Score, %", [r.label for r in runs], headline)))
    keys = sorted({k for r in runs for k in _headline(r.summary) if "pass@" in k},
                  key=lambda k: (k.startswith("base"), int(k.split("@")[1])))
    if keys:
        series = {r.label: [100 * _headline(r.summary).get(k, 0.0) for k in keys] for r in runs}
        blocks.append(Block("figure", "pass@k", png=bar_chart("pass@k, %", keys, series)))
    math_runs = [r for r in runs if r.benchmark == "math500"]
    for field, title in (("by_subject", "MATH-500 accuracy by subject"), ("by_level", "MATH-500 accuracy by level")):
        groups = sorted({g for r in math_runs for g in r.summary["metrics"].get(field, {})})
        if groups:
            series = {r.label: [100 * r.summary["metrics"][field].get(g, {}).get("accuracy", 0.0) for g in groups]
                      for r in math_runs}
            names = [f"level {g}" for g in groups] if field == "by_level" else groups
            blocks.append(Block("figure", title, png=bar_chart(f"{title}, %", names, series)))
    return blocks


def _pass_rates(run: Run) -> dict[str, float]:
    by_problem: dict[str, list[bool]] = {}
    for sample in run.samples:
        by_problem.setdefault(sample["problem_id"], []).append(bool(sample["passed"]))
    return {pid: sum(v) / len(v) for pid, v in by_problem.items()}


def _comparisons(runs: list[Run]) -> list[Block]:
    blocks = []
    for i, first in enumerate(runs):
        for other in runs[i + 1:]:
            if other.benchmark != first.benchmark or any(r.benchmark == first.benchmark for r in runs[:i]):
                continue
            a, b = _headline(first.summary), _headline(other.summary)
            deltas = [(k, _pct(a.get(k)), _pct(b.get(k)), f"{100 * (b[k] - a[k]):+.1f} points" if k in a and k in b
                       else "") for k in sorted(set(a) | set(b))]
            blocks.append(Block("table", f"Comparison: {first.label} -> {other.label}",
                                ("metric", first.label, other.label, "change"), tuple(deltas)))
            before, after = _pass_rates(first), _pass_rates(other)
            changed = [(pid, _pct(before.get(pid)), _pct(after.get(pid)),
                        "better" if after.get(pid, 0) > before.get(pid, 0) else "worse")
                       for pid in sorted(set(before) | set(after)) if before.get(pid) != after.get(pid)]
            blocks.append(Block("table", f"Problems whose pass rate changed ({len(changed)})",
                                ("problem", first.label, other.label, ""), tuple(changed)))
    return blocks


def _failing_test(sample: dict, problem) -> str:
    tests = sample.get("tests") or ""
    first = next((i for i, t in enumerate(tests) if t in "FT"), None)
    if first is None:
        return "none" if tests else ""
    kind = "time limit" if tests[first] == "T" else "failed"
    if problem is not None and (problem.base_inputs or problem.plus_inputs):
        inputs = problem.base_inputs + problem.plus_inputs
        shown = repr(inputs[first]) if first < len(inputs) else "?"
        return f"test #{first} of {len(tests)} ({kind}): input {shown[:300]}"
    return f"test #{first} of {len(tests)} ({kind}): check(candidate)"


def _drill_down(run: Run) -> list[Block]:
    problems = {}
    if run.benchmark != "math500":
        problems = {p.problem_id: p for p in load_problems(run.benchmark)}
    rows, details = [], []
    for pid, rate in _pass_rates(run).items():
        samples = [s for s in run.samples if s["problem_id"] == pid]
        rows.append((pid, f"{sum(s['passed'] for s in samples)}/{len(samples)}", _pct(rate)))
        for s in sorted(samples, key=lambda s: s["sample_index"]):
            fields = [("verdict", s.get("verdict", "pass" if s["passed"] else "fail")),
                      ("generation", f"{s['generation_s']} s, {s.get('completion_tokens', '?')} tokens"
                       if "generation_s" in s else "")]
            if run.benchmark == "math500":
                fields += [("extracted answer", str(s.get("extracted"))), ("reference", str(s.get("reference")))]
            else:
                fields += [("failing test", _failing_test(s, problems.get(pid))), ("error", s.get("error") or ""),
                           ("tests", f"{s.get('n_passed')}/{s.get('n_tests')} passed in {s.get('duration_s')} s")]
            fields.append(("completion", s.get("completion", "")[:MAX_TEXT]))
            if "program" in s:
                fields.append(("program", s["program"][:MAX_TEXT]))
            details.append(Block("details", f"{pid} sample {s['sample_index']}: {fields[0][1]}",
                                 rows=tuple((k, v) for k, v in fields if v)))
    return [Block("h2", f"Problems of {run.label}"),
            Block("table", "", ("problem", "passed", "rate"), tuple(rows)), *details]


def build_report(run_dirs: list[Path]) -> list[Block]:
    runs = []
    for d in run_dirs:
        loaded = load_run(Path(d))
        summary = loaded["summary"] or {}
        runs.append(Run(f"{Path(d).name} ({summary.get('model', loaded['run'].get('model'))})",
                        loaded["run"]["benchmark"], loaded["run"].get("mode", "chat"), summary, loaded["samples"]))
    notes = [f"{name}: {score:.1f}% ({metric})" for (bench, mode), (name, metric, score) in PUBLISHED.items()
             if any(r.benchmark.replace("_plus", "") == bench and r.mode == mode for r in runs)]
    blocks = [_runs_table(runs)]
    if notes:
        blocks += [Block("h2", "Published reference scores")] + [Block("p", n) for n in notes]
    blocks += _figures(runs) + _comparisons(runs)
    for run in runs:
        blocks += _drill_down(run)
    return blocks


def write_report(run_dirs: list[Path], out: Path) -> Path:
    """Write the report for `run_dirs` to `out` (.html, or .md with PNGs in `<stem>_files/`)."""
    out = Path(out)
    if out.suffix not in (".html", ".md"):
        raise ValueError(f"report must end in .html or .md, not {out.name!r}")
    blocks = build_report(run_dirs)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(_html(blocks) if out.suffix == ".html" else _markdown(out, blocks), encoding="utf-8")
    return out


def _html(blocks: list[Block]) -> str:
    e = html.escape
    parts = []
    for b in blocks:
        if b.kind == "h2" or (b.kind == "table" and b.title):
            parts.append(f"<h2>{e(b.title)}</h2>")
        if b.kind == "p":
            parts.append(f"<p>{e(b.title)}</p>")
        elif b.kind == "table":
            head = "".join(f"<th>{e(h)}</th>" for h in b.header)
            body = "".join("<tr>" + "".join(f"<td>{e(str(c))}</td>" for c in row) + "</tr>" for row in b.rows)
            parts.append(f"<table><tr>{head}</tr>{body}</table>")
        elif b.kind == "figure":
            parts.append(f"<h2>{e(b.title)}</h2><img alt=\"{e(b.title)}\" src=\"data:image/png;base64,"
                         f"{base64.b64encode(b.png).decode()}\">")
        elif b.kind == "details":
            fields = "".join(f"<dt>{e(k)}</dt><dd><pre>{e(v)}</pre></dd>" for k, v in b.rows)
            parts.append(f"<details><summary>{e(b.title)}</summary><dl>{fields}</dl></details>")
    style = ("body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:4px 8px}pre{white-space:pre-wrap;background:#f6f6f6;padding:4px}")
    return (f"<!doctype html><html><head><meta charset=\"utf-8\"><title>Evals report</title><style>{style}</style>"
            f"</head><body><h1>Evals report</h1>{''.join(parts)}</body></html>\n")


def _markdown(out: Path, blocks: list[Block]) -> str:
    cell = lambda v: str(v).replace("|", "\\|").replace("\n", " ")  # noqa: E731
    lines = ["# Evals report"]
    assets = out.parent / f"{out.stem}_files"
    figures = 0
    for b in blocks:
        if b.kind == "h2" or (b.kind == "table" and b.title):
            lines += ["", f"## {b.title}"]
        if b.kind == "p":
            lines += ["", f"- {b.title}"]
        elif b.kind == "table":
            lines += ["", "| " + " | ".join(b.header) + " |", "|" + "---|" * len(b.header)]
            lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in b.rows]
        elif b.kind == "figure":
            assets.mkdir(exist_ok=True)
            figures += 1
            (assets / f"figure{figures}.png").write_bytes(b.png)
            lines += ["", f"## {b.title}", "", f"![{b.title}]({assets.name}/figure{figures}.png)"]
        elif b.kind == "details":
            lines += ["", f"<details><summary>{html.escape(b.title)}</summary>", ""]
            for k, v in b.rows:
                lines += [f"**{k}**", "", "```", v.replace("```", "ʼʼʼ"), "```", ""]
            lines += ["</details>"]
    return "\n".join(lines) + "\n"
