// Charts drawn as inline SVG: lines over days, columns over days, and bars of counts.

import { h, svg } from "./ui.js";

const WIDTH = 480;
const HEIGHT = 180;
const MARGIN = { top: 12, right: 12, bottom: 26, left: 52 };
const MAX_X_LABELS = 7;

/** Round steps (1, 2 or 5 times a power of ten, at least `least`) from 0 up to `max` or past. */
export function niceTicks(max, { count = 4, least = 0 } = {}) {
  if (!(max > 0)) return [0, 1];
  const rough = Math.max(max / count, least);
  const power = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= rough);
  const ticks = [];
  for (let value = 0; value < max + step; value += step) ticks.push(value);
  return ticks;
}

/** Lines over `labels` (days): each series {name, values, tone}; null values leave a gap. */
export function lineChart({ title, labels, series, format, formatLabel = String }) {
  const values = series.flatMap((s) => s.values).filter((v) => v !== null);
  const ticks = niceTicks(Math.max(0, ...values));
  const plot = plotArea(ticks, format);
  const x = (i) => MARGIN.left + (labels.length < 2 ? plot.width / 2 : (i * plot.width) / (labels.length - 1));
  const lines = series.map(({ name, values: points, tone }) => {
    let path = "";
    points.forEach((value, i) => {
      if (value === null) return;
      path += `${path && points[i - 1] !== null ? "L" : "M"}${x(i).toFixed(1)},${plot.y(value).toFixed(1)}`;
    });
    return svg("g", { class: `series tone-${tone}` },
      svg("path", { d: path }),
      points.map((value, i) => value !== null && svg("circle", { cx: x(i), cy: plot.y(value), r: 2.5 },
        svg("title", {}, `${name}, ${formatLabel(labels[i])}: ${format(value)}`))));
  });
  return figure(title, [plot.grid, xLabels(labels, x, formatLabel), lines],
    legend(series.map(({ name, tone }) => [name, tone])));
}

/** Columns over `labels` (days). */
export function columnChart({ title, labels, values, formatLabel = String }) {
  const ticks = niceTicks(Math.max(0, ...values), { least: 1 }); // whole calls
  const plot = plotArea(ticks, String);
  const slot = plot.width / Math.max(labels.length, 1);
  const x = (i) => MARGIN.left + slot * (i + 0.5);
  const columns = values.map((value, i) => svg("rect", {
    class: "column", x: x(i) - slot * 0.35, width: slot * 0.7,
    y: plot.y(value), height: plot.y(0) - plot.y(value),
  }, svg("title", {}, `${formatLabel(labels[i])}: ${value}`)));
  return figure(title, [plot.grid, xLabels(labels, x, formatLabel), columns]);
}

/** Horizontal bars of counts, largest first: [[label, count], ...]. */
export function barList(entries) {
  const largest = Math.max(1, ...entries.map(([, count]) => count));
  return h("ul", { class: "bars" }, entries.map(([label, count]) => {
    const bar = h("span", { class: "bar" });
    bar.style.width = `${(100 * count) / largest}%`;
    return h("li", {}, h("span", { class: "bar-label" }, label), h("span", { class: "bar-track" }, bar),
      h("span", { class: "bar-count" }, count.toLocaleString()));
  }));
}

function plotArea(ticks, format) {
  const width = WIDTH - MARGIN.left - MARGIN.right;
  const height = HEIGHT - MARGIN.top - MARGIN.bottom;
  const top = ticks[ticks.length - 1];
  const y = (value) => MARGIN.top + height - (value / top) * height;
  const grid = svg("g", { class: "grid" }, ticks.map((tick) => [
    svg("line", { x1: MARGIN.left, x2: WIDTH - MARGIN.right, y1: y(tick), y2: y(tick) }),
    svg("text", { x: MARGIN.left - 6, y: y(tick), "text-anchor": "end", "dominant-baseline": "middle" }, format(tick)),
  ]));
  return { width, y, grid };
}

function xLabels(labels, x, formatLabel) {
  const every = Math.ceil(labels.length / MAX_X_LABELS);
  return svg("g", { class: "axis" }, labels.map((label, i) =>
    i % every === 0 && svg("text", { x: x(i), y: HEIGHT - 8, "text-anchor": "middle" }, formatLabel(label))));
}

function legend(entries) {
  return h("ul", { class: "legend" }, entries.map(([name, tone]) =>
    h("li", {}, h("span", { class: `swatch tone-${tone}` }), name)));
}

function figure(title, drawing, ...after) {
  return h("figure", { class: "chart" },
    h("figcaption", {}, title),
    svg("svg", { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: "img", "aria-label": title }, drawing),
    after);
}
