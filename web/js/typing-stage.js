// One typing run in a stage element: the text, the key capture, live numbers
// and (time mode) the clock. Shared by the solo test and course lessons.

import { h, replace } from "./dom.js";
import { keyCapture, TextView } from "./text-view.js";
import { TypingTest } from "./typing.js";

const TICK_MS = 250;

function liveStats() {
  const wpm = h("b", { id: "live-wpm" }, "0");
  const acc = h("b", { id: "live-acc" }, "100%");
  const time = h("b", { id: "live-time" }, "0.0 s");
  const el = h("div", { class: "live", "aria-live": "off" },
    h("span", {}, wpm, " wpm"), h("span", {}, acc, " acc"), h("span", {}, time));
  return {
    el,
    show(stats, left = null) {
      wpm.textContent = String(Math.round(stats.wpm));
      acc.textContent = `${Math.round(stats.accuracy * 100)}%`;
      time.textContent = left === null ? `${(stats.elapsedMs / 1000).toFixed(1)} s` : `${Math.max(0, left / 1000).toFixed(1)} s left`;
    },
  };
}

/**
 * Plays `spec` ({text, mode, seconds?}) in `stage`: `above` (nodes) are shown
 * over the text, `hint` under it. `onStart()` runs at the first key,
 * `onFinish(test)` once when the text is done or the clock runs out.
 * Returns the cleanup (stops the clock).
 */
export function playText(stage, spec, { hint, above = [], onStart = () => {}, onFinish }) {
  const test = new TypingTest(spec.text);
  const text = new TextView(spec.text);
  const stats = liveStats();
  const limitMs = spec.mode === "time" ? spec.seconds * 1000 : null;
  const left = (now) => (limitMs === null ? null : limitMs - (test.startedAt === null ? 0 : now - test.startedAt));
  let over = false;
  const end = () => {
    if (over) return;
    over = true;
    typing.setEnabled(false);
    onFinish(test);
  };
  const typing = keyCapture(text, (key) => {
    const now = performance.now();
    if (over || (limitMs !== null && left(now) <= 0)) return;
    const before = test.position;
    if (!test.press(key, now)) return;
    if (test.keystrokes.length === 1) onStart();
    text.update(test.typed, Math.min(before, test.position));
    stats.show(test.stats(now), left(now));
    if (test.finished) end();
  });
  replace(stage, above, stats.el, typing.el, h("p", { class: "muted hint" }, hint));
  stats.show(test.stats(), limitMs);
  stage.dataset.phase = "typing";
  const timer = setInterval(() => {
    const now = performance.now();
    if (test.startedAt === null || test.finished || over) return;
    stats.show(test.stats(now), left(now));
    if (limitMs !== null && left(now) <= 0) end();
  }, TICK_MS);
  typing.focus();
  return () => clearInterval(timer);
}
