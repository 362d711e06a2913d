// The chat view: conversations (open, rename, delete), asking with a streamed Markdown answer,
// a Stop button, citations that open their passage, and plain chat when no document is ticked.
import { $, api, authHeaders, el, errorDetail, serverSentEvents } from "./api.js";
import { initDocuments, refreshDocuments, selectedDocuments } from "./documents.js";
import { renderMarkdown } from "./markdown.js";

const state = { conversationId: null, controller: null, documents: [] };
const ENDINGS = { stopped: "stopped", loop: "cut: the model began repeating itself" };

function showError(message) { $("error").textContent = message || ""; }

export function initChat() {
  initDocuments({ changed: updateMode, showError });
  $("new-conversation").addEventListener("click", () => { newConversation(); closePanel(); });
  $("ask-form").addEventListener("submit", (event) => { event.preventDefault(); state.controller ? stop() : ask(); });
  $("question").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey) { event.preventDefault(); if (!state.controller) ask(); }
  });
  $("question").addEventListener("input", () => showError(""));
  $("passage-close").addEventListener("click", () => { $("passage").hidden = true; });
  $("panel-toggle").addEventListener("click", () => {
    const open = document.body.classList.toggle("panel-open");
    $("panel-toggle").setAttribute("aria-expanded", String(open));
  });
}

function closePanel() {
  document.body.classList.remove("panel-open");
  $("panel-toggle").setAttribute("aria-expanded", "false");
}

export async function showChat() {
  const [documents] = await Promise.all([refreshDocuments(), refreshConversations()]);
  state.documents = documents;
  updateMode();
}

function updateMode() {
  const ids = selectedDocuments();
  $("mode").textContent = ids.length
    ? `Answering from ${ids.length} selected document${ids.length > 1 ? "s" : ""}, with citations`
    : "Chat with the model: no document selected";
  $("chat-empty").hidden = $("messages").children.length > 0;
}

function newConversation() {
  state.conversationId = null;
  $("messages").replaceChildren();
  $("passage").hidden = true;
  showError("");
  updateMode();
  refreshConversations();
}

// ----- conversations -----
// Re-render the list; a background refresh leaves an item being renamed or deleted alone.
async function refreshConversations(force = false) {
  const conversations = await api("/api/conversations");
  if (!force && $("conversations").querySelector("input.rename, .confirm")) return;
  $("conversations").replaceChildren(...conversations.map(conversationItem));
  $("conversations-empty").hidden = conversations.length > 0;
}

function conversationItem(conversation) {
  const item = el("li", conversation.id === state.conversationId ? "conversation active" : "conversation");
  item.dataset.id = conversation.id;
  const open = el("button", "link title", conversation.title || "(untitled)");
  open.addEventListener("click", () => { openConversation(conversation.id); closePanel(); });
  const rename = el("button", "icon", "✎");
  rename.title = "rename";
  rename.setAttribute("aria-label", "rename conversation");
  rename.addEventListener("click", () => startRename(item, conversation));
  const remove = el("button", "icon", "×");
  remove.title = "delete";
  remove.setAttribute("aria-label", "delete conversation");
  remove.addEventListener("click", () => confirmDelete(item, conversation));
  item.append(open, rename, remove);
  return item;
}

function startRename(item, conversation) {
  const input = el("input", "rename");
  input.value = conversation.title;
  input.setAttribute("aria-label", "new title");
  let saved = false; // Enter, then the blur of the removed input: save once
  const save = async () => {
    if (saved) return;
    saved = true;
    const title = input.value.trim();
    if (title && title !== conversation.title) {
      try { await api(`/api/conversations/${conversation.id}`, { method: "PATCH", json: { title } }); }
      catch (error) { showError(error.message); }
    }
    refreshConversations(true);
  };
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter") { event.preventDefault(); save(); }
    if (event.key === "Escape") { saved = true; refreshConversations(true); }
  });
  input.addEventListener("blur", save, { once: true });
  item.replaceChildren(input);
  input.focus();
  input.select();
}

function confirmDelete(item, conversation) {
  const yes = el("button", "danger", "Delete");
  const no = el("button", "link", "Cancel");
  yes.addEventListener("click", async () => {
    try {
      await api(`/api/conversations/${conversation.id}`, { method: "DELETE" });
      if (state.conversationId === conversation.id) newConversation();
    } catch (error) { showError(error.message); }
    refreshConversations(true);
  });
  no.addEventListener("click", () => refreshConversations(true));
  item.replaceChildren(el("span", "confirm", `Delete “${conversation.title}”?`), yes, no);
}

async function openConversation(id) {
  showError("");
  const conversation = await api(`/api/conversations/${id}`);
  state.conversationId = id;
  $("messages").replaceChildren();
  $("passage").hidden = true;
  for (const message of conversation.messages) {
    if (message.role === "user") addMessage("user", message.content);
    if (message.role === "assistant") renderAnswer(addMessage("assistant", ""), message.content, message.citations || []);
  }
  updateMode();
  refreshConversations();
}

// ----- asking -----
function addMessage(role, text) {
  const node = el("div", `message ${role}`);
  const body = el("div", "body", text);
  node.append(body);
  $("messages").append(node);
  $("chat-empty").hidden = true;
  node.scrollIntoView({ block: "end" });
  return node;
}

function renderAnswer(node, text, citations, ending) {
  renderMarkdown(node.querySelector(".body"), text, citations, openPassage);
  node.querySelector(".ending")?.remove();
  if (ENDINGS[ending]) node.append(el("small", "ending", ENDINGS[ending]));
}

function setBusy(busy) {
  $("ask").textContent = busy ? "Stop" : "Send";
  $("ask").classList.toggle("stop", busy);
  $("ask").title = busy ? "stop the answer" : "send the question";
}

function stop() { if (state.controller) state.controller.abort(); }

async function ask() {
  const question = $("question").value.trim();
  if (!question) return;
  showError("");
  $("question").value = "";
  const asked = addMessage("user", question);
  const answer = addMessage("assistant streaming", "");
  const wasNew = state.conversationId === null;
  state.controller = new AbortController();
  setBusy(true);
  let text = "";
  let frame = 0;
  try {
    const response = await fetch("/api/qa", {
      method: "POST",
      signal: state.controller.signal,
      headers: authHeaders({ "Content-Type": "application/json" }),
      body: JSON.stringify({ question, stream: true, document_ids: selectedDocuments(),
                             conversation_id: state.conversationId }),
    });
    if (!response.ok) throw new Error(await errorDetail(response));
    for await (const { data } of serverSentEvents(response)) {
      if (data.type === "conversation") state.conversationId = data.conversation_id;
      else if (data.type === "token") {
        text += data.text;
        if (!frame) frame = requestAnimationFrame(() => { frame = 0; renderAnswer(answer, text, []); });
      } else if (data.type === "done") {
        cancelAnimationFrame(frame);
        text = data.answer;
        renderAnswer(answer, text, data.citations, data.ending);
      }
      else if (data.type === "error") throw new Error(data.detail);
    }
  } catch (error) {
    cancelAnimationFrame(frame);
    if (error.name === "AbortError") {
      renderAnswer(answer, text, [], "stopped");
      if (!text) answer.remove();
    } else {
      answer.remove();
      asked.classList.add("failed");
      asked.append(el("small", "ending", "not answered"));
      if (wasNew) state.conversationId = null;
      $("question").value = question;
      showError(error.message);
    }
  } finally {
    answer.classList.remove("streaming");
    state.controller = null;
    setBusy(false);
    refreshConversations().catch(() => {});
  }
}

// ----- citations -----
function openPassage(citation) {
  const where = citation.page !== null ? `page ${citation.page}` : citation.section;
  $("passage-title").textContent = `${citation.filename}, ${where}`;
  $("passage-text").textContent = citation.passage;
  $("passage").hidden = false;
}
