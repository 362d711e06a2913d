// Document QA UI: API key, uploads with progress, document list, conversations, streamed answers
// with citations that open the cited passage. Plain JS, no dependencies.
"use strict";

const state = {
  key: localStorage.getItem("apiKey") || "",
  conversationId: null,
  selected: new Set(JSON.parse(localStorage.getItem("selectedDocuments") || "[]")),
  known: new Set(),
  pollTimer: null,
};
const $ = (id) => document.getElementById(id);

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function showError(message) { $("error").textContent = message || ""; }

async function api(path, options = {}) {
  const headers = Object.assign({ Authorization: `Bearer ${state.key}` }, options.headers || {});
  const response = await fetch(path, Object.assign({}, options, { headers }));
  if (!response.ok) throw new Error(await errorDetail(response));
  return response.status === 204 ? null : response.json();
}

async function errorDetail(response) {
  try { return (await response.json()).detail || response.statusText; } catch { return `HTTP ${response.status}`; }
}

// ----- API key -----
$("key-form").addEventListener("submit", (event) => {
  event.preventDefault();
  state.key = $("api-key").value.trim();
  localStorage.setItem("apiKey", state.key);
  start();
});

async function start() {
  showError("");
  if (!state.key) { $("who").textContent = "enter an API key to begin"; return; }
  try {
    const me = await api("/api/me");
    $("who").textContent = `signed in as ${me.name}`;
    await Promise.all([refreshDocuments(), refreshConversations()]);
  } catch (error) {
    $("who").textContent = "";
    showError(error.message);
  }
}

// ----- uploads -----
const dropZone = $("drop-zone");
dropZone.addEventListener("dragover", (event) => { event.preventDefault(); dropZone.classList.add("over"); });
dropZone.addEventListener("dragleave", () => dropZone.classList.remove("over"));
dropZone.addEventListener("drop", (event) => {
  event.preventDefault();
  dropZone.classList.remove("over");
  [...event.dataTransfer.files].forEach(upload);
});
$("file-input").addEventListener("change", (event) => { [...event.target.files].forEach(upload); event.target.value = ""; });

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
  request.setRequestHeader("Authorization", `Bearer ${state.key}`);
  request.upload.onprogress = (event) => {
    if (event.lengthComputable) bar.value = event.loaded / event.total;
    if (event.loaded === event.total) label.textContent = `${file.name}: indexing`;
  };
  request.onload = () => {
    let body = {};
    try { body = JSON.parse(request.responseText); } catch { /* not JSON */ }
    if (request.status >= 200 && request.status < 300) {
      state.selected.add(body.id);
      saveSelection();
      label.textContent = `${file.name}: ${body.status}`;
      setTimeout(() => row.remove(), 1500);
    } else {
      row.classList.add("failed");
      label.textContent = `${file.name}: ${body.detail || `upload failed (HTTP ${request.status})`}`;
      bar.remove();
    }
    refreshDocuments();
  };
  request.onerror = () => { row.classList.add("failed"); label.textContent = `${file.name}: network error`; };
  const form = new FormData();
  form.append("file", file);
  request.send(form);
}

// ----- documents -----
function saveSelection() { localStorage.setItem("selectedDocuments", JSON.stringify([...state.selected])); }

async function refreshDocuments() {
  const documents = await api("/api/documents");
  const list = $("documents");
  list.replaceChildren();
  for (const doc of documents) {
    if (!state.known.has(doc.id) && doc.status === "ready") state.selected.add(doc.id);
    state.known.add(doc.id);
    const item = el("li");
    item.dataset.id = doc.id;
    const box = el("input");
    box.type = "checkbox";
    box.title = "use this document for questions";
    box.checked = state.selected.has(doc.id);
    box.disabled = doc.status !== "ready";
    box.addEventListener("change", () => { box.checked ? state.selected.add(doc.id) : state.selected.delete(doc.id); saveSelection(); });
    const name = el("span", "name", doc.filename);
    const where = doc.n_pages ? `${doc.n_pages} p.` : `${doc.n_tokens || 0} tokens`;
    name.title = `${where}, ${doc.n_chunks} chunks`;
    const badge = el("span", `status ${doc.status}`, doc.status);
    if (doc.error) badge.title = doc.error;
    const remove = el("button", "link", "delete");
    remove.addEventListener("click", async () => {
      await api(`/api/documents/${doc.id}`, { method: "DELETE" });
      state.selected.delete(doc.id);
      saveSelection();
      refreshDocuments();
    });
    item.append(box, name, badge, remove);
    list.append(item);
  }
  saveSelection();
  if (documents.some((d) => d.status === "processing")) pollDocuments();
}

// Re-read the list while documents are indexing; a failed read (e.g. 429) is shown and retried.
function pollDocuments() {
  clearTimeout(state.pollTimer);
  state.pollTimer = setTimeout(() => refreshDocuments().catch((error) => { showError(error.message); pollDocuments(); }), 3000);
}

// ----- conversations -----
$("new-conversation").addEventListener("click", () => {
  state.conversationId = null;
  $("messages").replaceChildren();
  refreshConversations();
});

async function refreshConversations() {
  const conversations = await api("/api/conversations");
  const list = $("conversations");
  list.replaceChildren();
  for (const conversation of conversations) {
    const item = el("li", conversation.id === state.conversationId ? "active" : "");
    const open = el("button", "link", conversation.title || "(untitled)");
    open.addEventListener("click", () => openConversation(conversation.id));
    item.append(open);
    list.append(item);
  }
}

async function openConversation(id) {
  const conversation = await api(`/api/conversations/${id}`);
  state.conversationId = id;
  $("messages").replaceChildren();
  for (const message of conversation.messages) {
    const node = addMessage(message.role, message.content);
    if (message.role === "assistant") renderAnswer(node, message.content, message.citations || []);
  }
  refreshConversations();
}

// ----- asking -----
function addMessage(role, text) {
  const node = el("div", `message ${role}`, text);
  $("messages").append(node);
  node.scrollIntoView({ block: "end" });
  return node;
}

$("ask-form").addEventListener("submit", (event) => { event.preventDefault(); ask(); });
$("question").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey) { event.preventDefault(); ask(); }
});

async function ask() {
  const question = $("question").value.trim();
  if (!question) return;
  showError("");
  $("question").value = "";
  $("ask").disabled = true;
  addMessage("user", question);
  const answer = addMessage("assistant streaming", "");
  let text = "";
  try {
    const response = await fetch("/api/qa", {
      method: "POST",
      headers: { Authorization: `Bearer ${state.key}`, "Content-Type": "application/json" },
      body: JSON.stringify({
        question,
        stream: true,
        document_ids: state.selected.size ? [...state.selected] : null,
        conversation_id: state.conversationId,
      }),
    });
    if (!response.ok) throw new Error(await errorDetail(response));
    for await (const event of serverSentEvents(response)) {
      if (event.type === "conversation") state.conversationId = event.conversation_id;
      else if (event.type === "token") { text += event.text; answer.textContent = text; }
      else if (event.type === "citations") renderAnswer(answer, text, event.citations);
      else if (event.type === "error") throw new Error(event.detail);
    }
    refreshConversations();
  } catch (error) {
    showError(error.message);
    if (!text) answer.remove();
  } finally {
    answer.classList.remove("streaming");
    $("ask").disabled = false;
  }
}

async function* serverSentEvents(response) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      const data = block.split("\n").filter((l) => l.startsWith("data: ")).map((l) => l.slice(6)).join("\n");
      if (data) yield JSON.parse(data);
    }
  }
}

// ----- citations -----
function renderAnswer(node, text, citations) {
  node.replaceChildren();
  let rest = text;
  while (rest) {
    let first = null;
    let at = rest.length;
    for (const citation of citations) {
      const index = rest.indexOf(citation.text);
      if (index >= 0 && index < at) { at = index; first = citation; }
    }
    node.append(document.createTextNode(rest.slice(0, at)));
    if (!first) break;
    node.append(citationLink(first));
    rest = rest.slice(at + first.text.length);
  }
}

function citationLink(citation) {
  const link = el("a", citation.exists ? "citation" : "citation missing", citation.text);
  if (!citation.exists) {
    link.title = "this citation does not match any passage the model was given";
    return link;
  }
  link.href = "#";
  link.title = "open the cited passage";
  link.addEventListener("click", (event) => { event.preventDefault(); openPassage(citation); });
  return link;
}

function openPassage(citation) {
  const where = citation.page !== null ? `page ${citation.page}` : citation.section;
  $("passage-title").textContent = `${citation.filename}, ${where}`;
  $("passage-text").textContent = citation.passage;
  $("passage").hidden = false;
}
$("passage-close").addEventListener("click", () => { $("passage").hidden = true; });

$("api-key").value = state.key;
start();
