// Forms: labelled fields, and the API's complaints shown next to the fields they are about.

import { h } from "./ui.js";

let controls = 0;

/**
 * A labelled field around `control` (an input, select or textarea). `name` is the field's path
 * in the request body ("tts.voice"), which is how the API's complaints find it; `hint` says what
 * to enter. The hint and the complaints are tied to the control for screen readers.
 */
export function field(label, control, { name = control.name, hint } = {}) {
  control.id ||= `control-${++controls}`;
  const hintText = hint && h("p", { class: "hint", id: `${control.id}-hint` }, hint);
  const error = h("p", { class: "field-error", id: `${control.id}-error`, hidden: true });
  control.setAttribute("aria-describedby", [hintText?.id, error.id].filter(Boolean).join(" "));
  const labelled = control.type === "checkbox"
    ? h("label", { class: "check", for: control.id }, control, label)
    : [h("label", { for: control.id }, label), control];
  return h("div", { class: "field", "data-field": name }, labelled, hintText, error);
}

/** The box at the end of a form for complaints about no field in particular. */
export function formProblems() {
  return h("div", { class: "form-error", role: "alert", hidden: true });
}

/** Clear every complaint shown in `form`. */
export function clearProblems(form) {
  for (const error of form.querySelectorAll(".field-error, .form-error")) {
    error.replaceChildren();
    error.hidden = true;
  }
  for (const control of form.querySelectorAll("[aria-invalid]")) control.removeAttribute("aria-invalid");
}

/** Show `message` next to the field named `name` in `form` (or in its form-wide box). */
export function complain(form, name, message) {
  const found = name && form.querySelector(`[data-field="${CSS.escape(name)}"]`);
  const box = found ? found.querySelector(".field-error") : form.querySelector(".form-error");
  box.append(h("span", {}, message));
  box.hidden = false;
  found?.querySelector("input, select, textarea")?.setAttribute("aria-invalid", "true");
}

/**
 * Show an ApiError's complaints in `form`: each invalid field's (FastAPI's 422 `detail`, where
 * `loc` is the path in the body) next to the field, or the nearest enclosing one the form
 * shows; anything else in the form-wide box. Focuses the first field complained about.
 */
export function showProblems(form, error) {
  clearProblems(form);
  const problems = Array.isArray(error.detail) ? error.detail : [{ loc: [], msg: error.message }];
  for (const { loc = [], msg } of problems) {
    const path = loc[0] === "body" ? loc.slice(1) : [];
    const [name, rest] = nearestField(form, path);
    const where = rest.map((part) => (typeof part === "number" ? `[${part}]` : `.${part}`)).join("");
    const text = msg.replace(/^Value error, /, "");
    complain(form, name, where ? `${where.replace(/^\./, "")}: ${text}` : text);
  }
  form.querySelector("[aria-invalid]")?.focus();
}

/** The name of the field of `form` nearest to `path`, and what of the path is beyond it. */
function nearestField(form, path) {
  for (let length = path.length; length > 0; length--) {
    const name = path.slice(0, length).join(".");
    if (form.querySelector(`[data-field="${CSS.escape(name)}"]`)) return [name, path.slice(length)];
  }
  return [null, path];
}

/** A choice of agent named `name`: the default agent (none named) until `offerAgents`. */
export function agentSelect(name = "agent_id") {
  return h("select", { name }, h("option", { value: "" }, "Default agent"));
}

/** Offer `agents` (as `GET /api/agents` lists them) in each of `selects`. */
export function offerAgents(selects, agents) {
  for (const select of selects) {
    select.append(...agents.map((agent) => h("option", { value: agent.agent_id }, `${agent.name} (${agent.agent_id})`)));
  }
}
