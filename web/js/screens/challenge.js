// The daily challenge: one text for everyone today (UTC), one scored attempt
// at a time, the challenge's leaderboard and the caller's streak.

import { leaderboard, myStreak, submitAttempt, todaysChallenge } from "../api.js";
import { authStore } from "../auth-store.js";
import { boardTable } from "../board-table.js";
import { h, replace } from "../dom.js";
import { notifyError } from "../notices.js";
import { keyCapture, TextView } from "../text-view.js";
import { TypingTest } from "../typing.js";

const BOARD_RETRY_MS = 1200; // the challenges worker feeds the board a moment after an attempt

export function challengeScreen() {
  return {
    mount(view) {
      let alive = true;
      let timer = null;
      const stage = h("div", { class: "stage", id: "challenge-stage" }, h("p", { class: "muted" }, "Loading today's challenge…"));
      const board = h("div", { id: "challenge-board" });
      const streak = h("p", { class: "muted", id: "challenge-streak" });
      const title = h("h2", {}, "Daily challenge");
      view.append(h("div", { class: "lobby" },
        h("section", { class: "card" }, title, streak, stage),
        h("aside", { class: "card" }, h("h3", {}, "Today's board"), board)));
      const guest = authStore.isGuest;

      const loadBoard = async (challenge) => {
        try {
          const answer = await leaderboard(challenge.board, { window: "daily" });
          if (alive) replace(board, boardTable(answer.entries, authStore.current?.user?.id, "challenge-table"));
        } catch (err) {
          if (alive) replace(board, h("p", { class: "muted" }, "The board could not be loaded."));
        }
      };
      const loadStreak = () => guest ? (streak.textContent = "Guests can practise the text; sign up to enter.")
        : myStreak().then((s) => {
          if (alive) streak.textContent = `Streak: ${s.current} day${s.current === 1 ? "" : "s"} (best ${s.best}).`;
        }).catch(() => {});

      const play = (challenge) => {
        const test = new TypingTest(challenge.text);
        const text = new TextView(challenge.text, "challenge-text");
        const typing = keyCapture(text, (key) => {
          const before = test.position;
          if (!test.press(key, performance.now())) return;
          text.update(test.typed, Math.min(before, test.position));
          if (test.finished) done(challenge, test, typing);
        }, "challenge-input");
        stage.dataset.phase = "typing";
        replace(stage, h("p", { class: "muted" }, `${challenge.date} · ${challenge.count} words · ${challenge.lang}`), typing.el,
          h("p", { class: "muted hint" }, "One text for everyone today. The clock starts with your first key."));
        typing.focus();
      };

      const done = async (challenge, test, typing) => {
        typing.setEnabled(false);
        const local = test.stats();
        let attempt = null;
        if (!guest) {
          try {
            attempt = (await submitAttempt(challenge.id, test.keystrokes)).attempt;
          } catch (err) {
            notifyError(err);
          }
        }
        if (!alive) return;
        const wpm = attempt ? attempt.wpm : local.wpm;
        const acc = attempt ? attempt.accuracy : local.accuracy * 100;
        stage.dataset.phase = "result";
        replace(stage, h("div", { class: "result", id: "challenge-result", dataset: { saved: String(Boolean(attempt)) } },
          h("div", { class: "stats" },
            h("div", { class: "stat" }, h("b", { id: "challenge-wpm" }, String(Math.round(wpm))), h("small", {}, "wpm")),
            h("div", { class: "stat" }, h("b", {}, `${Math.round(acc)}%`), h("small", {}, "accuracy"))),
          attempt ? h("p", { class: "muted" }, attempt.flagged ? "Recorded, but kept off the board for review." : "Recorded. Your best attempt today counts.")
            : h("p", { class: "muted" }, "Not recorded: these numbers are this browser's own count."),
          h("button", { type: "button", class: "primary", id: "challenge-again", onclick: () => play(challenge) }, "Try again")));
        loadBoard(challenge);
        loadStreak();
        clearTimeout(timer);
        timer = setTimeout(() => alive && (loadBoard(challenge), loadStreak()), BOARD_RETRY_MS);
      };

      todaysChallenge().then((challenge) => {
        if (!alive) return;
        title.textContent = `Daily challenge · ${challenge.date}`;
        play(challenge);
        loadBoard(challenge);
        loadStreak();
      }).catch((err) => {
        notifyError(err);
        replace(stage, h("p", { class: "muted" }, "Today's challenge could not be loaded."));
      });
      return () => {
        alive = false;
        clearTimeout(timer);
      };
    },
  };
}
