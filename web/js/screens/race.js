// Races: queue by difficulty or play a private race by code, count down to the
// server's start time, type with everyone's live progress, see the standings.

import { h, replace } from "../dom.js";
import { LANGUAGES } from "../languages.js";
import { notify, notifyError } from "../notices.js";
import { renderTrack, standingsTable } from "../race-track.js";
import { keyCapture, TextView } from "../text-view.js";
import { TypingTest } from "../typing.js";

const DIFFICULTIES = [["easy", "Easy"], ["medium", "Medium"], ["hard", "Hard"]];
const TICK_MS = 100;

function select(id, label, options, value) {
  return h("label", { class: "field inline" }, h("span", { class: "field-label" }, label),
    h("select", { id, name: id }, options.map(([v, text]) => h("option", { value: v, selected: v === value }, text))));
}

/** Runs `action`, showing a refusal as a message; the button is disabled meanwhile. */
async function guarded(button, action) {
  if (button) button.disabled = true;
  try {
    await action();
  } catch (err) {
    notifyError(err);
  } finally {
    if (button) button.disabled = false;
  }
}

function startView(race, settings) {
  const difficulty = select("race-difficulty", "Difficulty", DIFFICULTIES, settings.difficulty);
  const lang = select("race-lang", "Language", LANGUAGES, settings.lang);
  difficulty.querySelector("select").addEventListener("change", (e) => { settings.difficulty = e.target.value; });
  lang.querySelector("select").addEventListener("change", (e) => { settings.lang = e.target.value; });
  const queue = h("button", { type: "button", class: "primary", id: "race-queue",
    onclick: () => guarded(queue, () => race.queue(settings.difficulty, settings.lang)) }, "Find a race");

  const ownText = h("textarea", { id: "race-own-text", rows: 2, maxLength: 1000, placeholder: "Leave empty for a generated text" });
  const create = h("button", { type: "button", class: "secondary", id: "race-create",
    onclick: () => guarded(create, () => race.create({ text: ownText.value.trim() || undefined,
      difficulty: settings.difficulty, lang: settings.lang })) }, "Create a private race");

  const code = h("input", { id: "race-code-input", name: "code", maxLength: 6, autocomplete: "off",
    autocapitalize: "characters", placeholder: "CODE", "aria-label": "Race code" });
  const joinForm = h("form", { class: "chat-form", id: "race-join-form" }, code,
    h("button", { type: "submit", class: "secondary", id: "race-join" }, "Join"));
  joinForm.addEventListener("submit", (event) => {
    event.preventDefault();
    if (code.value.trim()) guarded(joinForm.querySelector("button"), () => race.join(code.value));
  });

  return h("div", { class: "grid-2" },
    h("section", { class: "stack" }, h("h3", {}, "Quick race"),
      h("p", { class: "muted" }, "Race whoever is waiting at the same difficulty."),
      h("div", { class: "toolbar" }, difficulty, lang), h("div", {}, queue)),
    h("section", { class: "stack" }, h("h3", {}, "Private race"),
      h("details", {}, h("summary", {}, "Use your own text"), ownText),
      h("div", {}, create),
      h("p", { class: "muted" }, "Or join a friend's race with its code:"), joinForm));
}

export function raceScreen(gateway, race, clock) {
  return {
    mount(view) {
      const settings = { difficulty: "medium", lang: "en" };
      const stage = h("div", { class: "race-stage", id: "race-stage" });
      const track = h("ol", { class: "track", id: "race-track", "aria-label": "Players" });
      const status = h("p", { class: "muted", id: "race-status", "aria-live": "polite" });
      view.append(h("section", { class: "card race", id: "race" },
        h("div", { class: "toolbar" }, h("h2", {}, "Race")), status, stage, track));

      let shown = null; // the phase the stage shows
      let ticker = null;
      let startPerf = 0;
      let test = null;
      let typing = null;
      const me = () => gateway.user?.id;

      const stopTicker = () => {
        clearInterval(ticker);
        ticker = null;
      };

      const countdownView = () => {
        const n = h("b", { class: "countdown", id: "race-countdown" }, "…");
        const tick = () => {
          const left = race.startAt - clock.now();
          startPerf = performance.now() + left;
          if (left <= 0) {
            stopTicker();
            race.running();
          } else {
            n.textContent = String(Math.ceil(left / 1000));
          }
        };
        stopTicker();
        ticker = setInterval(tick, TICK_MS);
        tick();
        return h("div", { class: "stack" }, h("p", { class: "muted" }, "Get ready…"), n,
          h("div", { class: "text preview" }, race.text));
      };

      const runningView = () => {
        test = new TypingTest(race.text);
        test.startedAt = 0; // times count from the race's start_at
        const text = new TextView(race.text, "race-text");
        const wpm = h("b", { id: "race-wpm" }, "0");
        const acc = h("b", { id: "race-acc" }, "100%");
        const sinceStart = () => performance.now() - startPerf;
        const onKey = (key) => {
          if (!test || test.finished) return;
          const before = test.position;
          if (!test.press(key, Math.max(0, sinceStart()))) return;
          text.update(test.typed, Math.min(before, test.position));
          race.progress(test.correctChars() === test.position ? test.position : firstWrong(test), test.misses);
          showStats();
          if (test.finished) done();
        };
        const showStats = () => {
          const stats = test.stats(Math.max(0, sinceStart()));
          wpm.textContent = String(Math.round(stats.wpm));
          acc.textContent = `${Math.round(stats.accuracy * 100)}%`;
        };
        typing = keyCapture(text, onKey, "race-input");
        ticker = setInterval(() => test && !test.finished && test.keystrokes.length && showStats(), 250);
        setTimeout(() => typing?.focus(), 0);
        gateway.send("presence.set", { status: "racing" });
        return h("div", {}, h("div", { class: "live" }, h("span", {}, wpm, " wpm"), h("span", {}, acc, " acc")), typing.el);
      };

      const done = async () => {
        typing.setEnabled(false);
        stopTicker();
        status.textContent = "Finished! Waiting for the others…";
        try {
          const mine = await race.finish(test.keystrokes);
          if (race.phase !== "finished") status.textContent = `You finished #${mine.place} at ${Math.round(mine.wpm)} wpm. Waiting for the others…`;
        } catch (err) {
          notifyError(err);
          if (race.phase !== "finished") status.textContent = "The server did not accept this finish.";
        }
      };

      const lobbyView = () => {
        const start = h("button", { type: "button", class: "primary", id: "race-start", onclick: () => race.start() }, "Start the race");
        const leave = h("button", { type: "button", class: "secondary", id: "race-leave", onclick: () => race.leave() }, "Leave");
        return h("div", { class: "stack" },
          h("p", {}, "Race code: ", h("b", { class: "race-code", id: "race-code" }, race.code ?? "—")),
          h("p", { class: "muted" }, "Share the code; whoever has it can join until the start."),
          h("div", { class: "toolbar" }, race.isHost ? start : h("span", { class: "muted", id: "race-wait-host" }, "Waiting for the host to start…"), leave));
      };

      const finishedView = () => {
        const again = h("button", { type: "button", class: "primary", id: "race-again", onclick: () => race.reset() }, "Race again");
        gateway.send("presence.set", { status: "online" });
        const mine = race.mine;
        status.textContent = mine ? `Race over: you finished #${mine.place} at ${Math.round(mine.wpm)} wpm.` : "Race over.";
        return h("div", { class: "stack" }, h("h3", {}, "Standings"),
          h("div", { class: "table-scroll" }, standingsTable(race.standings ?? [], me())), h("div", {}, again));
      };

      const render = () => {
        const phase = race.phase;
        const key = `${phase}:${race.race}:${phase === "lobby" ? race.isHost : ""}`;
        if (key !== shown) {
          shown = key;
          if (phase !== "running") stopTicker();
          if (phase !== "running") typing = null;
          stage.dataset.phase = phase;
          if (phase === "idle") {
            status.textContent = "";
            replace(stage, startView(race, settings));
          } else if (phase === "queued") {
            status.textContent = "Looking for opponents…";
            const cancel = h("button", { type: "button", class: "secondary", id: "race-cancel",
              onclick: () => guarded(cancel, () => race.cancel()) }, "Cancel");
            replace(stage, h("div", { class: "queued" }, h("span", { class: "spinner", "aria-hidden": "true" }), cancel));
          } else if (phase === "lobby") {
            status.textContent = "";
            replace(stage, lobbyView());
          } else if (phase === "countdown") {
            status.textContent = "";
            replace(stage, countdownView());
          } else if (phase === "running") {
            status.textContent = "Go!";
            replace(stage, runningView());
          } else if (phase === "finished") {
            replace(stage, finishedView());
          }
        }
        track.hidden = phase === "idle" || phase === "queued" || phase === "finished"; // the standings say it all
        renderTrack(track, race.players, race.text.length, me());
      };

      const offs = [
        race.on("change", render),
        race.on("error", notifyError),
        gateway.on("state", ({ state }) => state === "online" && !clock.synced && clock.sync(gateway)),
      ];
      if (gateway.state === "online") clock.sync(gateway);
      if (race.phase === "running") race.reset(); // the keys typed before leaving the screen are gone
      render();
      return () => {
        for (const off of offs) off();
        stopTicker();
        if (race.phase === "queued") race.cancel({ keepSeat: false }).catch(() => {});
        else if (["lobby", "countdown", "running"].includes(race.phase)) {
          notify(race.phase === "lobby" ? "You left the race." : "You left the race: it counts as a forfeit.");
          race.leave();
        }
      };
    },
  };
}

/** The position of the first wrong character: progress counts only the correct prefix. */
function firstWrong(test) {
  const i = test.typed.findIndex((ch, k) => ch !== test.text[k]);
  return i < 0 ? test.position : i;
}
