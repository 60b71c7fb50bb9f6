// Agents: what each one is, at a glance.

import { api } from "../api.js";
import { h, notice, pageHeader } from "../ui.js";

export async function showAgents(main, signal) {
  const list = h("div", { class: "card flush" });
  main.append(pageHeader("Agents", h("a", { class: "button", href: "#/agents/new" }, "New agent")), list);
  let agents;
  try {
    agents = await api("/api/agents", { signal });
  } catch (error) {
    if (!signal.aborted) list.replaceWith(notice(`The agents could not be loaded: ${error.message}`, "error"));
    return;
  }
  if (!agents.length) {
    list.replaceChildren(notice("No agents yet: calls talk to the default agent. Create one to choose its greeting, voice and tools.", "empty"));
    return;
  }
  list.replaceChildren(h("table", { class: "table" },
    h("thead", {}, h("tr", {}, ["Agent", "Greeting", "Model", "Voice", "Tools", "Knowledge", "Workflow"].map((title) => h("th", { scope: "col" }, title)))),
    h("tbody", {}, agents.map(row))));
}

function row(agent) {
  const voice = [agent.tts.provider, agent.tts.voice].filter(Boolean).join(" · ");
  return h("tr", { "data-agent-id": agent.agent_id },
    h("td", {}, h("a", { href: `#/agents/${encodeURIComponent(agent.agent_id)}` }, agent.name), h("div", { class: "muted" }, agent.agent_id)),
    h("td", { class: "clip" }, agent.greeting ?? h("span", { class: "muted" }, "the default")),
    h("td", {}, agent.llm?.model ?? h("span", { class: "muted" }, "the default")),
    h("td", {}, voice || h("span", { class: "muted" }, "the default")),
    h("td", {}, agent.tools.length ? agent.tools.map((tool) => tool.name).join(", ") : "–"),
    h("td", {}, agent.knowledge_base?.id ?? "–"),
    h("td", {}, agent.workflow ? `${agent.workflow.nodes.length} steps` : "–"));
}
