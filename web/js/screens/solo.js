// The solo typing test: words or time mode, or a practice text from the
// insights; fetch a text, type it, send the keystroke log, show the result.

import { newTest, submitResult } from "../api.js";
import { h, replace } from "../dom.js";
import { LANGUAGES } from "../languages.js";
import { notifyError } from "../notices.js";
import { playText } from "../typing-stage.js";
import { resultView } from "./result.js";

const MODES = [["words", "Words"], ["time", "Time"]];
const COUNTS = [10, 25, 50, 100];
const SECONDS = [15, 30, 60];
export const PRACTICE_KEY = "typogram.practice"; // sessionStorage: the text from GET /practice/next

function select(id, label, options, value) {
  return h("label", { class: "field inline" }, h("span", { class: "field-label" }, label),
    h("select", { id, name: id }, options.map(([v, text]) => h("option", { value: v, selected: String(v) === String(value) }, text))));
}

function takePractice() {
  const raw = sessionStorage.getItem(PRACTICE_KEY);
  sessionStorage.removeItem(PRACTICE_KEY);
  try {
    return raw ? JSON.parse(raw) : null;
  } catch {
    return null;
  }
}

export function soloScreen(gateway) {
  const settings = { mode: "words", lang: "en", count: 25, seconds: 30 };
  return {
    mount(view, params) {
      let practice = params.get("practice") ? takePractice() : null;
      let cleanupTest = () => {};
      const stage = h("div", { class: "stage" });
      const modeSelect = select("mode", "Mode", MODES, settings.mode);
      const langSelect = select("lang", "Language", LANGUAGES, settings.lang);
      const countSelect = select("count", "Words", COUNTS.map((n) => [n, String(n)]), settings.count);
      const secondsSelect = select("seconds", "Seconds", SECONDS.map((n) => [n, `${n} s`]), settings.seconds);
      const restart = h("button", { type: "button", class: "secondary", id: "new-test", onclick: () => load() }, "New test");
      const showMode = () => {
        countSelect.hidden = settings.mode !== "words";
        secondsSelect.hidden = settings.mode !== "time";
      };
      const on = (wrapper, fn) => wrapper.querySelector("select").addEventListener("change", (e) => {
        fn(e.target.value);
        practice = null;
        showMode();
        load();
      });
      on(modeSelect, (v) => { settings.mode = v; });
      on(langSelect, (v) => { settings.lang = v; });
      on(countSelect, (v) => { settings.count = Number(v); });
      on(secondsSelect, (v) => { settings.seconds = Number(v); });
      showMode();
      const title = h("h2", {}, "Solo test");
      view.append(h("section", { class: "card solo", id: "solo" },
        h("div", { class: "toolbar" }, title, modeSelect, langSelect, countSelect, secondsSelect, restart), stage));

      const finish = async (test, spec) => {
        gateway.send("presence.set", { status: "online" });
        cleanupTest();
        let saved = null;
        if (spec.test_id) {
          try {
            saved = await submitResult(spec.test_id, test.keystrokes);
          } catch (err) {
            notifyError(err);
          }
        }
        replace(stage, resultView(test, saved, () => { practice = null; load(); }, spec.practice ? "practice" : null));
        stage.dataset.phase = "result";
        stage.querySelector("button")?.focus();
      };

      const play = (spec) => {
        cleanupTest = playText(stage, spec, {
          hint: spec.practice
            ? `Practice: words chosen for ${[...spec.practice.keys, ...spec.practice.bigrams].join(" ") || "your weak spots"}. Not scored.`
            : "Start typing — the clock starts with your first key.",
          onStart: () => gateway.send("presence.set", { status: "racing" }),
          onFinish: (test) => finish(test, spec),
        });
      };

      let loading = 0;
      const load = async () => {
        const ticket = ++loading;
        cleanupTest();
        title.textContent = practice ? "Practice" : "Solo test";
        if (practice) {
          play({ text: practice.text, mode: "words", practice: practice.focus ?? { keys: [], bigrams: [] } });
          return;
        }
        stage.dataset.phase = "loading";
        replace(stage, h("p", { class: "muted" }, "Getting a text…"));
        try {
          const spec = await newTest({ mode: settings.mode, count: settings.count, seconds: settings.seconds, lang: settings.lang });
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
