// Documents: uploads (drag and drop or pick), the list with live ingestion progress, the
// selection to answer from (kept in local storage, so it survives a reload), delete.
import { $, api, el, session, statusBadge } from "./api.js";

const selected = new Set(JSON.parse(localStorage.getItem("selectedDocuments") || "[]"));
const autoSelect = new Set(); // uploaded here: ticked once ready
let pollTimer = null;
let onChange = () => {};

export function selectedDocuments() { return [...selected]; }

function saveSelection() { localStorage.setItem("selectedDocuments", JSON.stringify([...selected])); }

export function initDocuments({ changed, showError }) {
  onChange = changed;
  const zone = $("drop-zone");
  zone.addEventListener("dragover", (event) => { event.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    showError("");
    [...event.dataTransfer.files].forEach(upload);
  });
  zone.addEventListener("keydown", (event) => { if (event.key === "Enter" || event.key === " ") $("file-input").click(); });
  $("file-input").addEventListener("change", (event) => {
    showError("");
    [...event.target.files].forEach(upload);
    event.target.value = "";
  });
}

function upload(file) {
  const row = el("div", "upload");
  const label = el("div", "", `${file.name}: uploading`);
  const bar = el("progress");
  bar.max = 1;
  bar.value = 0;
  row.append(label, bar);
  $("uploads").append(row);
  const request = new XMLHttpRequest();
  request.open("POST", "/api/documents");
  request.setRequestHeader("Authorization", `Bearer ${session.key}`);
  request.upload.onprogress = (event) => {
    if (event.lengthComputable) bar.value = event.loaded / event.total;
    if (event.loaded === event.total) label.textContent = `${file.name}: uploaded, indexing`;
  };
  request.onload = () => {
    let body = {};
    try { body = JSON.parse(request.responseText); } catch { /* not JSON */ }
    if (request.status >= 200 && request.status < 300) {
      autoSelect.add(body.id);
      row.remove();
    } else {
      row.classList.add("failed");
      label.textContent = `${file.name}: ${body.detail || `upload failed (HTTP ${request.status})`}`;
      bar.remove();
      const dismiss = el("button", "link", "dismiss");
      dismiss.addEventListener("click", () => row.remove());
      row.append(dismiss);
    }
    refreshDocuments();
  };
  request.onerror = () => { row.classList.add("failed"); label.textContent = `${file.name}: network error`; };
  const form = new FormData();
  form.append("file", file);
  request.send(form);
}

function progressText(doc) {
  if (doc.status === "pending") return "waiting to be indexed";
  const parts = [];
  if (doc.pages_total !== null) parts.push(`${doc.pages_done ?? 0} / ${doc.pages_total} pages`);
  if (doc.chunks_total !== null) parts.push(`${doc.chunks_done} / ${doc.chunks_total} chunks`);
  return parts.join(" · ") || "reading the file";
}

function summary(doc) {
  const size = doc.n_pages ? `${doc.n_pages} pages` : `${doc.n_tokens || 0} tokens`;
  return `${size} · ${doc.n_chunks} chunks`;
}

function documentItem(doc) {
  const item = el("li", `document ${doc.status}`);
  item.dataset.id = doc.id;
  const box = el("input");
  box.type = "checkbox";
  box.title = "answer from this document";
  box.setAttribute("aria-label", `answer from ${doc.filename}`);
  box.checked = selected.has(doc.id);
  box.disabled = doc.status !== "ready";
  box.addEventListener("change", () => {
    if (box.checked) selected.add(doc.id); else selected.delete(doc.id);
    saveSelection();
    onChange();
  });
  const body = el("div", "doc-body");
  const top = el("div", "doc-top");
  top.append(el("span", "name", doc.filename), statusBadge(doc.status));
  body.append(top);
  if (doc.status === "ready") body.append(el("small", "doc-meta", summary(doc)));
  if (doc.status === "pending" || doc.status === "processing") {
    const bar = el("progress", "ingest");
    bar.max = doc.chunks_total || 1;
    bar.value = doc.chunks_total ? doc.chunks_done : 0;
    body.append(bar, el("small", "progress-text", progressText(doc)));
  }
  if (doc.status === "failed") body.append(el("small", "doc-error", doc.error || "indexing failed"));
  const remove = el("button", "icon", "×");
  remove.title = `delete ${doc.filename}`;
  remove.setAttribute("aria-label", `delete ${doc.filename}`);
  remove.addEventListener("click", async () => {
    await api(`/api/documents/${doc.id}`, { method: "DELETE" });
    selected.delete(doc.id);
    saveSelection();
    refreshDocuments();
  });
  item.append(box, body, remove);
  return item;
}

// Re-read the list while documents are indexing; a failed read (e.g. 429) is retried a little later.
function poll() {
  refreshDocuments().catch(() => { pollTimer = setTimeout(poll, 3000); });
}

export async function refreshDocuments() {
  const documents = await api("/api/documents");
  const ids = new Set(documents.map((d) => d.id));
  for (const id of [...selected]) if (!ids.has(id)) selected.delete(id);
  for (const doc of documents) {
    if (doc.status === "ready" && autoSelect.delete(doc.id)) selected.add(doc.id);
  }
  saveSelection();
  $("documents").replaceChildren(...documents.map(documentItem));
  $("documents-empty").hidden = documents.length > 0;
  clearTimeout(pollTimer);
  if (documents.some((d) => d.status === "pending" || d.status === "processing")) pollTimer = setTimeout(poll, 1000);
  onChange();
  return documents;
}
