// Leaderboards: pick a board (test kind and language, or races) and a window;
// the top of it, or the caller's place with the players around it.

import { leaderboard } from "../api.js";
import { authStore } from "../auth-store.js";
import { boardTable } from "../board-table.js";
import { h, replace } from "../dom.js";
import { LANGUAGES } from "../languages.js";
import { notifyError } from "../notices.js";

const KINDS = [["words-25", "25 words"], ["words-50", "50 words"], ["time-15", "15 seconds"], ["time-60", "60 seconds"], ["races", "Races"]];
const WINDOWS = [["daily", "Today"], ["weekly", "This week"], ["alltime", "All time"]];

function picker(id, label, options, value, onChange) {
  const sel = h("select", { id, name: id }, options.map(([v, text]) => h("option", { value: v, selected: v === value }, text)));
  sel.addEventListener("change", () => onChange(sel.value));
  return h("label", { class: "field inline" }, h("span", { class: "field-label" }, label), sel);
}

export function leaderboardsScreen() {
  const choice = { kind: "words-25", lang: "en", window: "alltime", around: false };
  return {
    mount(view) {
      let ticket = 0;
      const out = h("div", { id: "board-out" });
      const note = h("p", { class: "muted", id: "board-note" });
      const guest = authStore.isGuest;
      const lang = picker("board-lang", "Language", LANGUAGES, choice.lang, (v) => { choice.lang = v; load(); });
      const aroundBox = h("input", { type: "checkbox", id: "board-around", checked: choice.around, disabled: guest });
      aroundBox.addEventListener("change", () => { choice.around = aroundBox.checked; load(); });
      const board = () => (choice.kind === "races" ? "races" : `${choice.kind}-${choice.lang}`);

      const load = async () => {
        const mine = ++ticket;
        lang.hidden = choice.kind === "races";
        out.dataset.loading = "true";
        try {
          const answer = await leaderboard(board(), { window: choice.window, around: choice.around });
          if (mine !== ticket) return;
          note.textContent = choice.around
            ? (answer.rank ? `You are #${answer.rank} on ${answer.board} (${answer.period}).` : `You are not on ${answer.board} (${answer.period}) yet.`)
            : `${answer.board} · ${answer.period}`;
          replace(out, boardTable(answer.entries, authStore.current?.user?.id));
        } catch (err) {
          if (mine !== ticket) return;
          notifyError(err);
          replace(out, h("p", { class: "muted" }, "This board could not be loaded."));
        } finally {
          if (mine === ticket) out.dataset.loading = "false";
        }
      };

      view.append(h("section", { class: "card", id: "leaderboards" },
        h("div", { class: "toolbar" }, h("h2", {}, "Leaderboards"),
          picker("board-kind", "Board", KINDS, choice.kind, (v) => { choice.kind = v; load(); }), lang,
          picker("board-window", "Window", WINDOWS, choice.window, (v) => { choice.window = v; load(); }),
          h("label", { class: "field inline", title: guest ? "Sign up to be on the boards" : "" }, aroundBox,
            h("span", { class: "field-label" }, "Around me"))),
        note, out));
      load();
      return () => { ticket += 1; };
    },
  };
}
