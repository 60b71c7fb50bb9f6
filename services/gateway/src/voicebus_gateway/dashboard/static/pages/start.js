// Start a call: talk to an agent from this browser's microphone, or have an agent phone someone.

import { api } from "../api.js";
import { agentSelect, clearProblems, complain, field, formProblems, offerAgents, showProblems } from "../forms.js";
import { Transcript } from "../transcript.js";
import { floorBadge, h, notice, pageHeader } from "../ui.js";
import { WebCall } from "../webcall.js";

export function showStart(main, signal) {
  const talkAgent = agentSelect();
  const phoneAgent = agentSelect();
  const problem = h("div");
  main.append(pageHeader("Start a call"), problem,
    h("div", { class: "columns" }, talkCard(talkAgent, signal), phoneCard(phoneAgent)));
  api("/api/agents", { signal }).then(
    (agents) => offerAgents([talkAgent, phoneAgent], agents),
    (error) => signal.aborted || problem.append(notice(`The agents could not be listed (${error.message}): calls go to the default agent.`, "error")),
  );
}

/**
 * A web call from this page. Its section tells tests (and curious readers) how the call goes:
 * data-call-id, data-state (who has the floor, or "ended") and data-agent-audio-ms (how much
 * of the agent's voice has played).
 */
function talkCard(agent, signal) {
  const start = h("button", { type: "button", class: "button" }, "Start call");
  const hangUp = h("button", { type: "button", class: "button danger", hidden: true }, "Hang up");
  const floor = h("span");
  const status = h("p", { class: "call-status", role: "status" }, "Your microphone is the caller.");
  const meters = { caller: h("meter", { min: 0, max: 1, value: 0 }), agent: h("meter", { min: 0, max: 1, value: 0 }) };
  const conversation = h("div");
  const section = h("section", { class: "card talk", "aria-labelledby": "talk-title", "data-agent-audio-ms": "0" },
    h("h2", { id: "talk-title" }, "Talk in the browser"),
    h("div", { class: "talk-controls" }, field("Agent", agent), start, hangUp),
    h("div", { class: "talk-status" }, floor, status),
    h("div", { class: "meters" }, meter("You", meters.caller), meter("Agent", meters.agent)),
    conversation);
  let call = null;

  const showFloor = (state) => {
    section.dataset.state = state;
    floor.replaceChildren(floorBadge(state));
  };
  const idle = () => {
    start.hidden = false;
    start.disabled = false;
    agent.disabled = false;
    hangUp.hidden = true;
    for (const bar of Object.values(meters)) bar.value = 0;
  };

  start.addEventListener("click", async () => {
    const transcript = new Transcript();
    conversation.replaceChildren(transcript.element);
    start.disabled = true;
    agent.disabled = true;
    status.textContent = "Connecting…";
    call = new WebCall({
      agentId: agent.value,
      onMessage: (message) => {
        transcript.apply(message);
        if (message.type === "state") showFloor(message.state);
        if (message.type === "call.started") {
          section.dataset.callId = message.call_id;
          status.replaceChildren("On the call. ", h("a", { href: `#/calls/${message.call_id}`, target: "_blank" }, "Follow it on its page"));
        }
      },
      onLevel: (who, level) => {
        meters[who].value = level;
      },
      onPlayed: (ms) => {
        section.dataset.agentAudioMs = String(Math.round(ms));
      },
      onEnd: (reason) => {
        showFloor("ended");
        status.textContent = `The call ended: ${reason}.`;
        idle();
      },
    });
    try {
      await call.start();
      start.hidden = true;
      hangUp.hidden = false;
    } catch (error) {
      status.textContent = `The call could not start: ${error.message}`;
      idle();
    }
  });
  hangUp.addEventListener("click", () => call.hangUp());
  signal.addEventListener("abort", () => call?.release()); // leaving the page ends the call
  showFloor("idle");
  return section;
}

function meter(label, bar) {
  bar.id = `meter-${label.toLowerCase()}`;
  return h("div", { class: "meter" }, h("label", { for: bar.id }, label), bar);
}

/** Have an agent phone someone (POST /api/calls), the API's complaints beside each field. */
function phoneCard(agent) {
  const to = h("input", { name: "to", type: "tel", autocomplete: "off", placeholder: "+14155550100" });
  const from = h("input", { name: "from", type: "tel", autocomplete: "off" });
  const variables = h("textarea", { name: "variables", rows: 3, placeholder: "name=Ada" });
  const placed = h("p", { role: "status", class: "status" });
  const form = h("form", { class: "form", novalidate: true },
    field("To", to, { hint: "In E.164 form: + and the country code." }),
    field("From", from, { hint: "One of your Twilio numbers; empty: the configured one." }),
    field("Agent", agent),
    field("Variables", variables, { hint: "One name=value a line, for the agent." }),
    formProblems(),
    h("div", { class: "form-actions" }, h("button", { type: "submit", class: "button" }, "Place call")),
    placed);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearProblems(form);
    placed.replaceChildren();
    const values = parseVariables(variables.value);
    if (values instanceof Error) {
      complain(form, "variables", values.message);
      return;
    }
    const body = { to: to.value.trim(), variables: values };
    if (from.value.trim()) body.from = from.value.trim();
    if (agent.value) body.agent_id = agent.value;
    try {
      const { call_id: callId } = await api("/api/calls", { method: "POST", json: body });
      placed.replaceChildren(`Calling ${body.to}. `, h("a", { href: `#/calls/${callId}` }, "Follow the call"));
    } catch (error) {
      showProblems(form, error);
    }
  });
  return h("section", { class: "card" }, h("h2", {}, "Place a phone call"), form);
}

/** `name=value` lines as an object, or an Error naming the first line that is not one. */
function parseVariables(text) {
  const values = {};
  for (const [index, line] of text.split("\n").entries()) {
    if (!line.trim()) continue;
    const at = line.indexOf("=");
    if (at < 1) return new Error(`Line ${index + 1} is not name=value.`);
    values[line.slice(0, at).trim()] = line.slice(at + 1).trim();
  }
  return values;
}
