// Achievements: what the caller has unlocked, and progress towards the rest
// (GET /api/v1/achievements/me); guests see the catalogue.

import { achievementCatalogue, myAchievements } from "../api.js";
import { authStore } from "../auth-store.js";
import { h, replace } from "../dom.js";
import { notifyError } from "../notices.js";

function item(a, unlocked) {
  const pct = unlocked ? 100 : Math.round(100 * (a.ratio ?? 0));
  return h("li", { class: `achievement${unlocked ? " unlocked" : ""}`, dataset: { id: a.id, unlocked: String(unlocked) } },
    h("b", {}, a.title, unlocked ? " ✓" : ""),
    h("small", { class: "muted" }, a.description,
      unlocked && a.unlocked_at ? ` · ${new Date(a.unlocked_at).toLocaleDateString()}` : "",
      !unlocked && a.current !== undefined ? ` · ${Math.round(a.current * 10) / 10} / ${a.target}` : ""),
    unlocked ? null : h("span", { class: "bar", role: "progressbar", "aria-valuenow": String(pct), "aria-valuemin": "0", "aria-valuemax": "100" },
      h("span", { class: "bar-fill", style: { width: `${pct}%` } })));
}

export function achievementsScreen() {
  return {
    mount(view) {
      let alive = true;
      const root = h("div", { class: "grid-2", id: "achievements" }, h("p", { class: "muted" }, "Loading achievements…"));
      view.append(h("h2", {}, "Achievements"), root);
      const load = authStore.isGuest
        ? achievementCatalogue().then(({ achievements }) => [
          h("section", { class: "card" }, h("p", { class: "muted" }, "Guests collect nothing. ", h("a", { href: "#/signup" }, "Sign up"), " to start."),
            h("ul", { class: "achievements", id: "achievements-locked" }, achievements.map((a) => item(a, false))))])
        : myAchievements().then(({ unlocked, progress }) => [
          h("section", { class: "card" }, h("h3", {}, `Unlocked (${unlocked.length})`),
            unlocked.length ? h("ul", { class: "achievements", id: "achievements-unlocked" }, unlocked.map((a) => item(a, true)))
              : h("p", { class: "muted", id: "achievements-unlocked" }, "None yet: finish a test.")),
          h("section", { class: "card" }, h("h3", {}, "Next up"),
            h("ul", { class: "achievements", id: "achievements-locked" },
              [...progress].sort((a, b) => b.ratio - a.ratio).map((a) => item(a, false))))]);
      load.then((sections) => alive && replace(root, sections)).catch((err) => {
        notifyError(err);
        replace(root, h("p", { class: "muted" }, "Achievements could not be loaded."));
      });
      return () => { alive = false; };
    },
  };
}
