// Building the pages: elements (never from HTML strings, so what callers said stays text),
// and how times, durations and statuses read.

function build(element, props, children) {
  for (const [name, value] of Object.entries(props ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else if (name === "dataset") Object.assign(element.dataset, value);
    else element.setAttribute(name, value === true ? "" : value);
  }
  element.append(...children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false));
  return element;
}

/** An HTML element: h("a", {href: "#/calls", class: "button"}, "Calls"). */
export function h(tag, props, ...children) {
  return build(document.createElement(tag), props, children);
}

/** An SVG element, as `h` builds HTML ones. */
export function svg(tag, props, ...children) {
  return build(document.createElementNS("http://www.w3.org/2000/svg", tag), props, children);
}

/** The page's heading, with what acts on the page beside it. */
export function pageHeader(title, ...actions) {
  document.title = `${title} · voicebus`;
  return h("div", { class: "page-header" }, h("h1", {}, title), h("div", { class: "actions" }, actions));
}

/** A card: a titled section of a page. */
export function card(title, ...content) {
  return h("section", { class: "card" }, title && h("h2", {}, title), content);
}

/** A message in place of content: `kind` is "empty", "error" or "info". */
export function notice(message, kind = "info") {
  return h("p", { class: `notice ${kind}`, role: kind === "error" ? "alert" : null }, message);
}

const ENDED_BADLY = new Set(["busy", "no-answer", "failed", "canceled"]);

/**
 * How far a call has got, in a word: "live", "ended", or the carrier's status of a phone call
 * not answered yet ("ringing") or never answered ("busy"). `call` has the record's `status`
 * (in-progress, completed) and, from the live feed, the carrier's `carrier_status`.
 */
export function callProgress({ status, carrier_status: carrier }) {
  if (ENDED_BADLY.has(carrier)) return carrier;
  if (status === "completed" || carrier === "completed") return "ended";
  if (carrier && carrier !== "in-progress") return carrier;
  return "live";
}

/** A call's progress as a badge: live calls stand out, failed ones warn. */
export function progressBadge(call) {
  const progress = callProgress(call);
  const tone = progress === "live" ? "live" : progress === "ended" ? "ended" : ENDED_BADLY.has(progress) ? "failed" : "waiting";
  return h("span", { class: `badge ${tone}` }, progress);
}

const FLOOR = {
  idle: "Not on a call",
  listening: "Listening",
  user_speaking: "Caller speaking",
  thinking: "Thinking",
  agent_speaking: "Agent speaking",
  agent_turn: "Agent's turn",
  ended: "Call ended",
};

/**
 * Who has the floor: the web call protocol's `state`, "idle" before a call, "ended" after, or
 * "agent_turn" where only the call's events are known (they tell when a reply starts playing,
 * not when it has played: the agent has the floor until the caller speaks).
 */
export function floorBadge(state) {
  return h("span", { class: `floor ${state}`, role: "status", "data-state": state }, FLOOR[state] ?? state);
}

/** How a call reached us: "Browser", "Phone, outbound". */
export function channel({ transport, direction }) {
  const medium = { web: "Browser", twilio: "Phone" }[transport] ?? "–";
  return direction && transport !== "web" ? `${medium}, ${direction}` : medium;
}

const timeFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });
const dayFormat = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric", timeZone: "UTC" });

/** When (an ISO 8601 string, or epoch seconds), in the reader's time zone. */
export function formatTime(when) {
  if (when === null || when === undefined) return "–";
  return timeFormat.format(typeof when === "number" ? new Date(when * 1000) : new Date(when));
}

/** Epoch seconds (the live feed's `at`) as ISO 8601, as the API writes times. */
export function iso(epochSeconds) {
  return new Date(epochSeconds * 1000).toISOString();
}

/** A UTC day (YYYY-MM-DD) as "Nov 25". */
export function formatDay(day) {
  return dayFormat.format(new Date(`${day}T00:00:00Z`));
}

/** Seconds as "4 min 05 s", "12.3 s". */
export function formatSeconds(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const minutes = Math.floor(seconds / 60);
  return `${minutes} min ${String(Math.round(seconds % 60)).padStart(2, "0")} s`;
}

/** Milliseconds as "512 ms". */
export function formatMs(ms) {
  return ms === null || ms === undefined ? "–" : `${Math.round(ms).toLocaleString()} ms`;
}

/** How long from `start` to `end` (ISO 8601 strings), "–" when either is unknown. */
export function formatSpan(start, end) {
  if (!start || !end) return "–";
  return formatSeconds((Date.parse(end) - Date.parse(start)) / 1000);
}

/** The part of a call id worth reading: web-6f1c0b2e… for a long one. */
export function shortId(callId) {
  return callId.length > 16 ? `${callId.slice(0, 14)}…` : callId;
}
