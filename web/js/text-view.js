// The text being typed (one span per character, with the caret) and the
// invisible field that captures keys over it, shared by solo, race and challenge.

import { h } from "./dom.js";
import { BACKSPACE } from "./typing.js";

/** The text as one span per character, re-classed as the typist moves. */
export class TextView {
  constructor(text, id = "test-text") {
    this.spans = [...text].map((ch) => h("span", { class: "ch" }, ch));
    this.el = h("div", { class: "text", id, "aria-label": "Text to type" }, this.spans);
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

/**
 * A transparent textarea over `textView` (so phone keyboards work): characters
 * from `input` events, Backspace from `keydown`; each key goes to onKey(key).
 * Returns {el, focus(), setEnabled(bool)}; `el` is the box to place.
 */
export function keyCapture(textView, onKey, id = "typing-input") {
  const capture = h("textarea", { class: "capture", id, autocapitalize: "off", autocomplete: "off",
    spellcheck: false, "aria-label": "Type the text here" });
  let enabled = true;
  capture.addEventListener("keydown", (event) => {
    if (event.key === BACKSPACE) {
      event.preventDefault();
      if (enabled) onKey(BACKSPACE);
    } else if (event.key === "Enter" || event.key === "Tab") {
      event.preventDefault();
    }
  });
  capture.addEventListener("input", (event) => {
    const typed = event.data ?? capture.value;
    capture.value = "";
    if (!enabled) return;
    for (const ch of typed) onKey(ch);
  });
  const el = h("div", { class: "typing-box", onclick: () => capture.focus() }, textView.el, capture);
  return {
    el,
    focus: () => capture.focus(),
    setEnabled(on) {
      enabled = on;
      el.classList.toggle("locked", !on);
    },
  };
}
