// The platform's API from the browser: the key, JSON requests, server-sent events, small DOM helpers.
export const session = { key: localStorage.getItem("apiKey") || "" };

export function setKey(key) {
  session.key = key;
  if (key) localStorage.setItem("apiKey", key); else localStorage.removeItem("apiKey");
}

export const $ = (id) => document.getElementById(id);

export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = text;
  return node;
}

export function authHeaders(extra = {}) {
  return Object.assign({ Authorization: `Bearer ${session.key}` }, extra);
}

export async function errorDetail(response) {
  try { return (await response.json()).detail || response.statusText; } catch { return `HTTP ${response.status}`; }
}

// fetch with the key; `json` is sent as the JSON body; non-2xx throws an Error with the API's detail.
export async function api(path, { json, ...options } = {}) {
  const headers = authHeaders(json === undefined ? {} : { "Content-Type": "application/json" });
  const init = Object.assign({}, options, { headers }, json === undefined ? {} : { body: JSON.stringify(json) });
  const response = await fetch(path, init);
  if (!response.ok) throw Object.assign(new Error(await errorDetail(response)), { status: response.status });
  return response.status === 204 ? null : response.json();
}

// The events of a text/event-stream response: {event, data} with data parsed as JSON.
export async function* serverSentEvents(response) {
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
      const lines = block.split("\n");
      const event = (lines.find((l) => l.startsWith("event: ")) || "event: message").slice(7);
      const data = lines.filter((l) => l.startsWith("data: ")).map((l) => l.slice(6)).join("\n");
      if (data) yield { event, data: JSON.parse(data) };
    }
  }
}

export function statusBadge(status) {
  return el("span", `status ${status}`, status.replace("_", " "));
}

export function when(iso) {
  return new Date(iso).toLocaleString([], { dateStyle: "short", timeStyle: "short" });
}
