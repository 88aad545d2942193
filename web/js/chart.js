// A WPM-over-time line chart as inline SVG: no library, scales to its box.

const NS = "http://www.w3.org/2000/svg";
const W = 320;
const H = 160;
const PAD = { left: 34, right: 8, top: 10, bottom: 24 };

function svg(tag, attrs = {}, text) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

function niceMax(value) {
  const step = value <= 50 ? 10 : value <= 150 ? 25 : 50;
  return Math.max(step, Math.ceil(value / step) * step);
}

/**
 * series: [{t, wpm}] with t from 0 (seconds by default); returns an <svg> with axes,
 * grid and the line. `start`/`end` label the two ends of the time axis.
 */
export function wpmChart(series, { label = "WPM over time", start = "0 s", end } = {}) {
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img", "aria-label": label });
  root.append(svg("title", {}, label));
  const tMax = Math.max(1, ...series.map((p) => p.t));
  const yMax = niceMax(Math.max(1, ...series.map((p) => p.wpm)));
  const x = (t) => PAD.left + (t / tMax) * (W - PAD.left - PAD.right);
  const y = (v) => H - PAD.bottom - (v / yMax) * (H - PAD.top - PAD.bottom);

  for (let i = 0; i <= 4; i += 1) {
    const v = (yMax / 4) * i;
    root.append(svg("line", { x1: PAD.left, x2: W - PAD.right, y1: y(v), y2: y(v), class: "chart-grid" }));
    root.append(svg("text", { x: PAD.left - 4, y: y(v) + 3, class: "chart-tick", "text-anchor": "end" }, Math.round(v)));
  }
  root.append(svg("text", { x: W - PAD.right, y: H - 6, class: "chart-tick", "text-anchor": "end" }, end ?? `${tMax.toFixed(0)} s`));
  root.append(svg("text", { x: PAD.left, y: H - 6, class: "chart-tick" }, start));

  if (series.length) {
    const points = [[0, series[0].wpm], ...series.map((p) => [p.t, p.wpm])];
    const d = points.map(([t, v], i) => `${i ? "L" : "M"}${x(t).toFixed(1)},${y(v).toFixed(1)}`).join(" ");
    root.append(svg("path", { d, class: "chart-line" }));
    for (const p of series) root.append(svg("circle", { cx: x(p.t), cy: y(p.wpm), r: 2, class: "chart-dot" }));
  }
  return root;
}
