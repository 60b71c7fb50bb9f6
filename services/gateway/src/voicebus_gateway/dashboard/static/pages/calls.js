// Calls, newest first, as they start, ring, and end (the live feed of the list of calls).

import { api, follow, withQuery } from "../api.js";
import { field } from "../forms.js";
import { channel, formatSpan, formatTime, h, iso, notice, pageHeader, progressBadge, shortId } from "../ui.js";

const PAGE = 50;

export function showCalls(main, signal) {
  const filters = { q: "", status: "", transport: "", limit: PAGE };
  const calls = new Map(); // by call id: the record's summary, kept up to date by the feed
  const rows = h("tbody");
  const more = h("button", { type: "button", class: "button secondary", hidden: true }, "Show more");
  const problem = h("div");
  let latest = 0;

  async function load() {
    const request = ++latest;
    try {
      const listed = await api(withQuery("/api/calls", filters), { signal });
      if (request !== latest) return; // a newer load is under way
      const listedIds = new Set(listed.map((call) => call.call_id));
      // Calls the feed told of that the record does not hold yet stay: it will.
      const heard = [...calls.values()].filter((call) => call.heard && !listedIds.has(call.call_id) && matches(filters, call));
      calls.clear();
      for (const call of [...listed, ...heard]) calls.set(call.call_id, call);
      more.hidden = listed.length < filters.limit;
      problem.replaceChildren();
      render();
    } catch (error) {
      if (!signal.aborted) problem.replaceChildren(notice(`The calls could not be loaded: ${error.message}`, "error"));
    }
  }

  function apply(update) {
    let call = calls.get(update.call_id);
    if (!call) {
      if (update.type !== "call.started" && update.type !== "call.status") return;
      call = newCall(update);
      if (!matches(filters, call)) return;
      calls.set(call.call_id, call);
    }
    if (update.type === "call.status") call.carrier_status = update.status;
    if (update.type === "call.ended") {
      Object.assign(call, { status: "completed", ended_at: iso(update.at), end_reason: update.reason });
    }
    render();
  }

  function render() {
    const newestFirst = [...calls.values()].sort((a, b) => (b.started_at ?? "").localeCompare(a.started_at ?? ""));
    rows.replaceChildren(...newestFirst.map(row));
    if (!calls.size) rows.append(h("tr", {}, h("td", { colspan: 7 }, notice("No calls yet.", "empty"))));
  }

  more.addEventListener("click", () => {
    filters.limit += PAGE;
    load();
  });
  main.append(
    pageHeader("Calls", h("a", { class: "button", href: "#/start" }, "Start a call")),
    filterForm(filters, () => {
      filters.limit = PAGE;
      load();
    }),
    problem,
    h("div", { class: "card flush" }, h("table", { class: "table" },
      h("thead", {}, h("tr", {}, ["Call", "Status", "Started", "Agent", "Channel", "From → to", "Duration"].map((title) => h("th", { scope: "col" }, title)))),
      rows)),
    h("p", { class: "more" }, more),
  );
  follow("/api/events", { update: apply, reload: load }, signal);
}

function filterForm(filters, changed) {
  const search = h("input", { type: "search", name: "q", placeholder: "Words either side said" });
  const status = h("select", { name: "status" },
    h("option", { value: "" }, "Any"), h("option", { value: "in-progress" }, "Live"), h("option", { value: "completed" }, "Ended"));
  const transport = h("select", { name: "transport" },
    h("option", { value: "" }, "Any"), h("option", { value: "twilio" }, "Phone"), h("option", { value: "web" }, "Browser"));
  const form = h("form", { class: "filters", role: "search" },
    field("Search", search), field("Status", status), field("Channel", transport),
    h("button", { class: "button secondary", type: "submit" }, "Filter"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    Object.assign(filters, { q: search.value.trim(), status: status.value, transport: transport.value });
    changed();
  });
  for (const select of [status, transport]) select.addEventListener("change", () => form.requestSubmit());
  return form;
}

/** Whether a call the feed told of belongs in the list as it is filtered (what was said in it
 * is not known here: a search shows only recorded calls). */
function matches(filters, call) {
  return !filters.q && (!filters.status || filters.status === call.status) && (!filters.transport || filters.transport === call.transport);
}

/** A call the record does not hold yet, as the feed first told of it. */
function newCall(update) {
  return {
    heard: true,
    call_id: update.call_id,
    status: "in-progress",
    agent_id: update.agent_id ?? null,
    transport: update.transport ?? "twilio", // only phone calls have a carrier status
    direction: update.direction ?? null,
    from_number: update.from_number ?? null,
    to_number: update.to_number ?? null,
    started_at: iso(update.at),
    ended_at: null,
    end_reason: null,
  };
}

function row(call) {
  const numbers = call.from_number || call.to_number ? `${call.from_number ?? "–"} → ${call.to_number ?? "–"}` : "–";
  return h("tr", { "data-call-id": call.call_id },
    h("td", {}, h("a", { href: `#/calls/${encodeURIComponent(call.call_id)}`, title: call.call_id }, shortId(call.call_id))),
    h("td", {}, progressBadge(call)),
    h("td", {}, formatTime(call.started_at)),
    h("td", {}, call.agent_id ?? "–"),
    h("td", {}, channel(call)),
    h("td", {}, numbers),
    h("td", { title: call.end_reason ?? "" }, call.ended_at ? formatSpan(call.started_at, call.ended_at) : "–"));
}
