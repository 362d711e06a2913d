// The evals report's charts as inline SVG: grouped bars (0..1), one group per label, one bar per run.
const SVG = "http://www.w3.org/2000/svg";
const COLORS = ["#3b6fe0", "#e0883b", "#3bb07a", "#b03b8f"];

function node(tag, attrs, text) {
  const n = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, v);
  if (text !== undefined) n.textContent = text;
  return n;
}

// series: [{name, values: {label: number}}]
export function barChart(title, labels, series) {
  const figure = document.createElement("figure");
  figure.className = "chart";
  const group = 22 * series.length + 14;
  const width = Math.max(320, 60 + labels.length * group);
  const height = 210;
  const svg = node("svg", { viewBox: `0 0 ${width} ${height}`, width, height, role: "img", "aria-label": title });
  const plot = { left: 40, top: 10, bottom: 150 };
  for (const tick of [0, 0.5, 1]) {
    const y = plot.bottom - tick * (plot.bottom - plot.top);
    svg.append(node("line", { x1: plot.left - 4, x2: width, y1: y, y2: y, class: "grid" }),
               node("text", { x: plot.left - 8, y: y + 4, "text-anchor": "end", class: "tick" }, tick.toFixed(1)));
  }
  labels.forEach((label, i) => {
    const x0 = plot.left + 8 + i * group;
    series.forEach((s, j) => {
      const value = s.values[label] ?? 0;
      const h = value * (plot.bottom - plot.top);
      const bar = node("rect", { x: x0 + j * 22, y: plot.bottom - h, width: 18, height: Math.max(h, 1),
                                 fill: COLORS[j % COLORS.length] });
      bar.append(node("title", {}, `${s.name}: ${label} = ${value.toFixed(3)}`));
      svg.append(bar);
    });
    svg.append(node("text", { x: x0 + (group - 14) / 2, y: plot.bottom + 14, "text-anchor": "end",
                              transform: `rotate(-30 ${x0 + (group - 14) / 2} ${plot.bottom + 14})`, class: "tick" }, label));
  });
  const caption = document.createElement("figcaption");
  caption.textContent = title;
  const legend = document.createElement("div");
  legend.className = "legend";
  series.forEach((s, j) => {
    const key = document.createElement("span");
    key.style.setProperty("--c", COLORS[j % COLORS.length]);
    key.textContent = s.name;
    legend.append(key);
  });
  figure.append(caption, svg, legend);
  return figure;
}

// The report's charts for runs of one benchmark: pass@k, and MATH-500 accuracy by subject and level.
export function reportCharts(runs) {
  const charts = [];
  const named = runs.map((r, i) => ({ name: `run ${i + 1} (${r.id.slice(0, 6)})`, metrics: r.metrics || {} }));
  const passKeys = [...new Set(named.flatMap((r) => Object.keys(r.metrics).filter((k) => k.includes("pass@"))))].sort();
  if (passKeys.length) charts.push(barChart("pass@k", passKeys, named.map((r) => ({ name: r.name, values: r.metrics }))));
  for (const [field, title] of [["by_subject", "MATH-500 accuracy by subject"], ["by_level", "MATH-500 accuracy by level"]]) {
    const labels = [...new Set(named.flatMap((r) => Object.keys(r.metrics[field] || {})))].sort();
    if (!labels.length) continue;
    const series = named.map((r) => ({ name: r.name, values: Object.fromEntries(
      labels.map((l) => [field === "by_level" ? `level ${l}` : l, (r.metrics[field] || {})[l]?.accuracy ?? 0])) }));
    charts.push(barChart(title, labels.map((l) => (field === "by_level" ? `level ${l}` : l)), series));
  }
  return charts;
}
