// The solo typing test: fetch a text, type it, send the keystroke log, show the result.

import { newTest, submitResult } from "../api.js";
import { h, replace } from "../dom.js";
import { notifyError } from "../notices.js";
import { BACKSPACE, TypingTest } from "../typing.js";
import { resultView } from "./result.js";

// The languages typogram/texts.py has word lists for.
const LANGUAGES = [
  ["en", "English"], ["es", "Español"], ["fr", "Français"], ["de", "Deutsch"], ["it", "Italiano"],
  ["pt", "Português"], ["nl", "Nederlands"], ["pl", "Polski"], ["ru", "Русский"], ["tr", "Türkçe"],
  ["sv", "Svenska"], ["fi", "Suomi"], ["cs", "Čeština"], ["uk", "Українська"], ["id", "Bahasa Indonesia"],
];
const COUNTS = [10, 25, 50, 100];
const TICK_MS = 250;

function select(id, label, options, value) {
  return h("label", { class: "field inline" }, h("span", { class: "field-label" }, label),
    h("select", { id, name: id }, options.map(([v, text]) => h("option", { value: v, selected: String(v) === String(value) }, text))));
}

/** The text as one span per character, re-classed as the typist moves. */
class TextView {
  constructor(text) {
    this.spans = [...text].map((ch) => h("span", { class: "ch" }, ch));
    this.el = h("div", { class: "text", id: "test-text", "aria-label": "Text to type" }, this.spans);
    this.update([], 0);
  }

  update(typed, from) {
    const start = Math.max(0, from - 1);
    for (let i = start; i < this.spans.length; i += 1) {
      const span = this.spans[i];
      const ch = span.textContent;
      span.className = i < typed.length ? (typed[i] === ch ? "ch ok" : "ch bad") : i === typed.length ? "ch caret" : "ch";
      if (i > typed.length + 1) break;
    }
  }
}

function liveStats() {
  const wpm = h("b", { id: "live-wpm" }, "0");
  const acc = h("b", { id: "live-acc" }, "100%");
  const time = h("b", { id: "live-time" }, "0.0 s");
  const el = h("div", { class: "live", "aria-live": "off" },
    h("span", {}, wpm, " wpm"), h("span", {}, acc, " acc"), h("span", {}, time));
  return {
    el,
    show(stats) {
      wpm.textContent = String(Math.round(stats.wpm));
      acc.textContent = `${Math.round(stats.accuracy * 100)}%`;
      time.textContent = `${(stats.elapsedMs / 1000).toFixed(1)} s`;
    },
  };
}

export function soloScreen(gateway) {
  return {
    mount(view) {
      const settings = { lang: "en", count: 25 };
      let cleanupTest = () => {};
      const stage = h("div", { class: "stage" });
      const langSelect = select("lang", "Language", LANGUAGES, settings.lang);
      const countSelect = select("count", "Words", COUNTS.map((n) => [n, String(n)]), settings.count);
      const restart = h("button", { type: "button", class: "secondary", id: "new-test", onclick: () => load() }, "New test");
      langSelect.querySelector("select").addEventListener("change", (e) => { settings.lang = e.target.value; load(); });
      countSelect.querySelector("select").addEventListener("change", (e) => { settings.count = Number(e.target.value); load(); });
      view.append(h("section", { class: "card solo", id: "solo" },
        h("div", { class: "toolbar" }, h("h2", {}, "Solo test"), langSelect, countSelect, restart), stage));

      const finish = async (test, spec) => {
        gateway.send("presence.set", { status: "online" });
        let saved = null;
        try {
          saved = await submitResult(spec.test_id, test.keystrokes);
        } catch (err) {
          notifyError(err);
        }
        cleanupTest();
        replace(stage, resultView(test, saved, () => load()));
        stage.querySelector("button")?.focus();
      };

      const play = (spec) => {
        const test = new TypingTest(spec.text);
        const text = new TextView(spec.text);
        const stats = liveStats();
        const capture = h("textarea", { class: "capture", id: "typing-input", autocapitalize: "off", autocomplete: "off",
          spellcheck: false, "aria-label": "Type the text here" });
        const hint = h("p", { class: "muted hint" }, "Start typing — the clock starts with your first key.");
        const box = h("div", { class: "typing-box", onclick: () => capture.focus() }, text.el, capture);
        replace(stage, stats.el, box, hint);
        stage.dataset.phase = "typing";

        const press = (key) => {
          const before = test.position;
          if (!test.press(key, performance.now())) return;
          if (test.keystrokes.length === 1) gateway.send("presence.set", { status: "racing" });
          text.update(test.typed, Math.min(before, test.position));
          stats.show(test.stats(performance.now()));
          if (test.finished) finish(test, spec);
        };
        capture.addEventListener("keydown", (event) => {
          if (event.key === BACKSPACE) {
            event.preventDefault();
            press(BACKSPACE);
          } else if (event.key === "Enter" || event.key === "Tab") {
            event.preventDefault();
          }
        });
        // Characters come from input events, which phone keyboards send too.
        capture.addEventListener("input", (event) => {
          for (const ch of event.data ?? capture.value) press(ch);
          capture.value = "";
        });
        const timer = setInterval(() => {
          if (test.startedAt !== null && !test.finished) stats.show(test.stats(performance.now()));
        }, TICK_MS);
        cleanupTest = () => clearInterval(timer);
        capture.focus();
      };

      let loading = 0;
      const load = async () => {
        const ticket = ++loading;
        cleanupTest();
        stage.dataset.phase = "loading";
        replace(stage, h("p", { class: "muted" }, "Getting a text…"));
        try {
          const spec = await newTest({ mode: "words", count: settings.count, lang: settings.lang });
          if (ticket === loading) play(spec);
        } catch (err) {
          if (ticket !== loading) return;
          stage.dataset.phase = "error";
          if (err.status === 404 && err.code === "not_found") {
            replace(stage, h("p", { class: "muted", id: "solo-unavailable" }, "Solo tests are not available on this server yet."));
          } else {
            notifyError(err);
            replace(stage, h("p", { class: "muted" }, "No text could be loaded. ", h("button", { class: "link", onclick: () => load() }, "Try again")));
          }
        }
      };
      load();
      return () => {
        loading += 1;
        cleanupTest();
        gateway.send("presence.set", { status: "online" });
      };
    },
  };
}
