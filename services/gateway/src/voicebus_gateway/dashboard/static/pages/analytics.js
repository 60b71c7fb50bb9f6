// Analytics: where the latency goes, day by day; how many calls; how they ended. Everything is
// `GET /api/analytics/summary`, over the whole period and over each of its days (UTC).

import { api, withQuery } from "../api.js";
import { barList, columnChart, lineChart } from "../charts.js";
import { field, offerAgents } from "../forms.js";
import { STAGES } from "../latency.js";
import { card, formatDay, formatMs, formatSeconds, h, notice, pageHeader } from "../ui.js";

const PERIODS = [7, 14, 30];
const MEASURES = [...STAGES.map(({ key, label }) => [key, label]), ["voice_to_voice", "Voice to voice"]];
const DAY_MS = 86_400_000;

export function showAnalytics(main, signal) {
  const period = h("select", { name: "days" }, PERIODS.map((days) => h("option", { value: days, selected: days === 14 }, `Last ${days} days`)));
  const agent = h("select", { name: "agent_id" }, h("option", { value: "" }, "Every agent"));
  const filters = h("form", { class: "filters" }, field("Period", period), field("Agent", agent));
  const content = h("div", { class: "stack" });
  let latest = 0;

  async function load() {
    const request = ++latest;
    const days = lastDays(Number(period.value));
    const summary = (after, before) => api(withQuery("/api/analytics/summary", {
      agent_id: agent.value, started_after: `${after}T00:00:00`, started_before: before && `${before}T00:00:00`,
    }), { signal });
    try {
      const [whole, ...daily] = await Promise.all([
        summary(days[0]),
        ...days.map((day) => summary(day, nextDay(day))),
      ]);
      if (request === latest) content.replaceChildren(...figures(days, whole, daily));
    } catch (error) {
      if (!signal.aborted) content.replaceChildren(notice(`The figures could not be loaded: ${error.message}`, "error"));
    }
  }

  for (const select of [period, agent]) select.addEventListener("change", load);
  main.append(pageHeader("Analytics"), filters, content);
  // Without the agents listed, the figures are every agent's: nothing to say about it.
  api("/api/agents", { signal }).then((agents) => offerAgents([agent], agents), () => {});
  load();
}

function figures(days, whole, daily) {
  if (!whole.calls) return [notice("No calls in this period yet.", "empty")];
  const voice = whole.latency.voice_to_voice;
  const perDay = new Map(whole.calls_per_day.map(({ day, calls }) => [day, calls]));
  return [
    h("div", { class: "tiles" },
      tile("Calls", whole.calls.toLocaleString()),
      tile("Voice to voice, p50", formatMs(voice.p50_ms)),
      tile("Voice to voice, p95", formatMs(voice.p95_ms)),
      tile("Median call", formatSeconds(whole.duration.median_s)),
      tile("Replies cut off", whole.interruption_rate === null ? "–" : `${Math.round(100 * whole.interruption_rate)}%`)),
    whole.capped ? notice("More calls than are summarized at once: the figures are the newest calls'.", "info") : null,
    card("Latency per stage, day by day",
      h("div", { class: "charts" }, MEASURES.map(([key, label]) => lineChart({
        title: label,
        labels: days,
        formatLabel: formatDay,
        format: formatMs,
        series: [
          { name: "p50", tone: "primary", values: daily.map((day) => day.latency[key].p50_ms) },
          { name: "p95", tone: "secondary", values: daily.map((day) => day.latency[key].p95_ms) },
        ],
      })))),
    h("div", { class: "columns" },
      card("Calls per day", columnChart({ title: "Calls started, by day (UTC)", labels: days, values: days.map((day) => perDay.get(day) ?? 0), formatLabel: formatDay })),
      card("Latency over the period", latencyTable(whole.latency))),
    h("div", { class: "columns" },
      card("Outcomes", barList(Object.entries(whole.statuses).map(([status, count]) => [status === "in-progress" ? "live" : "ended", count]))),
      card("Why calls ended", barList(Object.entries(whole.end_reasons)))),
  ].filter(Boolean);
}

function tile(label, value) {
  return h("div", { class: "tile" }, h("div", { class: "tile-value" }, value), h("div", { class: "tile-label" }, label));
}

function latencyTable(latency) {
  return h("table", { class: "table compact" },
    h("thead", {}, h("tr", {}, ["Stage", "Replies", "p50", "p95"].map((title) => h("th", { scope: "col" }, title)))),
    h("tbody", {}, MEASURES.map(([key, label]) => h("tr", {},
      h("th", { scope: "row" }, label),
      h("td", {}, latency[key].turns.toLocaleString()),
      h("td", {}, formatMs(latency[key].p50_ms)),
      h("td", {}, formatMs(latency[key].p95_ms))))));
}

/** The last `count` days (UTC, YYYY-MM-DD), today last. */
function lastDays(count) {
  const today = Date.parse(new Date().toISOString().slice(0, 10));
  return Array.from({ length: count }, (_, i) => new Date(today - (count - 1 - i) * DAY_MS).toISOString().slice(0, 10));
}

function nextDay(day) {
  return new Date(Date.parse(day) + DAY_MS).toISOString().slice(0, 10);
}
