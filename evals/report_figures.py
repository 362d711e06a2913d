"""Bar charts of a report, as PNG bytes: every bar is labelled with its value, also at 0 %."""
from __future__ import annotations

import io

PUBLISHED_COLOUR = "#999999"


def bar_chart(title: str, groups: list[str], series: dict[str, list[float | None]], ylabel: str = "%") -> bytes:
    """Grouped bars in percent (0-100): one group per x label, one bar per series. A None value
    (no such figure) draws no bar; a 0 draws a flat bar labelled "0.0"."""
    from matplotlib.figure import Figure  # ~1 s to import: only when a report is written

    width = 0.8 / max(1, len(series))
    fig = Figure(figsize=(max(6.0, 0.9 * len(groups) * max(1, len(series)) ** 0.5 + 2), 4.2), dpi=100)
    ax = fig.add_subplot()
    for i, (name, values) in enumerate(series.items()):
        xs = [x + i * width for x, v in enumerate(values) if v is not None]
        heights = [v for v in values if v is not None]
        colour = PUBLISHED_COLOUR if name.startswith("published") else None
        bars = ax.bar(xs, heights, width, label=name, color=colour, edgecolor="black", linewidth=0.5)
        ax.bar_label(bars, labels=[f"{v:.1f}" for v in heights], padding=2, fontsize="small")
    ax.set_xticks([x + width * (len(series) - 1) / 2 for x in range(len(groups))], groups, rotation=20, ha="right")
    ax.set_ylim(0, 110)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()
