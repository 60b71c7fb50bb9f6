// Where a turn's latency goes: its stages laid end to end, from the end of the caller's speech
// to the first reply audio sent to them (LatencyBreakdown, docs/architecture.md).

import { niceTicks } from "./charts.js";
import { formatMs, h, svg } from "./ui.js";

export const STAGES = [
  { key: "endpoint", label: "End of turn", by: "media" },
  { key: "stt", label: "Transcript", by: "stt" },
  { key: "first_text", label: "First text", by: "agent" },
  { key: "first_audio", label: "First audio", by: "tts" },
  { key: "send", label: "Sent", by: "gateway" },
];

const WIDTH = 560;
const ROW = 30;
const LABEL = 96;
const TOTAL = 70;
const AXIS = 22;

/**
 * The stamped stages of a turn, each starting where the one before ended: stages not stamped
 * before the first (a greeting answers no caller speech) are left out, and so is everything
 * after a gap, whose start is not known.
 */
function spans(latency) {
  const laid = [];
  let start = 0;
  for (const stage of STAGES) {
    const ms = latency[`${stage.key}_ms`];
    if (ms === null || ms === undefined) {
      if (laid.length) break;
      continue;
    }
    laid.push({ ...stage, start, ms });
    start += ms;
  }
  return laid;
}

/** One row per reply ({label, latency}), on one time scale, with a legend of the stages. */
export function waterfall(replies) {
  const rows = replies.map(({ label, latency }) => ({ label, laid: spans(latency) }));
  const longest = Math.max(0, ...rows.map(({ laid }) => laid.reduce((sum, s) => sum + s.ms, 0)));
  const ticks = niceTicks(longest);
  const scale = (WIDTH - LABEL - TOTAL) / ticks[ticks.length - 1];
  const height = rows.length * ROW + AXIS;
  const x = (ms) => LABEL + ms * scale;
  const grid = ticks.map((tick) => svg("g", { class: "grid" },
    svg("line", { x1: x(tick), x2: x(tick), y1: 0, y2: height - AXIS }),
    svg("text", { x: x(tick), y: height - 6, "text-anchor": "middle" }, formatMs(tick))));
  const bars = rows.map(({ label, laid }, i) => {
    const y = i * ROW;
    const total = laid.reduce((sum, s) => sum + s.ms, 0);
    const described = laid.map((s) => `${s.label} ${formatMs(s.ms)}`).join(", ");
    return svg("g", { class: "turn", role: "img", "aria-label": `${label}: ${formatMs(total)} (${described})` },
      svg("text", { x: 0, y: y + ROW / 2, "dominant-baseline": "middle" }, label),
      laid.map((s) => svg("rect", {
        class: `stage stage-${s.key}`, x: x(s.start), y: y + 6, height: ROW - 12, width: Math.max(s.ms * scale, 1),
      }, svg("title", {}, `${s.label} (${s.by}): ${formatMs(s.ms)}`))),
      svg("text", { class: "total", x: x(total) + 6, y: y + ROW / 2, "dominant-baseline": "middle" }, formatMs(total)));
  });
  return h("figure", { class: "waterfall" },
    svg("svg", { viewBox: `0 0 ${WIDTH} ${height}` }, grid, bars),
    h("ul", { class: "legend" }, STAGES.map((s) => h("li", {}, h("span", { class: `swatch stage-${s.key}` }), `${s.label} (${s.by})`))));
}
