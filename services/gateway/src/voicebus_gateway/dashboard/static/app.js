// The dashboard's shell: which page the address shows (#/calls, #/calls/<id>, #/start,
// #/agents, #/agents/<id>, #/agents/new, #/analytics), the stack's health in the header, and
// the sign-in form when the API asks for a key.

import { apiKey, KEY_NEEDED, useKey } from "./api.js";
import { showAgent } from "./pages/agent.js";
import { showAgents } from "./pages/agents.js";
import { showAnalytics } from "./pages/analytics.js";
import { showCall } from "./pages/call.js";
import { showCalls } from "./pages/calls.js";
import { showStart } from "./pages/start.js";
import { signInForm } from "./signin.js";
import { notice } from "./ui.js";

const HEALTH_EVERY_MS = 15_000;

/** [address pattern, nav section, page]: a page is show(main, signal, ...captured parts). */
const ROUTES = [
  [/^#\/calls\/([^/]+)$/, "calls", showCall],
  [/^#\/calls$/, "calls", showCalls],
  [/^#\/start$/, "start", showStart],
  [/^#\/agents\/new$/, "agents", (main, signal) => showAgent(main, signal, null)],
  [/^#\/agents\/([^/]+)$/, "agents", showAgent],
  [/^#\/agents$/, "agents", showAgents],
  [/^#\/analytics$/, "analytics", showAnalytics],
];

const main = document.getElementById("page");
const signOut = document.getElementById("sign-out");
let leaving = new AbortController();
let signingIn = false;

function leave() {
  leaving.abort(); // the page shown so far stops: its feeds, requests and call
  leaving = new AbortController();
}

function route() {
  leave();
  signingIn = false;
  signOut.hidden = apiKey() === null;
  const address = location.hash || "#/calls";
  const found = ROUTES.map(([pattern, section, page]) => [pattern.exec(address), section, page])
    .find(([match]) => match);
  for (const link of document.querySelectorAll("nav a")) {
    if (link.dataset.section === found?.[1]) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  main.replaceChildren();
  if (!found) {
    main.append(notice("There is no such page.", "error"));
    return;
  }
  const [match, , page] = found;
  page(main, leaving.signal, ...match.slice(1).map(decodeURIComponent));
}

async function checkHealth() {
  const health = document.getElementById("health");
  let missing;
  try {
    const response = await fetch("/healthz");
    missing = (await response.json()).missing ?? [];
  } catch {
    missing = ["the gateway"];
  }
  health.className = `health ${missing.length ? "down" : "up"}`;
  health.textContent = missing.length ? `Waiting for ${missing.join(", ")}` : "All services up";
}

// The page's requests fail together: the form is shown once, and the page comes back signed in.
window.addEventListener(KEY_NEEDED, () => {
  if (signingIn) return;
  signingIn = true;
  leave();
  signOut.hidden = true;
  main.replaceChildren(...signInForm(route).filter(Boolean));
  main.querySelector("input")?.focus();
});

signOut.addEventListener("click", () => {
  useKey(null);
  route();
});

window.addEventListener("hashchange", () => {
  route();
  main.focus({ preventScroll: true }); // where a screen reader goes on: the new page
});
route();
checkHealth();
setInterval(checkHealth, HEALTH_EVERY_MS);
