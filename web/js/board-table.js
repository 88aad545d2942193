// A leaderboard as a table: rank, player, WPM, when; the caller's row marked.

import { h } from "./dom.js";

/** entries: [{rank, user_id, username, wpm, at}] from GET /api/v1/leaderboards/{board}. */
export function boardTable(entries, myId, id = "board") {
  if (!entries.length) return h("p", { class: "muted", id: `${id}-empty` }, "Nobody on this board yet.");
  return h("table", { class: "board", id },
    h("thead", {}, h("tr", {}, h("th", {}, "#"), h("th", {}, "Player"), h("th", {}, "WPM"), h("th", {}, "When"))),
    h("tbody", {}, entries.map((e) => h("tr", { class: e.user_id === myId ? "me" : "", dataset: { rank: String(e.rank), name: e.username } },
      h("td", {}, String(e.rank)),
      h("td", {}, e.username),
      h("td", {}, (Math.round(e.wpm * 10) / 10).toFixed(1)),
      h("td", {}, e.at ? new Date(e.at).toLocaleDateString() : "")))));
}
