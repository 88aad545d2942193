// The top navigation: what a signed-in user or guest can open, and sign-out.

import { STAFF_ROLES } from "./admin-api.js";
import { authStore } from "./auth-store.js";
import { h, replace } from "./dom.js";

// The blog is served as pages of their own, outside the client.
const blog = () => h("a", { href: "/blog", id: "nav-blog" }, "Blog");

export function renderNav(el, current, onSignOut) {
  const link = (route, label) =>
    h("a", { href: `#/${route}`, class: route === current ? "active" : "", "aria-current": route === current ? "page" : false }, label);
  if (!authStore.signedIn) {
    replace(el, link("courses", "Courses"), link("plans", "Premium"), blog(), link("signin", "Sign in"), link("signup", "Sign up"));
    return;
  }
  const user = authStore.current.user;
  const name = user.display_name || user.username || user.name;
  replace(el,
    link("solo", "Solo"),
    link("race", "Race"),
    link("challenge", "Daily"),
    link("courses", "Courses"),
    link("plans", "Premium"),
    link("leaderboards", "Boards"),
    link("insights", "Insights"),
    link("achievements", "Achievements"),
    link("lobby", "Lobby"),
    blog(),
    STAFF_ROLES.has(user.role) ? link("admin", "Staff") : null,
    link("profile", user.guest ? "Guest" : "Profile"),
    h("span", { class: "whoami", id: "whoami", title: user.guest ? "guest" : "" }, name),
    h("button", { type: "button", class: "link", id: "sign-out", onclick: onSignOut }, "Sign out"));
}
