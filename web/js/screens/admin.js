// The staff area (#/admin): users, bans, reported messages and flagged results
// (moderators, admins), the audit log (admins), posts and courses (editors, admins). Tabs show by role; every
// action is checked again by the server, which answers 403 to anyone else.

import { authStore } from "../auth-store.js";
import {
  auditLog, banUser, canEdit, canModerate, grantRole, isAdmin, resetSessions, revokeRole, searchUsers,
  STAFF_ROLES, unbanUser, userDetail,
} from "../admin-api.js";
import { field, h, replace } from "../dom.js";
import { notify, notifyError } from "../notices.js";
import { coursesTab } from "./admin-courses.js";
import { postsTab } from "./admin-posts.js";
import { queueTab } from "./admin-queues.js";

const BAN_LENGTHS = [["3600000", "1 hour"], ["86400000", "1 day"], ["604800000", "7 days"],
  ["2592000000", "30 days"], ["", "Until lifted"]];
const ROLES = ["user", "moderator", "editor", "admin"];

export const when = (ms) => (ms == null ? "—" : new Date(ms).toLocaleString());

function tabsFor(role) {
  const tabs = [];
  if (canModerate(role)) {
    tabs.push(["users", "Users"], ["bans", "Bans"], ["reports", "Reports"], ["flags", "Flags"]);
  }
  if (isAdmin(role)) tabs.push(["audit", "Audit log"]);
  if (canEdit(role)) tabs.push(["posts", "Posts"], ["courses", "Courses"]);
  return tabs;
}

function banText(ban) {
  if (!ban) return "";
  return `banned ${ban.ends_at ? `until ${when(ban.ends_at)}` : "until lifted"}: ${ban.reason}`;
}

function userRow(user, open) {
  return h("tr", { dataset: { user: user.username } },
    h("td", {}, h("button", { type: "button", class: "link", onclick: () => open(user.id) }, user.username)),
    h("td", {}, user.email), h("td", {}, user.role),
    h("td", { class: user.ban ? "bad" : "muted" }, user.ban ? banText(user.ban) : "—"));
}

function userPanel(panel, userId, onChange) {
  const role = authStore.current.user.role;
  const show = async () => {
    let user;
    try {
      user = await userDetail(userId);
    } catch (err) {
      notifyError(err);
      return;
    }
    const reason = h("input", { id: "ban-reason", maxLength: 500, required: true, placeholder: "Why" });
    const length = h("select", { id: "ban-length" }, BAN_LENGTHS.map(([v, t]) => h("option", { value: v }, t)));
    const act = (fn, done) => async () => {
      try {
        await fn();
        notify(done);
        onChange();
        show();
      } catch (err) {
        notifyError(err);
      }
    };
    const banForm = h("form", { class: "stack", id: "ban-form" },
      field("Reason", reason), field("For", length),
      h("button", { type: "submit", class: "danger", id: "ban" }, user.ban ? "Replace the ban" : "Ban"));
    banForm.addEventListener("submit", (event) => {
      event.preventDefault();
      const until = length.value ? Date.now() + Number(length.value) : null;
      act(() => banUser(user.id, reason.value.trim(), until), `${user.username} is banned`)();
    });
    const roleSelect = h("select", { id: "role-select" }, ROLES.map((r) => h("option", { value: r, selected: r === user.role }, r)));
    replace(panel, h("div", { class: "card", id: "user-panel", dataset: { user: user.username } },
      h("h3", {}, user.username, " ", h("span", { class: "tag" }, user.role)),
      h("p", { class: "muted" }, `${user.email} · joined ${when(user.created_at)} · ${user.id}`),
      user.ban ? h("p", { class: "badge", id: "ban-status" }, banText(user.ban)) : null,
      h("div", { class: "grid-2" },
        banForm,
        h("div", { class: "stack" },
          user.ban ? h("button", { type: "button", id: "unban", onclick: act(() => unbanUser(user.id, "lifted by staff"), "Ban lifted") }, "Lift the ban") : null,
          h("button", { type: "button", id: "reset-sessions", onclick: act(() => resetSessions(user.id), "Signed out everywhere") }, "Sign out everywhere"),
          isAdmin(role) ? h("div", { class: "toolbar" }, field("Role", roleSelect),
            h("button", { type: "button", id: "grant-role", onclick: act(() => (roleSelect.value === "user"
              ? revokeRole(user.id) : grantRole(user.id, roleSelect.value)), "Role changed") }, "Set role")) : null)),
      h("h4", {}, "Bans"),
      user.bans.length ? h("ul", { id: "ban-history" }, user.bans.map((b) => h("li", {},
        `${when(b.created_at)}: ${b.reason} (${b.ends_at ? `until ${when(b.ends_at)}` : "until lifted"})`,
        b.lifted_at ? ` — lifted ${when(b.lifted_at)} ${b.lift_reason}` : ""))) : h("p", { class: "muted" }, "None."),
      h("h4", {}, "Recent audit entries"),
      auditTable(user.audit)));
  };
  show();
}

function auditTable(entries) {
  return h("div", { class: "table-scroll" }, h("table", { class: "board", id: "audit-table" },
    h("thead", {}, h("tr", {}, ["When", "Action", "Outcome", "User", "Actor", "Detail"].map((c) => h("th", {}, c)))),
    h("tbody", {}, entries.map((e) => h("tr", { dataset: { action: e.action } },
      h("td", {}, when(e.at)), h("td", {}, e.action), h("td", {}, e.outcome),
      h("td", {}, e.user_id ?? "—"), h("td", {}, e.actor_id ?? "—"),
      h("td", {}, h("code", {}, JSON.stringify(e.detail))))))));
}

function usersTab(root, { bannedOnly }) {
  let ticket = 0;
  const list = h("tbody", { id: "user-list" });
  const panel = h("div", { id: "user-detail" });
  const search = h("input", { type: "search", id: "user-search", placeholder: "Username, e-mail or id", maxLength: 254 });
  const load = async () => {
    const mine = ++ticket;
    try {
      const page = await searchUsers({ q: search.value.trim(), banned: bannedOnly ? "true" : "", limit: 50 });
      if (mine !== ticket) return;
      replace(list, page.users.map((u) => userRow(u, (id) => userPanel(panel, id, load))));
      list.dataset.loaded = String(mine);
    } catch (err) {
      notifyError(err);
    }
  };
  let debounce = null;
  search.addEventListener("input", () => { clearTimeout(debounce); debounce = setTimeout(load, 250); });
  root.append(h("div", { class: "toolbar" }, h("h3", {}, bannedOnly ? "Banned users" : "Users"), search),
    h("div", { class: "table-scroll" }, h("table", { class: "board" },
      h("thead", {}, h("tr", {}, ["User", "E-mail", "Role", "Ban"].map((c) => h("th", {}, c)))), list)),
    panel);
  load();
  return () => { ticket += 1; clearTimeout(debounce); };
}

function auditTab(root) {
  const filters = { action: h("input", { id: "audit-action", placeholder: "action, e.g. user.* or login" }),
    actor: h("input", { id: "audit-actor", placeholder: "actor id" }),
    user: h("input", { id: "audit-user", placeholder: "user id" }) };
  const body = h("div", { id: "audit" });
  const more = h("button", { type: "button", class: "secondary", id: "audit-more", hidden: true }, "Older entries");
  let cursor = null;
  let entries = [];
  const load = async (append = false) => {
    try {
      const params = Object.fromEntries(Object.entries(filters).map(([k, el]) => [k, el.value.trim()]));
      const page = await auditLog({ ...params, cursor: append ? cursor : "", limit: 50 });
      entries = append ? entries.concat(page.entries) : page.entries;
      cursor = page.next_cursor;
      more.hidden = !cursor;
      replace(body, auditTable(entries));
    } catch (err) {
      notifyError(err);
    }
  };
  const form = h("form", { class: "toolbar" }, ...Object.values(filters), h("button", { type: "submit" }, "Filter"));
  form.addEventListener("submit", (event) => { event.preventDefault(); load(); });
  more.addEventListener("click", () => load(true));
  root.append(h("h3", {}, "Audit log"), form, body, more);
  load();
}

export function adminScreen() {
  return {
    mount(view, params) {
      const role = authStore.current?.user?.role;
      if (!STAFF_ROLES.has(role)) {
        view.append(h("section", { class: "card", id: "admin-refused" }, h("h2", {}, "Staff only"),
          h("p", { class: "muted" }, "This area is for moderators, editors and admins.")));
        return null;
      }
      const tabs = tabsFor(role);
      const current = tabs.some(([id]) => id === params.get("tab")) ? params.get("tab") : tabs[0][0];
      const root = h("div", { id: `admin-${current}` });
      view.append(h("section", { class: "card", id: "admin" },
        h("div", { class: "toolbar" }, h("h2", {}, "Staff"),
          h("nav", { class: "chips", id: "admin-tabs", "aria-label": "Staff sections" }, tabs.map(([id, label]) =>
            h("a", { class: `chip${id === current ? " active" : ""}`, href: `#/admin?tab=${id}`, dataset: { tab: id } }, label)))),
        root));
      if (current === "users") return usersTab(root, { bannedOnly: false });
      if (current === "bans") return usersTab(root, { bannedOnly: true });
      if (current === "reports" || current === "flags") return queueTab(root, current);
      if (current === "audit") return auditTab(root);
      if (current === "posts") return postsTab(root, params);
      return coursesTab(root);
    },
  };
}
