// Inline SVG charts (no library): a line chart over time and a bar chart. Each is an
// <svg role="img"> with a text description, plus a legend as a list.

import { h, svg } from "./dom.js";

export const COLORS = ["#1f5fbf", "#c0392b", "#1d7a3a", "#8e44ad", "#d68910", "#117a8b", "#6d4c41", "#c2185b"];
const W = 640;
const H = 260;
const PAD = { left: 48, right: 12, top: 12, bottom: 28 };

function scale(domain, range) {
  const [d0, d1] = domain;
  const [r0, r1] = range;
  const span = d1 - d0 || 1;
  return (v) => r0 + ((v - d0) / span) * (r1 - r0);
}

function ticks(min, max, count = 4) {
  if (min === max) return [min];
  const step = (max - min) / count;
  return Array.from({ length: count + 1 }, (_, i) => min + i * step);
}

/**
 * series: [{name, points: [{x: number, y: number, label: string}]}]; formatX names the
 * first and last x. Returns a figure with the chart and its legend.
 */
export function lineChart(series, { label, yLabel = "", format = (v) => v.toFixed(0), formatX = String }) {
  const points = series.flatMap((s) => s.points);
  if (!points.length) return h("p", { class: "empty" }, "Nothing to chart yet.");
  const xs = points.map((p) => p.x);
  const ys = points.map((p) => p.y);
  let [yMin, yMax] = [Math.min(...ys), Math.max(...ys)];
  const margin = Math.max((yMax - yMin) * 0.1, 5);
  yMin -= margin;
  yMax += margin;
  const x = scale([Math.min(...xs), Math.max(...xs)], [PAD.left, W - PAD.right]);
  const y = scale([yMin, yMax], [H - PAD.bottom, PAD.top]);
  const grid = ticks(yMin, yMax).map((v) => [
    svg("line", { class: "grid", x1: PAD.left, x2: W - PAD.right, y1: y(v), y2: y(v) }),
    svg("text", { x: PAD.left - 6, y: y(v) + 4, "text-anchor": "end" }, format(v)),
  ]);
  const lines = series.map((s, i) => {
    const color = COLORS[i % COLORS.length];
    const d = s.points.map((p, j) => `${j ? "L" : "M"}${x(p.x).toFixed(1)},${y(p.y).toFixed(1)}`).join(" ");
    return svg(
      "g",
      { "data-series": s.name },
      svg("path", { class: "line", d, stroke: color }),
      s.points.map((p) =>
        svg("circle", { cx: x(p.x), cy: y(p.y), r: 3, fill: color }, svg("title", {}, `${s.name}: ${p.label}`)),
      ),
    );
  });
  const first = formatX(Math.min(...xs));
  const last = formatX(Math.max(...xs));
  const chart = svg(
    "svg",
    { class: "chart", viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": label },
    svg("title", {}, label),
    grid,
    svg("line", { class: "axis", x1: PAD.left, x2: PAD.left, y1: PAD.top, y2: H - PAD.bottom }),
    svg("line", { class: "axis", x1: PAD.left, x2: W - PAD.right, y1: H - PAD.bottom, y2: H - PAD.bottom }),
    svg("text", { x: PAD.left, y: H - 8 }, first),
    svg("text", { x: W - PAD.right, y: H - 8, "text-anchor": "end" }, last),
    yLabel ? svg("text", { x: PAD.left + 6, y: PAD.top + 10 }, yLabel) : null,
    lines,
  );
  return h("figure", { class: "chart-figure" }, chart, legend(series.map((s) => s.name)));
}

/** bars: [{label, value, title}] */
export function barChart(bars, { label, format = (v) => String(v) }) {
  if (!bars.length) return h("p", { class: "empty" }, "Nothing to chart yet.");
  const max = Math.max(...bars.map((b) => b.value)) || 1;
  const y = scale([0, max], [H - PAD.bottom, PAD.top]);
  const slot = (W - PAD.left - PAD.right) / bars.length;
  const width = Math.max(2, Math.min(48, slot * 0.7));
  const every = Math.ceil(bars.length / 8); // at most ~8 x labels
  return svg(
    "svg",
    { class: "chart", viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": label },
    svg("title", {}, label),
    ticks(0, max).map((v) => [
      svg("line", { class: "grid", x1: PAD.left, x2: W - PAD.right, y1: y(v), y2: y(v) }),
      svg("text", { x: PAD.left - 6, y: y(v) + 4, "text-anchor": "end" }, format(v)),
    ]),
    svg("line", { class: "axis", x1: PAD.left, x2: W - PAD.right, y1: H - PAD.bottom, y2: H - PAD.bottom }),
    bars.map((b, i) => {
      const cx = PAD.left + slot * i + slot / 2;
      return svg(
        "g",
        {},
        svg("rect", { class: "bar", x: cx - width / 2, y: y(b.value), width, height: H - PAD.bottom - y(b.value) }, svg("title", {}, b.title || `${b.label}: ${format(b.value)}`)),
        i % every === 0 ? svg("text", { x: cx, y: H - 8, "text-anchor": "middle" }, b.label) : null,
      );
    }),
  );
}

export function legend(names) {
  return h(
    "ul",
    { class: "legend" },
    names.map((name, i) => {
      const swatch = h("span", { class: "swatch", "aria-hidden": "true" });
      swatch.style.background = COLORS[i % COLORS.length];
      return h("li", {}, swatch, name);
    }),
  );
}
