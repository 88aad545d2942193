// The caller's profile: read and update (GET/PATCH /api/v1/users/me), and logout-all.

import { authStore } from "../auth-store.js";
import { getProfile, logoutAll, myCourses, myResults, publicProfile, updateProfile } from "../api.js";
import { field, formValues, h, replace } from "../dom.js";
import { notify, notifyError } from "../notices.js";
import { billingCard } from "./billing.js";

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
  const form = h("form", { class: "card", id: "profile-form", "aria-label": "Edit profile" },
    h("h3", {}, "Edit profile"),
    field("Display name", h("input", { name: "display_name", value: profile.display_name, maxLength: 64, required: true })),
    field("Bio", h("textarea", { name: "bio", value: profile.bio, maxLength: 500, rows: 3 })),
    field("Keyboard layout", layout),
    field("Country", h("input", { name: "country", value: profile.country, maxLength: 2, pattern: "[A-Za-z]{2}",
      placeholder: "e.g. DE", autocomplete: "country" }), "Two-letter ISO code, or empty"),
    h("button", { type: "submit", class: "primary" }, "Save"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const values = formValues(form);
    values.country = values.country.trim().toUpperCase();
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

/** Rating (public profile, set after a rated race) and the latest results, newest first. */
function statsCard(username) {
  const rating = h("dd", { id: "profile-rating" }, "…");
  const list = h("div", { id: "recent-results" }, h("p", { class: "muted" }, "Loading results…"));
  publicProfile(username)
    .then((p) => { rating.textContent = typeof p.rating === "number" ? p.rating.toFixed(1) : "unrated — finish a race"; })
    .catch(() => { rating.textContent = "—"; });
  myResults(10).then(({ results }) => {
    replace(list, results.length
      ? h("table", { class: "board" },
        h("thead", {}, h("tr", {}, h("th", {}, "When"), h("th", {}, "Test"), h("th", {}, "WPM"), h("th", {}, "Acc."))),
        h("tbody", {}, results.map((r) => h("tr", { dataset: { id: r.id } },
          h("td", {}, new Date(r.created_at).toLocaleString([], { dateStyle: "short", timeStyle: "short" })),
          h("td", {}, `${describe(r)} · ${r.lang}`, r.flagged ? h("small", { class: "tag" }, "flagged") : null),
          h("td", {}, String(Math.round(r.wpm))), h("td", {}, `${Math.round(r.accuracy)}%`)))))
      : h("p", { class: "muted" }, "No results yet. ", h("a", { href: "#/solo" }, "Take a test")));
  }).catch((err) => {
    notifyError(err);
    replace(list, h("p", { class: "muted" }, "Results could not be loaded."));
  });
  return h("section", { class: "card", id: "profile-stats" }, h("h3", {}, "Racing and results"),
    h("dl", { class: "facts" }, h("dt", {}, "Race rating"), rating), h("h3", { class: "sub" }, "Recent results"), list);
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
        replace(root, h("div", { class: "stack" }, summary(profile), statsCard(profile.username), coursesCard(), billingCard(), logout),
          profileForm(profile, show));
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
