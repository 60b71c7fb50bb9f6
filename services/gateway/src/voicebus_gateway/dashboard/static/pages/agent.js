// One agent, created or edited: its greeting and prompt, model, pipeline, voice, numbers, tools, knowledge
// base (and the documents in it) and workflow. The API checks it; its complaints show next to
// the fields they are about. What the form does not show is kept as it was (PUT replaces all).

import { api } from "../api.js";
import { clearProblems, complain, field, formProblems, showProblems } from "../forms.js";
import { card, h, notice, pageHeader } from "../ui.js";

const MAX_ROWS = 18;
const PIPELINES = [["cascaded", "Cascaded: speech to text, the model above, text to speech"], ["realtime", "Realtime: one speech-to-speech model hears and speaks"]];
const VOICE_PROVIDERS = [["", "The TTS service's"], ["espeak", "eSpeak NG"], ["cartesia", "Cartesia"], ["openai", "OpenAI"], ["deepgram", "Deepgram Aura"]];

export async function showAgent(main, signal, agentId) {
  let loaded = {};
  if (agentId !== null) {
    try {
      loaded = await api(`/api/agents/${encodeURIComponent(agentId)}`, { signal });
    } catch (error) {
      if (!signal.aborted) main.append(pageHeader("Agent"), notice(`The agent could not be loaded: ${error.message}`, "error"));
      return;
    }
  }
  if (signal.aborted) return;
  const form = agentForm(loaded, agentId === null);
  main.append(pageHeader(agentId === null ? "New agent" : loaded.name), form);
}

function agentForm(loaded, creating) {
  const input = (name, value, props = {}) => h("input", { name, value: value ?? "", autocomplete: "off", ...props });
  const text = (name, value, rows) => {
    const area = h("textarea", { name, rows: Math.min(Math.max(rows, (value ?? "").split("\n").length), MAX_ROWS) });
    area.value = value ?? "";
    return area;
  };
  const json = (value) => (value === null || value === undefined || (Array.isArray(value) && !value.length) ? "" : JSON.stringify(value, null, 2));
  const controls = {
    agent_id: input("agent_id", loaded.agent_id, { disabled: !creating, spellcheck: "false" }),
    name: input("name", loaded.name),
    greeting: text("greeting", loaded.greeting, 2),
    system_prompt: text("system_prompt", loaded.system_prompt, 5),
    model: input("llm.model", loaded.llm?.model, { spellcheck: "false" }),
    base_url: input("llm.base_url", loaded.llm?.base_url, { type: "url", spellcheck: "false" }),
    provider: h("select", { name: "tts.provider" }, VOICE_PROVIDERS.map(([value, label]) =>
      h("option", { value, selected: (loaded.tts?.provider ?? "") === value }, label))),
    voice: input("tts.voice", loaded.tts?.voice, { spellcheck: "false" }),
    pipeline: h("select", { name: "pipeline" }, PIPELINES.map(([value, label]) =>
      h("option", { value, selected: (loaded.pipeline ?? "cascaded") === value }, label))),
    realtime_model: input("realtime.model", loaded.realtime?.model, { spellcheck: "false" }),
    realtime_voice: input("realtime.voice", loaded.realtime?.voice, { spellcheck: "false" }),
    phone_numbers: input("phone_numbers", (loaded.phone_numbers ?? []).join(", "), { type: "tel" }),
    tools: text("tools", json(loaded.tools), 5),
    knowledge_base: input("knowledge_base.id", loaded.knowledge_base?.id, { spellcheck: "false" }),
    auto_context: h("input", { type: "checkbox", name: "knowledge_base.auto_context", checked: loaded.knowledge_base?.auto_context }),
    workflow: text("workflow", json(loaded.workflow), 6),
  };
  for (const area of [controls.tools, controls.workflow]) area.classList.add("code");
  const saved = h("p", { role: "status", class: "status saved" });
  const form = h("form", { class: "form agent-form", novalidate: true },
    card("Agent",
      field("Id", controls.agent_id, { hint: creating ? "Lower-case letters, digits, - and _; it cannot change later." : null }),
      field("Name", controls.name)),
    card("Conversation",
      field("Greeting", controls.greeting, { hint: "What the agent says first; empty: the service's greeting." }),
      field("System prompt", controls.system_prompt, { hint: "The model's instructions." }),
      h("div", { class: "row" },
        field("Model", controls.model, { hint: "An OpenAI-compatible chat model; empty: the service's (or the offline agent)." }),
        field("Model endpoint", controls.base_url, { hint: "Its base URL; empty: OpenAI's." }))),
    card("Hearing and speaking",
      field("Pipeline", controls.pipeline, { hint: "Realtime needs OpenAI's Realtime API (or an endpoint speaking it) and its key in the agent service." }),
      h("div", { class: "row" },
        field("Realtime model", controls.realtime_model, { hint: "Empty: gpt-realtime." }),
        field("Realtime voice", controls.realtime_voice, { hint: "The model's voice: alloy, marin…; empty: alloy." }))),
    card("Voice and numbers",
      h("div", { class: "row" },
        field("Voice provider", controls.provider),
        field("Voice", controls.voice, { hint: "The provider's voice: en-us, alloy, aura-2-thalia-en…" })),
      field("Phone numbers", controls.phone_numbers, { hint: "Numbers that reach this agent, in E.164, separated by commas." })),
    card("Tools",
      field("HTTP tools", controls.tools, { hint: 'A JSON list: [{"name", "description", "url", "method", "parameters"}]. end_call, transfer_call and send_dtmf are built in.' })),
    card("Knowledge base",
      h("div", { class: "row" },
        field("Knowledge base id", controls.knowledge_base, { hint: "The knowledge base the agent answers from; empty: none." }),
        field("Put the nearest passages in the model's instructions", controls.auto_context)),
      documents(controls.knowledge_base)),
    card("Workflow",
      field("Steps", controls.workflow, { hint: "The conversation as steps, in JSON (docs/agents.md); empty: none." })),
    formProblems(),
    h("div", { class: "form-actions" },
      h("button", { type: "submit", class: "button" }, creating ? "Create agent" : "Save"),
      creating ? null : deleteButton(loaded.agent_id),
      h("a", { class: "button secondary", href: "#/agents" }, "Back to agents"),
      saved));

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearProblems(form);
    saved.textContent = "";
    const spec = agentSpec(form, loaded, controls);
    if (!spec) return;
    try {
      if (creating) {
        await api("/api/agents", { method: "POST", json: spec });
        location.hash = `#/agents/${encodeURIComponent(spec.agent_id)}`;
      } else {
        Object.assign(loaded, await api(`/api/agents/${encodeURIComponent(spec.agent_id)}`, { method: "PUT", json: spec }));
        saved.textContent = "Saved: calls that start from now on use it.";
      }
    } catch (error) {
      showProblems(form, error);
    }
  });
  return form;
}

/** The agent the form describes, over what was loaded; null (with complaints) if it cannot be
 * read (a JSON field that is not JSON). */
function agentSpec(form, loaded, controls) {
  const value = (control) => control.value.trim();
  const orNull = (control) => value(control) || null;
  const tools = parsedJson(form, controls.tools, []);
  const workflow = parsedJson(form, controls.workflow, null);
  if (tools === undefined || workflow === undefined) return null;
  const model = value(controls.model);
  const knowledgeBase = value(controls.knowledge_base);
  const realtime = { ...loaded.realtime };
  for (const [key, control] of [["model", controls.realtime_model], ["voice", controls.realtime_voice]]) {
    if (value(control)) realtime[key] = value(control);
    else delete realtime[key];  // the default
  }
  return {
    ...loaded,
    agent_id: value(controls.agent_id),
    name: value(controls.name),
    greeting: orNull(controls.greeting),
    system_prompt: orNull(controls.system_prompt),
    llm: model ? { ...loaded.llm, model, base_url: orNull(controls.base_url) } : null,
    tts: { ...loaded.tts, provider: orNull(controls.provider), voice: orNull(controls.voice) },
    pipeline: controls.pipeline.value,
    realtime,
    phone_numbers: value(controls.phone_numbers).split(/[\s,]+/).filter(Boolean),
    tools,
    knowledge_base: knowledgeBase
      ? { ...loaded.knowledge_base, id: knowledgeBase, auto_context: controls.auto_context.checked }
      : null,
    workflow,
  };
}

/** The JSON in `control`, `empty` for no text, or undefined (with a complaint) for bad JSON. */
function parsedJson(form, control, empty) {
  if (!control.value.trim()) return empty;
  try {
    return JSON.parse(control.value);
  } catch (error) {
    complain(form, control.name, `Not valid JSON: ${error.message}`);
    return undefined;
  }
}

function deleteButton(agentId) {
  return h("button", {
    type: "button",
    class: "button danger secondary",
    onclick: async (event) => {
      if (!confirm(`Delete agent ${agentId}? Calls already going on keep it.`)) return;
      try {
        await api(`/api/agents/${encodeURIComponent(agentId)}`, { method: "DELETE" });
        location.hash = "#/agents";
      } catch (error) {
        showProblems(event.target.form, error);
      }
    },
  }, "Delete");
}

/** The documents of the knowledge base named in `kbInput`, and uploading more. */
function documents(kbInput) {
  const list = h("ul", { class: "documents" });
  const file = h("input", { type: "file", name: "file", accept: ".txt,.md,.markdown,.pdf,text/plain,text/markdown,application/pdf" });
  const upload = h("button", { type: "button", class: "button secondary" }, "Upload");
  const status = h("p", { role: "status", class: "hint" });
  const panel = h("div", { class: "documents-panel" },
    h("h3", {}, "Documents"), list,
    h("div", { class: "upload" }, field("Add a document (text, Markdown or PDF)", file), upload), status);
  const kb = () => encodeURIComponent(kbInput.value.trim());

  async function refresh() {
    if (!kbInput.value.trim()) {
      list.replaceChildren(h("li", { class: "muted" }, "Name a knowledge base to add documents to it."));
      return;
    }
    try {
      const found = await api(`/api/knowledge-bases/${kb()}/documents`);
      list.replaceChildren(...(found.length ? found.map(documentItem) : [h("li", { class: "muted" }, "No documents yet.")]));
    } catch (error) {
      list.replaceChildren(h("li", { class: "muted" }, `The documents could not be listed: ${error.message}`));
    }
  }

  function documentItem(document) {
    const remove = h("button", { type: "button", class: "link", "aria-label": `Remove ${document.name}` }, "Remove");
    remove.addEventListener("click", async () => {
      await api(`/api/knowledge-bases/${kb()}/documents/${encodeURIComponent(document.name)}`, { method: "DELETE" });
      refresh();
    });
    return h("li", {}, h("span", {}, document.name), h("span", { class: "muted" }, `${document.passages} passages`), remove);
  }

  upload.addEventListener("click", async () => {
    clearProblems(panel);
    if (!kbInput.value.trim() || !file.files.length) {
      complain(panel, "file", kbInput.value.trim() ? "Choose a file first." : "Name the knowledge base first.");
      return;
    }
    const form = new FormData();
    form.append("file", file.files[0]);
    upload.disabled = true;
    status.textContent = "Reading and indexing…";
    try {
      const added = await api(`/api/knowledge-bases/${kb()}/documents`, { method: "POST", form });
      status.textContent = `Added ${added.name}: ${added.passages} passages.`;
      file.value = "";
      refresh();
    } catch (error) {
      status.textContent = "";
      complain(panel, "file", error.message);
    } finally {
      upload.disabled = false;
    }
  });
  kbInput.addEventListener("change", refresh);
  refresh();
  return panel;
}
