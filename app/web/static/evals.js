// Eval runs: start one, live progress, the results table, the report's charts, compare two runs.
import { $, api, el, statusBadge, when } from "./api.js";
import { reportCharts } from "./charts.js";

const ACTIVE = new Set(["queued", "running"]);
const state = { runId: null, timer: null, compare: new Set() };

export function initEvals() {
  $("eval-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    $("eval-form-error").textContent = "";
    const body = { benchmark: $("eval-benchmark").value, samples: Number($("eval-samples").value) || 1,
                   concurrency: Number($("eval-concurrency").value) || 4 };
    if ($("eval-limit").value) body.limit = Number($("eval-limit").value);
    try {
      const run = await api("/api/eval-runs", { method: "POST", json: body });
      await refreshRuns();
      openRun(run.id);
    } catch (error) { $("eval-form-error").textContent = error.message; }
  });
  $("eval-compare").addEventListener("click", () => compare([...state.compare]));
}

export async function showEvals() {
  await refreshRuns();
  if (state.runId) openRun(state.runId);
}

function metricText(run) {
  const m = run.metrics || {};
  const key = "accuracy" in m ? "accuracy" : Object.keys(m).find((k) => k.startsWith("pass@"));
  return key ? `${key} ${Number(m[key]).toFixed(3)}` : "";
}

async function refreshRuns() {
  const runs = await api("/api/eval-runs");
  for (const id of [...state.compare]) if (!runs.some((r) => r.id === id)) state.compare.delete(id);
  $("eval-runs").replaceChildren(...runs.map((run) => {
    const item = el("li", run.id === state.runId ? "run active" : "run");
    const box = el("input");
    box.type = "checkbox";
    box.title = "compare";
    box.setAttribute("aria-label", `compare run ${run.id.slice(0, 6)}`);
    box.checked = state.compare.has(run.id);
    box.addEventListener("change", () => {
      if (box.checked) state.compare.add(run.id); else state.compare.delete(run.id);
      $("eval-compare").disabled = state.compare.size !== 2;
    });
    const open = el("button", "link title", `${run.benchmark} · ${run.n_done}/${run.n_total ?? "?"} ${metricText(run)}`);
    open.addEventListener("click", () => openRun(run.id));
    item.append(box, open, statusBadge(run.status));
    return item;
  }));
  $("eval-compare").disabled = state.compare.size !== 2;
  $("eval-runs-empty").hidden = runs.length > 0;
}

function metricsTable(runs) {
  const keys = [...new Set(runs.flatMap((r) => Object.keys(r.metrics || {}).filter((k) => typeof r.metrics[k] === "number")))];
  const table = el("table", "metrics");
  const head = el("tr");
  head.append(el("th", "", "metric"), ...runs.map((r, i) => el("th", "", runs.length > 1 ? `run ${i + 1} (${r.id.slice(0, 6)})` : "value")));
  table.append(head);
  for (const key of keys) {
    const row = el("tr");
    row.append(el("td", "", key), ...runs.map((r) => el("td", "num", r.metrics[key] === undefined ? "–" : Number(r.metrics[key]).toFixed(3))));
    table.append(row);
  }
  return table;
}

function resultsTable(results) {
  const table = el("table", "results");
  const head = el("tr");
  head.append(el("th", "", "problem"), el("th", "", "sample"), el("th", "", "verdict"), el("th", "", "completion"));
  table.append(head);
  for (const r of results) {
    const row = el("tr", r.passed ? "pass" : "fail");
    const completion = el("details");
    completion.append(el("summary", "", r.completion.slice(0, 60).replace(/\s+/g, " ") || "(empty)"), el("pre", "", r.completion));
    const cell = el("td");
    cell.append(completion);
    row.append(el("td", "", r.problem_id), el("td", "num", String(r.sample_index)),
               el("td", "", r.passed ? "✓ passed" : "✗ failed"), cell);
    table.append(row);
  }
  return table;
}

async function openRun(runId, polling = false) {
  clearTimeout(state.timer);
  state.runId = runId;
  const run = await api(`/api/eval-runs/${runId}`);
  if (state.runId !== runId) return;
  const detail = $("eval-run");
  const head = el("div", "run-head");
  const cancel = el("button", "danger", "Cancel run");
  cancel.id = "eval-cancel";
  cancel.hidden = !ACTIVE.has(run.status);
  cancel.addEventListener("click", async () => {
    cancel.disabled = true;
    try { await api(`/api/eval-runs/${runId}/cancel`, { method: "POST" }); } catch (error) { detail.querySelector(".error").textContent = error.message; }
    openRun(runId);
  });
  head.append(el("h2", "", `${run.benchmark} on ${run.model}`), cancel);
  const progress = el("progress", "eval-progress");
  progress.max = run.n_total || 1;
  progress.value = run.n_done;
  const status = el("p", "run-status");
  status.append(statusBadge(run.status), el("span", "progress-text", ` ${run.n_done} / ${run.n_total ?? "?"} samples`),
                el("span", "meta", ` · started ${when(run.created_at)}`));
  const parts = [head, status, progress, el("p", "error", run.error || "")];
  if (!ACTIVE.has(run.status)) {
    const results = await api(`/api/eval-runs/${runId}/results?limit=1000`);
    if (state.runId !== runId) return;
    parts.push(el("h3", "", "Metrics"), metricsTable([run]), ...reportCharts([run]),
               el("h3", "", `Results (${results.length})`), resultsTable(results));
  }
  detail.replaceChildren(...parts);
  if (!polling || !ACTIVE.has(run.status)) refreshRuns();
  if (ACTIVE.has(run.status)) state.timer = setTimeout(() => openRun(runId, true), 1500);
}

async function compare(ids) {
  clearTimeout(state.timer);
  state.runId = null;
  const detail = $("eval-run");
  try {
    const params = new URLSearchParams(ids.map((id) => ["ids", id]));
    const result = await api(`/api/eval-runs/compare?${params}`);
    const table = el("table", "results");
    const head = el("tr");
    head.append(el("th", "", "problem"), ...result.runs.map((r, i) => el("th", "", `run ${i + 1}`)));
    table.append(head);
    for (const [problem, verdicts] of Object.entries(result.differing)) {
      const row = el("tr");
      row.append(el("td", "", problem), ...result.runs.map((r) => el("td", "", r.id in verdicts ? (verdicts[r.id] ? "✓" : "✗") : "–")));
      table.append(row);
    }
    const differing = Object.keys(result.differing).length;
    detail.replaceChildren(el("h2", "", `Comparing two ${result.benchmark} runs`), metricsTable(result.runs),
                           ...reportCharts(result.runs),
                           el("h3", "", `Problems whose verdicts differ (${differing})`), table);
  } catch (error) {
    detail.replaceChildren(el("p", "error", error.message));
  }
}
