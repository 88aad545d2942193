// Insights: the keyboard heat map (speed or errors per key), weak keys and
// bigrams, what gets pressed instead, and "practise this" → the solo screen.

import { myInsights, practiceNext } from "../api.js";
import { authStore } from "../auth-store.js";
import { h, replace } from "../dom.js";
import { keyboardHeatMap } from "../keyboard.js";
import { notifyError } from "../notices.js";
import { PRACTICE_KEY } from "./solo.js";

const show = (s) => s.replace(/ /g, "␣");

function chips(id, items) {
  return items.length ? h("ul", { class: "chips", id }, items.map((text) => h("li", { class: "chip" }, text)))
    : h("p", { class: "muted", id }, "Nothing stands out yet.");
}

function report(doc, practise) {
  let measure = "speed";
  const mapBox = h("div", {}, keyboardHeatMap(doc.keys, measure));
  const toggle = h("select", { id: "heatmap-measure", "aria-label": "Colour keys by" },
    h("option", { value: "speed" }, "speed"), h("option", { value: "errors" }, "errors"));
  toggle.addEventListener("change", () => {
    measure = toggle.value;
    replace(mapBox, keyboardHeatMap(doc.keys, measure));
  });
  const summary = doc.trend?.summary ?? {};
  const trend = Object.entries(summary).filter(([, v]) => typeof v === "number")
    .map(([k, v]) => `${k.replace(/_/g, " ")}: ${Math.round(v * 10) / 10}`).join(" · ");
  return [
    h("section", { class: "card" }, h("div", { class: "toolbar" }, h("h3", {}, "Your keyboard"),
      h("label", { class: "field inline" }, h("span", { class: "field-label" }, "Colour by"), toggle)), mapBox,
      h("p", { class: "muted" }, `From your last ${doc.tests} tests.`, trend ? ` ${trend}` : "")),
    h("section", { class: "card stack" },
      h("h3", {}, "Weak keys"), chips("weak-keys", doc.weak_keys.map((k) => `${show(k.key)} ${Math.round(k.latency_ms)} ms · ${Math.round(k.accuracy)}%`)),
      h("h3", {}, "Weak bigrams"), chips("weak-bigrams", doc.weak_bigrams.map((b) => `${show(b.bigram)} ${Math.round(b.latency_ms)} ms`)),
      h("h3", {}, "Pressed instead"), chips("confusions", doc.confusions.map((c) => `${show(c.expected)} → ${show(c.pressed)} ×${c.count}`)),
      h("div", {}, practise)),
  ];
}

export function insightsScreen() {
  return {
    mount(view) {
      const root = h("div", { class: "grid-2", id: "insights" }, h("p", { class: "muted" }, "Loading insights…"));
      view.append(h("h2", {}, "Insights"), root);
      if (authStore.isGuest) {
        replace(root, h("section", { class: "card" }, h("p", { class: "muted" }, "Insights come from your saved results. ",
          h("a", { href: "#/signup" }, "Create an account"), " to get them.")));
        return undefined;
      }
      let alive = true;
      const practise = h("button", { type: "button", class: "primary", id: "practise", onclick: async () => {
        practise.disabled = true;
        try {
          const text = await practiceNext("en", 25);
          sessionStorage.setItem(PRACTICE_KEY, JSON.stringify(text));
          location.hash = "#/solo?practice=1";
        } catch (err) {
          notifyError(err);
        } finally {
          practise.disabled = false;
        }
      } }, "Practise this");
      myInsights().then((doc) => {
        if (!alive) return;
        replace(root, doc.tests || doc.keys.length ? report(doc, practise)
          : [h("section", { class: "card", id: "insights-empty" }, h("p", { class: "muted" }, "No data yet: take a few tests first."), practise)]);
      }).catch((err) => {
        notifyError(err);
        replace(root, h("p", { class: "muted" }, "Insights could not be loaded."));
      });
      return () => { alive = false; };
    },
  };
}
