// Messages for the person at the keyboard: errors from REST or the gateway, and notes.

import { h } from "./dom.js";

const SHOW_MS = { error: 8000, info: 4000 };
const MAX_VISIBLE = 4;

let container = null;

export function mountNotices(el) {
  container = el;
}

/** Shows `text`; kind is "error" or "info". Clicking a notice dismisses it. */
export function notify(text, kind = "info") {
  if (!container) return;
  const notice = h("div", { class: `notice notice-${kind}`, role: kind === "error" ? "alert" : "status",
    onclick: () => notice.remove() }, text);
  container.append(notice);
  while (container.children.length > MAX_VISIBLE) container.firstElementChild.remove();
  setTimeout(() => notice.remove(), SHOW_MS[kind] ?? SHOW_MS.info);
}

/** Shows an error from api.js or gateway.js (anything with code and message). */
export function notifyError(err) {
  const message = err?.message || String(err);
  notify(err?.code ? `${message} (${err.code})` : message, "error");
}
