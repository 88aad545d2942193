// The race track: one row per player with a progress bar and live WPM, and
// the standings table at the end.

import { h, replace } from "./dom.js";

/** Fills `el` with a row per player (seat order); `me` is the caller's id. */
export function renderTrack(el, players, textLength, me) {
  const rows = [...players.values()].sort((a, b) => (a.seat ?? 0) - (b.seat ?? 0)).map((p) => {
    const pct = textLength ? Math.min(100, Math.round((100 * (p.pos ?? 0)) / textLength)) : 0;
    return h("li", { class: `lane${p.id === me ? " me" : ""}${p.connected === false ? " away" : ""}`,
      dataset: { user: p.id, name: p.name, pos: String(p.pos ?? 0), done: String(Boolean(p.done)) } },
      h("span", { class: "lane-name" }, p.name, p.id === me ? h("small", { class: "tag" }, "you") : null,
        p.connected === false ? h("small", { class: "tag" }, "reconnecting") : null),
      h("span", { class: "bar", role: "progressbar", "aria-valuemin": "0", "aria-valuemax": "100", "aria-valuenow": String(pct) },
        h("span", { class: "bar-fill", style: { width: `${pct}%` } })),
      h("span", { class: "lane-wpm" }, p.place ? `#${p.place} · ` : "", `${Math.round(p.wpm ?? 0)} wpm`));
  });
  replace(el, rows);
}

/** The final standings from race.result. */
export function standingsTable(standings, me) {
  return h("table", { class: "standings", id: "race-standings" },
    h("thead", {}, h("tr", {}, h("th", {}, "#"), h("th", {}, "Player"), h("th", {}, "WPM"),
      h("th", {}, "Accuracy"), h("th", {}, "Time"))),
    h("tbody", {}, standings.map((s) => h("tr", { class: s.user === me ? "me" : "", dataset: { place: String(s.place), name: s.name } },
      h("td", {}, String(s.place)),
      h("td", {}, s.name, s.guest ? h("small", { class: "tag" }, "guest") : null),
      h("td", {}, String(Math.round(s.wpm ?? 0))),
      h("td", {}, s.accuracy === null || s.accuracy === undefined ? "—" : `${Math.round(s.accuracy)}%`),
      h("td", {}, s.done && s.time_ms ? `${(s.time_ms / 1000).toFixed(1)} s` : "did not finish")))));
}
