// The caller's profile: read and update (GET/PATCH /api/v1/users/me), records (stats,
// WPM over time, personal bests, race history with rating changes) and logout-all.

import { authStore } from "../auth-store.js";
import { getProfile, logoutAll, myCourses, myRaces, myResults, updateProfile, userStats } from "../api.js";
import { wpmChart } from "../chart.js";
import { field, formValues, h, replace } from "../dom.js";
import { LANGUAGES } from "../languages.js";
import { notify, notifyError } from "../notices.js";
import { preferencesCard, verificationBanner } from "./account-mail.js";
import { billingCard } from "./billing.js";

const RACES_PAGE = 10;

const LAYOUTS = ["qwerty", "azerty", "qwertz", "dvorak", "colemak", "colemak-dh", "workman", "other"];

function guestView(view) {
  view.append(h("section", { class: "card", id: "profile" },
    h("h2", {}, `Playing as ${authStore.current.user.name}`),
    h("p", { class: "muted" }, "Guests have no profile. Create an account to keep your results and settings."),
    h("a", { class: "button primary", href: "#/signup" }, "Create an account")));
}

function profileForm(profile, onSaved) {
  const layout = h("select", { name: "keyboard_layout" },
    LAYOUTS.map((name) => h("option", { value: name, selected: name === profile.keyboard_layout }, name)));
  const language = h("select", { name: "language", id: "profile-language" },
    LANGUAGES.map(([code, label]) => h("option", { value: code, selected: code === profile.language }, label)));
  const form = h("form", { class: "card", id: "profile-form", "aria-label": "Edit profile" },
    h("h3", {}, "Edit profile"),
    field("Display name", h("input", { name: "display_name", value: profile.display_name, maxLength: 64, required: true })),
    field("Bio", h("textarea", { name: "bio", value: profile.bio, maxLength: 500, rows: 3 })),
    field("Keyboard layout", layout),
    field("Country", h("input", { name: "country", value: profile.country, maxLength: 2, pattern: "[A-Za-z]{2}",
      placeholder: "e.g. DE", autocomplete: "country" }), "Two-letter ISO code, or empty"),
    field("E-mail language", language,
      "What our e-mails are written in; English where a language has no translation yet"),
    h("label", { class: "field inline" },
      h("input", { type: "checkbox", id: "appear-offline", checked: Boolean(profile.appear_offline) }),
      h("span", { class: "field-label" }, "Appear offline to everyone")),
    h("button", { type: "submit", class: "primary" }, "Save"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const values = formValues(form);
    values.country = values.country.trim().toUpperCase();
    values.appear_offline = form.querySelector("#appear-offline").checked;
    try {
      onSaved(await updateProfile(values));
      notify("Profile saved");
    } catch (err) {
      notifyError(err);
    }
  });
  return form;
}

function summary(profile) {
  const joined = new Date(profile.created_at).toLocaleDateString(); // epoch ms
  return h("section", { class: "card", id: "profile" },
    h("h2", { id: "profile-name" }, profile.display_name || profile.username),
    h("p", { class: "muted" }, `@${profile.username}`, profile.country ? ` · ${profile.country}` : "", ` · joined ${joined}`),
    profile.bio ? h("p", { class: "bio" }, profile.bio) : null,
    h("dl", { class: "facts" },
      h("dt", {}, "E-mail"), h("dd", { id: "profile-email" }, profile.email),
      h("dt", {}, "Keyboard"), h("dd", { id: "profile-layout" }, profile.keyboard_layout),
      h("dt", {}, "Referral code"), h("dd", {}, h("code", {}, profile.referral_code))));
}

function describe(result) {
  return result.mode === "time" ? `time ${result.seconds} s` : `${result.count} words`;
}

const shortDate = (ms) => new Date(ms).toLocaleDateString([], { dateStyle: "short" });
const when = (ms) => new Date(ms).toLocaleString([], { dateStyle: "short", timeStyle: "short" });
const num = (v, digits = 0) => (typeof v === "number" ? v.toFixed(digits) : "—");

function duration(ms) {
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  return m < 60 ? `${m} min ${s % 60} s` : `${Math.floor(m / 60)} h ${m % 60} min`;
}

function fact(label, id, value) {
  return [h("dt", {}, label), h("dd", { id }, value)];
}

function bestName(b) {
  const options = [b.punctuation && "punctuation", b.numbers && "numbers", b.difficulty !== "medium" && b.difficulty];
  const extra = options.filter(Boolean).join(", ");
  return `${b.mode === "time" ? `time ${b.length} s` : `${b.length} words`} · ${b.lang}${extra ? ` · ${extra}` : ""}`;
}

function trendChart(points) {
  if (points.length < 2) return h("p", { class: "muted" }, "Take a few tests to see your WPM over time.");
  // One step per test, oldest to newest: bursts of tests and quiet weeks read alike.
  const series = points.map((p, i) => ({ t: i, wpm: p.wpm }));
  return h("figure", { class: "chart-box" },
    wpmChart(series, { label: "WPM over your latest tests", start: shortDate(points[0].at), end: shortDate(points.at(-1).at) }),
    h("figcaption", {}, `WPM over your latest ${points.length} tests`));
}

/** Stats (GET /users/{username}/stats): totals, rating and rank, streak, WPM trend, bests. */
function statsCard(username) {
  const rating = h("dd", { id: "profile-rating" }, "…");
  const facts = h("dl", { class: "facts", id: "stats-facts" }, h("dt", {}, "Race rating"), rating);
  const trend = h("div", { id: "wpm-trend" });
  const bests = h("div", { id: "personal-bests" });
  const card = h("section", { class: "card", id: "profile-stats" }, h("h3", {}, "Records"), facts, trend,
    h("h3", { class: "sub" }, "Personal bests"), bests);
  userStats(username).then((s) => {
    const r = s.rating;
    rating.textContent = r ? `${r.rating.toFixed(1)} · rank #${r.rank}` : "unrated — finish a race";
    facts.append(
      ...fact("Tests", "stat-tests", String(s.tests)),
      ...fact("Time typed", "stat-time", duration(s.time_typed_ms)),
      ...fact("Average WPM", "stat-average", num(s.average_wpm, 1)),
      ...fact("Best WPM", "stat-best", num(s.best_wpm, 1)),
      ...fact("Races", "stat-races", `${s.races.played} played · ${s.races.won} won`),
      ...fact("Challenge streak", "stat-streak",
        `${s.challenge_streak.current} day${s.challenge_streak.current === 1 ? "" : "s"} (best ${s.challenge_streak.best})`));
    replace(trend, trendChart(s.wpm_trend));
    replace(bests, s.personal_bests.length
      ? h("table", { class: "board" },
        h("thead", {}, h("tr", {}, h("th", {}, "Test"), h("th", {}, "WPM"), h("th", {}, "Acc."), h("th", {}, "When"))),
        h("tbody", {}, s.personal_bests.map((b) => h("tr", { dataset: { category: b.category } },
          h("td", {}, bestName(b)), h("td", {}, num(b.wpm, 1)), h("td", {}, `${Math.round(b.accuracy)}%`),
          h("td", {}, shortDate(b.achieved_at))))))
      : h("p", { class: "muted" }, "No personal bests yet."));
    card.dataset.loaded = "true";
  }).catch((err) => {
    notifyError(err);
    rating.textContent = "—";
  });
  return card;
}

function ratingCell(race) {
  if (!race.rated) return h("td", { class: "muted" }, "unrated");
  const delta = race.rating_after - race.rating_before;
  const sign = delta >= 0 ? "+" : "";
  return h("td", {
    class: delta >= 0 ? "up" : "down",
    title: `${race.rating_before.toFixed(1)} → ${race.rating_after.toFixed(1)}`,
    dataset: { before: race.rating_before, after: race.rating_after },
  }, `${race.rating_after.toFixed(0)} (${sign}${delta.toFixed(Math.abs(delta) < 10 ? 1 : 0)})`);
}

function raceRow(race) {
  const text = race.text ?? "";
  return h("tr", { dataset: { race: race.race, place: race.place } },
    h("td", { title: when(race.at) }, shortDate(race.at)),
    h("td", { class: "race-text", title: text }, text.length > 36 ? `${text.slice(0, 36)}…` : text,
      race.custom ? h("small", { class: "tag" }, "own text") : null,
      race.tournament ? h("small", { class: "tag" }, "tournament") : null),
    h("td", {}, race.finished ? `${race.place}/${race.players ?? "?"}` : "DNF"),
    h("td", {}, num(race.wpm)), h("td", {}, race.accuracy === null ? "—" : `${Math.round(race.accuracy)}%`),
    ratingCell(race));
}

/** The caller's races (GET /users/me/races), newest first, a page at a time. */
function racesCard() {
  const body = h("tbody", {});
  const table = h("table", { class: "board" },
    h("thead", {}, h("tr", {}, h("th", {}, "When"), h("th", {}, "Text"), h("th", {}, "Place"),
      h("th", {}, "WPM"), h("th", {}, "Acc."), h("th", {}, "Rating"))), body);
  const out = h("div", { id: "race-history-list" }, h("p", { class: "muted" }, "Loading races…"));
  const more = h("button", { id: "races-more", hidden: true }, "Older races");
  let cursor = null;
  const load = () => myRaces(RACES_PAGE, cursor).then(({ races, next_cursor: next }) => {
    if (!cursor && !races.length) {
      replace(out, h("p", { class: "muted" }, "No races yet. ", h("a", { href: "#/race" }, "Race someone")));
    } else {
      if (!cursor) replace(out, table);
      body.append(...races.map(raceRow));
    }
    cursor = next;
    more.hidden = !next;
  }).catch((err) => {
    notifyError(err);
    replace(out, h("p", { class: "muted" }, "Races could not be loaded."));
  });
  more.addEventListener("click", load);
  load();
  return h("section", { class: "card", id: "race-history" }, h("h3", {}, "Races"), out, more);
}

/** The latest results, newest first. */
function resultsCard() {
  const list = h("div", { id: "recent-results" }, h("p", { class: "muted" }, "Loading results…"));
  myResults(10).then(({ results }) => {
    replace(list, results.length
      ? h("table", { class: "board" },
        h("thead", {}, h("tr", {}, h("th", {}, "When"), h("th", {}, "Test"), h("th", {}, "WPM"), h("th", {}, "Acc."))),
        h("tbody", {}, results.map((r) => h("tr", { dataset: { id: r.id } },
          h("td", {}, when(r.created_at)),
          h("td", {}, `${describe(r)} · ${r.lang}`, r.flagged ? h("small", { class: "tag" }, "flagged") : null),
          h("td", {}, String(Math.round(r.wpm))), h("td", {}, `${Math.round(r.accuracy)}%`)))))
      : h("p", { class: "muted" }, "No results yet. ", h("a", { href: "#/solo" }, "Take a test")));
  }).catch((err) => {
    notifyError(err);
    replace(list, h("p", { class: "muted" }, "Results could not be loaded."));
  });
  return h("section", { class: "card" }, h("h3", {}, "Recent results"), list);
}

/** The caller's courses: progress, the next lesson, a link to go on. */
function coursesCard() {
  const list = h("div", { id: "my-courses" }, h("p", { class: "muted" }, "Loading courses…"));
  myCourses().then(({ courses }) => {
    replace(list, courses.length
      ? h("ul", { class: "my-courses" }, courses.map((c) => h("li", { dataset: { slug: c.course.slug } },
        h("a", { href: `#/course?slug=${encodeURIComponent(c.course.slug)}` }, c.course.title),
        c.course.premium ? h("span", { class: "tag premium" }, "Premium") : null,
        h("progress", { max: c.lesson_count || 1, value: c.completed_lessons }),
        h("small", { class: "muted" }, ` ${c.completed_lessons}/${c.lesson_count}`,
          c.enrollment.completed_at ? " · completed" : c.next_lesson ? ` · next: ${c.next_lesson.title}` : "",
          c.access ? "" : " · needs a subscription"))))
      : h("p", { class: "muted" }, "No courses yet. ", h("a", { href: "#/courses" }, "Browse courses")));
  }).catch(() => replace(list, h("p", { class: "muted" }, "Courses could not be loaded.")));
  return h("section", { class: "card", id: "profile-courses" }, h("h3", {}, "My courses"), list);
}

/** `onLoggedOut()` runs after logout-all revoked every token. */
export function profileScreen(onLoggedOut) {
  return {
    mount(view) {
      if (authStore.isGuest) return guestView(view);
      let alive = true;
      const root = h("div", { class: "grid-2" }, h("p", { class: "muted" }, "Loading profile…"));
      view.append(root);
      const logout = h("section", { class: "card danger-zone" },
        h("h3", {}, "Security"),
        h("p", { class: "muted" }, "Sign out on every device: all your tokens stop working at once."),
        h("button", { class: "danger", id: "logout-all", onclick: async () => {
          try {
            await logoutAll();
            onLoggedOut();
            notify("Signed out everywhere");
          } catch (err) {
            notifyError(err);
          }
        } }, "Log out everywhere"));
      const show = (profile) => {
        if (!alive) return;
        authStore.updateUser({ display_name: profile.display_name, username: profile.username });
        replace(root, h("div", { class: "stack" }, verificationBanner(profile), summary(profile),
          statsCard(profile.username), racesCard(), resultsCard(), coursesCard(), billingCard(), logout),
        h("div", { class: "stack" }, profileForm(profile, show), preferencesCard()));
      };
      getProfile().then(show).catch((err) => {
        notifyError(err);
        replace(root, h("p", { class: "muted" }, "The profile could not be loaded."));
      });
      return () => {
        alive = false;
      };
    },
  };
}
