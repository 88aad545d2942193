// A keyboard heat map: each key coloured by the typist's speed on it (mean
// latency) or by its error rate, from GET /api/v1/insights/me `keys`.

import { h } from "./dom.js";

const ROWS = ["1234567890-=", "qwertyuiop[]", "asdfghjkl;'", "zxcvbnm,./"];

/** 0 (good) .. 1 (bad) → a colour from green through yellow to red. */
function heat(x) {
  const hue = Math.round(120 * (1 - Math.max(0, Math.min(1, x))));
  return `hsl(${hue} 70% 42%)`;
}

/**
 * keys: [{key, hits, misses, accuracy, latency_ms}]; measure: "speed" | "errors".
 * Keys never typed stay grey.
 */
export function keyboardHeatMap(keys, measure = "speed") {
  const byKey = new Map(keys.map((k) => [k.key.toLowerCase(), k]));
  const latencies = keys.filter((k) => k.hits > 0).map((k) => k.latency_ms);
  const fast = Math.min(...latencies, Infinity);
  const slow = Math.max(...latencies, -Infinity);
  const score = (k) => {
    if (measure === "errors") return Math.min(1, (100 - k.accuracy) / 20); // 20 % misses is fully red
    return slow > fast ? (k.latency_ms - fast) / (slow - fast) : 0;
  };
  const cap = (label, ch, wide = "") => {
    const k = byKey.get(ch);
    const title = k ? `${label}: ${Math.round(k.latency_ms)} ms, ${k.accuracy}% accurate (${k.hits + k.misses} typed)` : `${label}: not typed yet`;
    return h("span", { class: `key${wide}${k ? "" : " unseen"}`, title, dataset: { key: ch, ...(k ? { latency: String(k.latency_ms), accuracy: String(k.accuracy) } : {}) },
      style: k ? { background: heat(score(k)) } : {} }, label);
  };
  return h("div", { class: "keyboard", id: "heatmap", dataset: { measure }, role: "img",
    "aria-label": measure === "errors" ? "Error rate per key" : "Speed per key" },
    ROWS.map((row, i) => h("div", { class: "key-row", style: { paddingLeft: `${i * 0.6}rem` } }, [...row].map((ch) => cap(ch, ch)))),
    h("div", { class: "key-row" }, cap("space", " ", " space")),
    h("div", { class: "legend" }, h("span", { class: "swatch", style: { background: heat(0) } }), measure === "errors" ? " few errors " : " fast ",
      h("span", { class: "swatch", style: { background: heat(1) } }), measure === "errors" ? " many errors" : " slow"));
}
