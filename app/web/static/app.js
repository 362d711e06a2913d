// The web UI's entry point: the key screen, the views (chat, agent runs, eval runs) by URL hash,
// and the model's name and state in the header. Plain JS modules; Markdown by marked + DOMPurify.
import { $, api, session, setKey } from "./api.js";
import { initAgents, showAgents } from "./agents.js";
import { initChat, showChat } from "./chat.js";
import { initEvals, showEvals } from "./evals.js";

const VIEWS = { chat: showChat, agents: showAgents, evals: showEvals };
let modelTimer = null;

function currentView() {
  const name = location.hash.replace(/^#\/?/, "");
  return name in VIEWS ? name : "chat";
}

function showWelcome(message) {
  for (const name of Object.keys(VIEWS)) $(`view-${name}`).hidden = true;
  $("welcome").hidden = false;
  $("nav").hidden = $("model").hidden = $("sign-out").hidden = true;
  $("who").textContent = "";
  $("key-error").textContent = message || "";
  $("api-key").value = "";
  $("api-key").focus();
}

async function route() {
  if (!session.key) return showWelcome();
  const view = currentView();
  for (const name of Object.keys(VIEWS)) $(`view-${name}`).hidden = name !== view;
  for (const link of $("nav").querySelectorAll("a[data-view]")) link.classList.toggle("active", link.dataset.view === view);
  try {
    await VIEWS[view]();
  } catch (error) {
    const target = $(`view-${view}`).querySelector(".error");
    if (target) target.textContent = error.message;
  }
}

async function refreshModel() {
  clearTimeout(modelTimer);
  try {
    const model = await api("/api/model");
    const window = model.qa.context_window ? ` · ${model.qa.context_window.toLocaleString("en")}-token window` : "";
    $("model-text").textContent = `${model.name} · ${model.state.replace("_", " ")}${window}`;
    $("model").className = `model ${model.state}`;
    $("model").title = `${model.backend} backend${model.detail ? `: ${model.detail}` : ""}`;
    modelTimer = setTimeout(refreshModel, model.state === "ready" ? 30000 : 3000);
  } catch (error) {
    $("model-text").textContent = "model status unknown";
    $("model").className = "model unknown";
    modelTimer = setTimeout(refreshModel, 10000);
  }
}

async function signIn() {
  try {
    const me = await api("/api/me");
    $("welcome").hidden = true;
    $("nav").hidden = $("model").hidden = $("sign-out").hidden = false;
    $("who").textContent = me.name;
    refreshModel();
    await route();
  } catch (error) {
    if (error.status === 401) setKey("");
    showWelcome(error.message);
  }
}

$("key-form").addEventListener("submit", (event) => {
  event.preventDefault();
  setKey($("api-key").value.trim());
  signIn();
});
$("sign-out").addEventListener("click", () => { setKey(""); clearTimeout(modelTimer); showWelcome(); });
window.addEventListener("hashchange", route);

initChat();
initAgents();
initEvals();
if (session.key) signIn(); else showWelcome();
