// Agent runs: start one on a workspace, watch its steps stream in, approve or reject a dangerous
// call after seeing the diff it would apply, cancel.
import { $, api, authHeaders, el, errorDetail, serverSentEvents, statusBadge, when } from "./api.js";
import { renderMarkdown } from "./markdown.js";

const ACTIVE = new Set(["queued", "running", "awaiting_approval"]);
const state = { runId: null, stream: null, lastSeq: 0 };

export function initAgents() {
  $("agent-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    $("agent-form-error").textContent = "";
    const name = $("agent-file-name").value.trim();
    const body = { task: $("agent-task").value.trim(), workspace: $("agent-workspace").value.trim() || "default" };
    if (name) body.files = { [name]: $("agent-file-content").value };
    try {
      const run = await api("/api/agent-runs", { method: "POST", json: body });
      $("agent-task").value = "";
      await refreshRuns();
      openRun(run.id);
    } catch (error) { $("agent-form-error").textContent = error.message; }
  });
}

export async function showAgents() {
  await refreshRuns();
  if (state.runId) openRun(state.runId);
}

async function refreshRuns() {
  const runs = await api("/api/agent-runs");
  $("agent-runs").replaceChildren(...runs.map((run) => {
    const item = el("li", run.id === state.runId ? "run active" : "run");
    const open = el("button", "link title", run.task);
    open.addEventListener("click", () => openRun(run.id));
    item.append(open, statusBadge(run.status));
    return item;
  }));
  $("agent-runs-empty").hidden = runs.length > 0;
}

async function openRun(runId) {
  if (state.stream) state.stream.abort();
  state.runId = runId;
  state.lastSeq = 0;
  const run = await api(`/api/agent-runs/${runId}`);
  const detail = $("agent-run");
  const head = el("div", "run-head");
  const title = el("h2", "", run.task);
  const meta = el("p", "meta", `workspace ${run.workspace} · ${run.model} · ${when(run.created_at)}`);
  const cancel = el("button", "danger", "Cancel run");
  cancel.id = "agent-cancel";
  cancel.addEventListener("click", async () => {
    cancel.disabled = true;
    try {
      renderStatus(await api(`/api/agent-runs/${runId}/cancel`, { method: "POST" }));
      $("agent-run").querySelector(".approval-box")?.remove();
    }
    catch (error) { showRunError(error.message); }
    refreshRuns();
  });
  head.append(title, el("span", "", ""), cancel);
  detail.replaceChildren(head, meta, el("p", "run-status"), el("ol", "steps"), el("p", "error"));
  renderStatus(run);
  refreshRuns();
  follow(runId);
}

function showRunError(message) { $("agent-run").querySelector(".error").textContent = message; }

function renderStatus(run) {
  const detail = $("agent-run");
  detail.querySelector(".run-status").replaceChildren(el("span", "", "Status: "), statusBadge(run.status));
  if (run.error) detail.querySelector(".run-status").append(el("span", "error", ` ${run.error}`));
  detail.querySelector("#agent-cancel").hidden = !ACTIVE.has(run.status);
}

// Follow the run's steps (server-sent events) until it finishes or pauses for approval.
async function follow(runId) {
  const controller = new AbortController();
  state.stream = controller;
  try {
    const response = await fetch(`/api/agent-runs/${runId}/events?after=${state.lastSeq}`,
                                 { headers: authHeaders(), signal: controller.signal });
    if (!response.ok) throw new Error(await errorDetail(response));
    for await (const { event, data } of serverSentEvents(response)) {
      if (runId !== state.runId) return;
      if (event === "end") break;
      state.lastSeq = data.seq;
      $("agent-run").querySelector(".steps").append(stepItem(data));
    }
    const run = await api(`/api/agent-runs/${runId}`);
    if (runId !== state.runId) return;
    renderStatus(run);
    refreshRuns();
    if (run.status === "awaiting_approval") showApproval(runId);
  } catch (error) {
    if (error.name !== "AbortError") showRunError(error.message);
  }
}

function stepItem(step) {
  const item = el("li", `step ${step.kind}`);
  const data = step.data;
  if (step.kind === "assistant") {
    const message = data.message || {};
    if (message.content) {
      const body = el("div", "body");
      renderMarkdown(body, message.content);
      item.append(el("b", "", "Model"), body);
    }
    for (const call of message.tool_calls || []) item.append(el("code", "call", `→ ${call.function.name} ${call.function.arguments}`));
    if (!message.content && !(message.tool_calls || []).length) item.append(el("b", "", "Model (empty reply)"));
  } else if (step.kind === "tool") {
    item.append(el("b", "", `Tool ${data.name}`), el("span", data.ok === false ? "status failed" : "status done",
                                                      data.ok === false ? "error" : "ok"));
    item.append(el("pre", "output", data.text || ""));
  } else if (step.kind === "approval") {
    item.append(el("b", "", `Waiting for approval: ${(data.calls || []).map((c) => c.function.name).join(", ")}`));
  } else if (step.kind === "finished") {
    const body = el("div", "body");
    renderMarkdown(body, data.text || "(no final answer)");
    item.append(el("b", "", `Finished: ${data.status}`), body);
  } else {
    item.append(el("b", "", step.kind), el("pre", "output", JSON.stringify(data, null, 2)));
  }
  return item;
}

function diffView(text) {
  const pre = el("pre", "diff");
  for (const line of text.split("\n")) {
    const kind = line.startsWith("+") && !line.startsWith("+++") ? "add"
      : line.startsWith("-") && !line.startsWith("---") ? "del" : line.startsWith("@@") ? "hunk" : "";
    pre.append(el("span", kind, `${line}\n`));
  }
  return pre;
}

async function showApproval(runId) {
  const { calls } = await api(`/api/agent-runs/${runId}/approval`);
  const box = el("li", "step approval-box");
  box.append(el("h3", "", "The agent wants to:"));
  for (const call of calls) {
    box.append(el("b", "", call.name));
    if (call.diff !== undefined) box.append(diffView(call.diff));
    else if (call.command !== undefined) box.append(el("pre", "command", `$ ${call.command}`));
    else if (call.error) box.append(el("p", "error", call.error), el("pre", "output", call.arguments));
    else box.append(el("pre", "output", call.arguments));
  }
  const approve = el("button", "approve", "Approve");
  const reject = el("button", "danger", "Reject");
  const decide = async (approved) => {
    approve.disabled = reject.disabled = true;
    try {
      await api(`/api/agent-runs/${runId}/approval`, { method: "POST", json: { approved } });
      box.replaceChildren(el("b", "", approved ? "Approved" : "Rejected"));
      renderStatus(await api(`/api/agent-runs/${runId}`));
      follow(runId);
    } catch (error) { showRunError(error.message); }
  };
  approve.addEventListener("click", () => decide(true));
  reject.addEventListener("click", () => decide(false));
  box.append(el("div", "buttons"));
  box.lastChild.append(approve, reject);
  $("agent-run").querySelector(".steps").append(box);
}
