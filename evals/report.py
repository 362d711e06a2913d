"""A report that sets runs side by side: a metrics table, pass@k and (for MATH-500) accuracy by
subject and by level, as HTML with embedded plots or as Markdown with PNG files beside it."""
from __future__ import annotations

import base64
import html
import io
from pathlib import Path

from evals.store import load_run

# Published DeepSeek-V3 scores (technical report, Table 3), for context beside local runs.
PUBLISHED = {"humaneval": ("DeepSeek-V3 HumanEval-Mul pass@1", 82.6), "math500": ("DeepSeek-V3 MATH-500 EM", 90.2)}


def _label(run_dir: Path, run: dict) -> str:
    summary = run["summary"] or {}
    return f"{run_dir.name} ({summary.get('model', run['run'].get('model'))}, {run['run']['benchmark']})"


def _headline(summary: dict) -> dict[str, float]:
    return {k: v for k, v in summary.get("metrics", {}).items() if isinstance(v, float)}


def _bar_chart(title: str, groups: list[str], series: dict[str, list[float]], ylabel: str) -> bytes:
    """Grouped bars: one group per x label, one bar per run."""
    from matplotlib.figure import Figure  # ~1 s to import: only when a report is written

    fig = Figure(figsize=(max(6.0, 1.1 * len(groups) * max(1, len(series)) ** 0.5), 4.0), dpi=100)
    ax = fig.add_subplot()
    width = 0.8 / max(1, len(series))
    for i, (name, values) in enumerate(series.items()):
        ax.bar([x + i * width for x in range(len(groups))], values, width, label=name)
    ax.set_xticks([x + width * (len(series) - 1) / 2 for x in range(len(groups))], groups, rotation=20, ha="right")
    ax.set_ylim(0, 1)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize="small")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def _figures(runs: list[tuple[str, dict]]) -> list[tuple[str, bytes]]:
    figures = []
    finished = [(label, run["summary"]) for label, run in runs if run["summary"]]
    keys = sorted({k for _, s in finished for k in _headline(s) if "pass@" in k}, key=lambda k: (k.startswith("base"), int(k.split("@")[1])))
    if keys:
        series = {label: [_headline(s).get(k, 0.0) for k in keys] for label, s in finished}
        figures.append(("pass@k", _bar_chart("pass@k", keys, series, "score")))
    math_runs = [(label, s) for label, s in finished if s.get("benchmark") == "math500"]
    for field, title in (("by_subject", "MATH-500 accuracy by subject"), ("by_level", "MATH-500 accuracy by level")):
        groups = sorted({g for _, s in math_runs for g in s["metrics"].get(field, {})})
        if groups:
            series = {label: [s["metrics"][field].get(g, {}).get("accuracy", 0.0) for g in groups] for label, s in math_runs}
            names = [f"level {g}" for g in groups] if field == "by_level" else groups
            figures.append((title, _bar_chart(title, names, series, "accuracy")))
    return figures


def _table(runs: list[tuple[str, dict]]) -> tuple[list[str], list[list[str]]]:
    metric_keys = sorted({k for _, r in runs if r["summary"] for k in _headline(r["summary"])})
    header = ["run", "benchmark", "mode", "temperature", "samples", "problems", "complete", *metric_keys]
    rows = []
    for label, run in runs:
        s = run["summary"] or {}
        metrics = _headline(s)
        rows.append([label, run["run"]["benchmark"], str(run["run"].get("mode")), str(run["run"].get("temperature")),
                     str(s.get("samples_per_problem", "")), str(s.get("n_problems", "")),
                     str(s.get("complete", "no summary yet")),
                     *[f"{metrics[k]:.4f}" if k in metrics else "" for k in metric_keys]])
    return header, rows


def _published_notes(runs: list[tuple[str, dict]]) -> list[str]:
    benchmarks = {run["run"]["benchmark"].replace("_plus", "") for _, run in runs}
    return [f"{name}: {score}" for bench, (name, score) in PUBLISHED.items() if bench in benchmarks]


def write_report(run_dirs: list[Path], out: Path) -> Path:
    """Write the report for `run_dirs` to `out` (.html, or .md with PNGs in `<stem>_files/`)."""
    out = Path(out)
    if out.suffix not in (".html", ".md"):
        raise ValueError(f"report must end in .html or .md, not {out.name!r}")
    runs = [(_label(Path(d), run), run) for d in run_dirs for run in [load_run(Path(d))]]
    header, rows = _table(runs)
    figures = _figures(runs)
    notes = _published_notes(runs)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".html":
        out.write_text(_html(header, rows, figures, notes), encoding="utf-8")
    else:
        out.write_text(_markdown(out, header, rows, figures, notes), encoding="utf-8")
    return out


def _html(header: list[str], rows: list[list[str]], figures: list[tuple[str, bytes]], notes: list[str]) -> str:
    cells = lambda tag, values: "".join(f"<{tag}>{html.escape(v)}</{tag}>" for v in values)  # noqa: E731
    table = f"<table><tr>{cells('th', header)}</tr>" + "".join(f"<tr>{cells('td', r)}</tr>" for r in rows) + "</table>"
    images = "".join(
        f"<h2>{html.escape(title)}</h2><img alt=\"{html.escape(title)}\" src=\"data:image/png;base64,"
        f"{base64.b64encode(png).decode()}\">" for title, png in figures
    )
    published = "".join(f"<li>{html.escape(n)}</li>" for n in notes)
    style = "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px}"
    return (f"<!doctype html><html><head><meta charset=\"utf-8\"><title>Evals report</title><style>{style}</style>"
            f"</head><body><h1>Evals report</h1>{table}"
            + (f"<h2>Published reference scores</h2><ul>{published}</ul>" if notes else "")
            + f"{images}</body></html>\n")


def _markdown(out: Path, header: list[str], rows: list[list[str]], figures: list[tuple[str, bytes]], notes: list[str]) -> str:
    escape = lambda v: v.replace("|", "\\|")  # noqa: E731
    lines = ["# Evals report", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(escape(v) for v in row) + " |" for row in rows]
    if notes:
        lines += ["", "## Published reference scores", ""] + [f"- {n}" for n in notes]
    assets = out.parent / f"{out.stem}_files"
    for i, (title, png) in enumerate(figures):
        assets.mkdir(exist_ok=True)
        name = f"figure{i + 1}.png"
        (assets / name).write_bytes(png)
        lines += ["", f"## {title}", "", f"![{title}]({assets.name}/{name})"]
    return "\n".join(lines) + "\n"
