// The result of a solo test: the server's numbers, a WPM chart and the error breakdown.
//
// The server scores the keystroke log itself (POST /api/v1/results); its
// answer is what this screen shows. When the submission failed, the
// browser's own count stands in and the screen says so.

import { wpmChart } from "../chart.js";
import { h } from "../dom.js";

const show = (ch) => (ch === " " ? "␣" : ch);

function stat(label, value, id) {
  return h("div", { class: "stat" }, h("b", { id }, value), h("small", {}, label));
}

/** Numbers in one shape: the server's result (accuracy in %) or the local count. */
function numbers(test, saved) {
  const local = test.stats();
  if (saved?.result) {
    const r = saved.result;
    const series = (r.per_second ?? []).map((s, i) => ({ t: i + 1, wpm: s.wpm }));
    return { ...r, durationMs: r.duration_ms, series: series.length ? series : test.wpmSeries() };
  }
  return { wpm: local.wpm, raw_wpm: local.rawWpm, accuracy: local.accuracy * 100, durationMs: local.elapsedMs,
    series: test.wpmSeries() };
}

function breakdown(test, chars) {
  const { rows, corrected } = test.errorBreakdown();
  return h("section", { class: "breakdown", id: "error-breakdown" },
    h("h3", {}, "Errors"),
    h("p", { class: "muted" }, `${test.misses} wrong keystrokes, ${corrected} of them corrected.`,
      chars ? ` Final text: ${chars.correct} correct, ${chars.incorrect} incorrect, ${chars.extra} extra, ${chars.missed} missed characters.` : ""),
    rows.length
      ? h("table", {},
        h("thead", {}, h("tr", {}, h("th", {}, "Expected"), h("th", {}, "Typed instead"), h("th", {}, "Times"))),
        h("tbody", {}, rows.map((row) => h("tr", {},
          h("td", {}, h("kbd", {}, show(row.expected))),
          h("td", {}, row.typedAs.map(([ch, n]) => h("span", { class: "typed-as" }, h("kbd", {}, show(ch)), n > 1 ? ` ×${n}` : ""))),
          h("td", {}, String(row.total))))))
      : h("p", { class: "good" }, "No mistakes. Clean run!"));
}

/**
 * test: the finished TypingTest; saved: the POST /api/v1/results answer, or
 * null when it was not accepted; again(): starts the next test.
 */
export function resultView(test, saved, again, kind = null) {
  const n = numbers(test, saved);
  return h("div", { class: "result", id: "result", dataset: { saved: String(Boolean(saved)) } },
    h("div", { class: "stats" },
      stat("wpm", String(Math.round(n.wpm)), "result-wpm"),
      stat("raw", String(Math.round(n.raw_wpm)), "result-raw"),
      stat("accuracy", `${Math.round(n.accuracy)}%`, "result-acc"),
      n.consistency !== undefined ? stat("consistency", `${Math.round(n.consistency)}%`, "result-consistency") : null,
      stat("time", `${(n.durationMs / 1000).toFixed(1)} s`, "result-time")),
    saved?.personal_best ? h("p", { class: "badge", id: "personal-best" }, "New personal best!") : null,
    saved?.result?.flagged ? h("p", { class: "muted", id: "result-flag" }, `Kept off the leaderboards until reviewed: ${saved.result.flag_reason}`) : null,
    saved?.result && !saved.result.flagged && saved.result.ranked === false
      ? h("p", { class: "muted", id: "result-unranked" }, "Too short for the leaderboards: saved to your history.") : null,
    saved && !saved.stored ? h("p", { class: "muted" }, "Guest results are scored but not kept. Sign up to keep them.") : null,
    saved ? null : h("p", { class: "muted", id: "result-local" }, kind === "practice"
      ? "Practice is not scored: these numbers are this browser's own count."
      : "Not saved: these numbers are this browser's own count."),
    h("figure", { class: "chart-box" }, wpmChart(n.series), h("figcaption", {}, "WPM over time")),
    breakdown(test, saved?.result?.chars),
    h("button", { type: "button", class: "primary", id: "again", onclick: again }, "Next test"));
}
