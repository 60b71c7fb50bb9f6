// One call: who and when, the live transcript and who has the floor, each reply's latency, the
// tools the agent used, its workflow, what was drawn from it once over, and its recording.
// The record (analytics) gives what happened before the page opened; the feed, the rest.

import { api, apiBlob, ApiError, follow, whenRecorded } from "../api.js";
import { waterfall } from "../latency.js";
import { Transcript } from "../transcript.js";
import {
  callProgress, card, channel, floorBadge, formatMs, formatSpan, formatTime, h, iso, notice, pageHeader,
  progressBadge, shortId,
} from "../ui.js";

export function showCall(main, signal, callId) {
  const path = `/api/calls/${encodeURIComponent(callId)}`;
  const view = {
    record: null,
    started: null, // the feed's call.started, for a call the record does not hold yet
    ended: null,
    carrier: null,
    floor: "listening",
    replies: new Map(), // reply id -> the caller turn it answers (null: the agent spoke first)
    latencies: new Map(), // reply id -> LatencyBreakdown
    tools: new Map(), // tool call id -> what is known of the call
    workflow: null,
  };
  const transcript = new Transcript();
  const header = h("div");
  const facts = h("dl", { class: "facts" });
  const floor = h("span");
  const problem = h("div");
  const side = h("div", { class: "stack" });
  const recording = h("div");

  async function load() {
    try {
      merge(view, transcript, await api(path, { signal }));
      problem.replaceChildren();
    } catch (error) {
      if (signal.aborted) return;
      const unknown = error instanceof ApiError && error.status === 404;
      problem.replaceChildren(unknown
        ? notice("This call is not on record yet: what happens in it shows here as it happens.", "info")
        : notice(`The call's record could not be loaded: ${error.message}`, "error"));
      if (unknown && !view.ended) whenRecorded(signal, load); // a call that just started
    }
    render();
  }

  function apply(update) {
    transcript.apply(update);
    view.floor = floorAfter(view.floor, update);
    switch (update.type) {
      case "call.started":
        view.started = update;
        break;
      case "call.status":
        view.carrier = update.status;
        break;
      case "call.ended":
        view.ended = update;
        whenRecorded(signal, load); // with what was drawn from the call once over
        break;
      case "reply.text":
        view.replies.set(update.reply_id, update.in_reply_to);
        break;
      case "reply.latency":
        view.latencies.set(update.reply_id, update.latency);
        break;
      case "tool.called":
      case "tool.returned":
        view.tools.set(update.tool_call_id, { ...view.tools.get(update.tool_call_id), ...toolNews(update) });
        break;
      case "workflow.progressed":
        view.workflow = { node: update.node, variables: update.variables };
        break;
      default:
        break;
    }
    render();
  }

  function render() {
    const call = callFacts(view);
    const live = call.status !== "completed";
    const hangUp = live && h("button", { type: "button", class: "button danger", onclick: () => hangUpCall(path, problem) }, "Hang up");
    header.replaceChildren(pageHeader(`Call ${shortId(callId)}`, hangUp));
    facts.replaceChildren(...factList(callId, call));
    floor.replaceChildren(floorBadge(live ? view.floor : "ended"));
    side.replaceChildren(...[latencyCard(view), toolsCard(view), workflowCard(view), resultsCard(view.record)].filter(Boolean));
    if (!live && !recording.hasChildNodes()) recording.append(recordingCard(path, signal));
  }

  main.append(header, problem, facts, h("div", { class: "columns" },
    card("Conversation", h("div", { class: "card-note" }, floor), transcript.element),
    h("div", { class: "stack" }, side, recording)));
  render();
  follow(`${path}/events`, { update: apply, reload: load }, signal);
}

/** Take in the call's record: its turns, their latency, its tools and workflow. */
function merge(view, transcript, record) {
  view.record = record;
  transcript.addTurns(record.turns);
  for (const turn of record.turns) {
    if (turn.role !== "agent") continue;
    view.replies.set(turn.turn_id, turn.in_reply_to);
    if (turn.latency) view.latencies.set(turn.turn_id, turn.latency);
  }
  for (const tool of record.tool_calls ?? []) view.tools.set(tool.tool_call_id, { ...view.tools.get(tool.tool_call_id), ...tool });
  if (record.workflow_node) view.workflow = { node: record.workflow_node, variables: record.variables };
}

/** What is known of the call, from its record and from the feed (which may be ahead of it). */
function callFacts({ record, started, ended, carrier }) {
  const known = record ?? {};
  return {
    agent_id: known.agent_id ?? started?.agent_id,
    transport: known.transport ?? started?.transport,
    direction: known.direction ?? started?.direction,
    from_number: known.from_number ?? started?.from_number,
    to_number: known.to_number ?? started?.to_number,
    started_at: known.started_at ?? (started && iso(started.at)),
    ended_at: known.ended_at ?? (ended && iso(ended.at)),
    end_reason: known.end_reason ?? ended?.reason,
    status: ended ? "completed" : known.status ?? "in-progress",
    carrier_status: carrier,
  };
}

function factList(callId, call) {
  const facts = [
    ["Status", progressBadge(call)],
    ["Agent", call.agent_id ?? "–"],
    ["Channel", channel(call)],
    ["From", call.from_number],
    ["To", call.to_number],
    ["Started", formatTime(call.started_at)],
    ["Duration", call.ended_at ? formatSpan(call.started_at, call.ended_at) : callProgress(call)],
    ["Ended because", call.end_reason],
    ["Call id", h("code", {}, callId)],
  ];
  return facts.filter(([, value]) => value).map(([term, value]) => h("div", {}, h("dt", {}, term), h("dd", {}, value)));
}

/** Who has the floor after `update`, as the feed tells it (a call's own socket says exactly). */
function floorAfter(floor, update) {
  switch (update.type) {
    case "speech.started":
      return "user_speaking";
    case "speech.stopped":
      return "thinking";
    case "transcript.final":
      return floor === "thinking" && !update.text.trim() ? "listening" : floor; // nothing to answer
    case "reply.latency":
      return "agent_turn"; // its reply started playing
    default:
      return floor;
  }
}

function latencyCard({ replies, latencies }) {
  if (!latencies.size) return card("Latency per reply", notice("No reply has played yet.", "empty"));
  let turn = 0;
  const rows = [...latencies.entries()].map(([replyId, latency]) => ({
    label: replies.get(replyId) === null ? "Greeting" : `Turn ${++turn}`,
    latency,
  }));
  return card("Latency per reply", waterfall(rows));
}

/** What a tool.called or tool.returned update tells of the tool call, as the record has it. */
function toolNews(update) {
  const { tool_call_id, name } = update;
  if (update.type === "tool.called") return { tool_call_id, name, arguments: update.arguments, called_at: iso(update.at) };
  const { result, failed, duration_ms } = update;
  return { tool_call_id, name, result, failed, duration_ms, returned_at: iso(update.at) };
}

function toolsCard({ tools }) {
  if (!tools.size) return null;
  return card("Tools", h("ul", { class: "tools" }, [...tools.values()].map((tool) => h("li", {},
    h("div", { class: "tool-call" }, h("code", { class: "tool-name" }, tool.name), h("code", {}, tool.arguments ?? "")),
    tool.result === undefined
      ? h("p", { class: "muted" }, "running…")
      : h("p", { class: tool.failed ? "tool-result failed" : "tool-result" },
        tool.failed ? "Failed: " : "", h("code", {}, tool.result), ` (${formatMs(tool.duration_ms)})`)))));
}

function workflowCard({ workflow }) {
  if (!workflow) return null;
  const variables = Object.entries(workflow.variables);
  return card("Workflow",
    h("p", {}, "At step ", h("code", {}, workflow.node)),
    variables.length ? h("dl", { class: "pairs" }, variables.map(([name, value]) => h("div", {}, h("dt", {}, name), h("dd", {}, value)))) : null);
}

function resultsCard(record) {
  if (!record?.summary && record?.succeeded == null && !record?.extraction) return null;
  const verdict = record.succeeded == null ? null
    : h("p", { class: record.succeeded ? "verdict good" : "verdict bad" },
      record.succeeded ? "Succeeded" : "Did not succeed", record.success_reason ? `: ${record.success_reason}` : "");
  const extracted = Object.entries(record.extraction ?? {});
  return card("After the call",
    verdict,
    record.summary && h("p", {}, record.summary),
    extracted.length ? h("dl", { class: "pairs" }, extracted.map(([name, value]) => h("div", {}, h("dt", {}, name), h("dd", {}, value === null ? "–" : String(value))))) : null);
}

/** The call's recording, fetched with the tab's key (an <audio> cannot send one) and played
 * from memory. */
function recordingCard(path, signal) {
  const player = h("audio", { controls: true, preload: "metadata" });
  const box = card("Recording", player, h("p", { class: "hint" }, "The caller on the left, the agent on the right."));
  const notRecorded = () => player.replaceWith(notice("This call was not recorded.", "empty"));
  player.addEventListener("error", notRecorded);
  apiBlob(`${path}/recording`, { signal }).then((wav) => {
    player.src = URL.createObjectURL(wav);
    signal.addEventListener("abort", () => URL.revokeObjectURL(player.src), { once: true });
  }, () => signal.aborted || notRecorded());
  return box;
}

async function hangUpCall(path, problem) {
  try {
    await api(`${path}/hangup`, { method: "POST", json: { reason: "hung up from the dashboard" } });
  } catch (error) {
    problem.replaceChildren(notice(`The call could not be hung up: ${error.message}`, "error"));
  }
}
