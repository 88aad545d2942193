// The staff's review queues in the staff area (moderators, admins): reported chat
// messages (#/admin?tab=reports) and flagged results (#/admin?tab=flags). Each
// item is decided once, with a note; the server audits it and answers 409 to a
// second decision, which shows as an error and reloads the list.

import { decideFlag, decideReport, listFlags, listReports } from "../admin-api.js";
import { h, replace } from "../dom.js";
import { notify, notifyError } from "../notices.js";

const when = (ms) => (ms == null ? "—" : new Date(ms).toLocaleString());

// What differs between the two queues; the list, paging and deciding are shared.
const QUEUES = {
  reports: {
    title: "Reported messages",
    statuses: ["open", "resolved", "dismissed"],
    verdicts: [["resolve", "Resolve"], ["dismiss", "Dismiss"]],
    list: listReports,
    decide: decideReport,
    items: (page) => page.reports,
    view: (r) => [
      h("p", {}, h("strong", {}, r.message.user.name || r.message.user.id), " in ",
        h("code", {}, r.room), h("span", { class: "muted" }, ` · ${when(r.message.ts)}`)),
      h("blockquote", { class: "reported-text" }, r.message.text),
      h("p", { class: "muted" }, `Reported ${when(r.created_at)} by ${r.reporter_id}`,
        r.reason ? `: ${r.reason}` : ""),
    ],
  },
  flags: {
    title: "Flagged results",
    statuses: ["open", "approved", "rejected"],
    verdicts: [["approve", "Approve"], ["reject", "Reject"]],
    list: listFlags,
    decide: decideFlag,
    items: (page) => page.flags,
    view: (f) => [
      h("p", {}, h("strong", {}, f.username || f.user_id), ` · ${f.kind} · ${Math.round(f.wpm)} wpm`,
        h("span", { class: "muted" }, ` · ${when(f.created_at)}`)),
      h("p", {}, f.reasons.map((r) => h("span", { class: "tag" }, r)), " ", f.message),
      h("details", {}, h("summary", {}, "Evidence"), h("code", {}, JSON.stringify(f.evidence))),
    ],
  },
};

function decided(item) {
  return h("p", { class: "muted" }, `${item.status} by ${item.reviewed_by} ${when(item.reviewed_at)}`,
    item.note ? `: ${item.note}` : "");
}

export function queueTab(root, kind) {
  const queue = QUEUES[kind];
  let ticket = 0;
  let cursor = null;
  let items = [];
  const status = h("select", { id: `${kind}-status` }, queue.statuses.map((s) => h("option", { value: s }, s)));
  const body = h("div", { id: `${kind}-list`, class: "stack" });
  const more = h("button", { type: "button", class: "secondary", id: `${kind}-more`, hidden: true }, "More");

  const card = (item) => {
    const note = h("input", { maxLength: 500, placeholder: "Note (optional)", class: "decision-note" });
    const act = (verdict) => async () => {
      try {
        await queue.decide(item.id, verdict, note.value.trim());
        notify(`${verdict}: done`);
      } catch (err) {
        notifyError(err);
      }
      load();
    };
    return h("article", { class: "card queue-item", dataset: { id: item.id } },
      ...queue.view(item),
      item.status === "open"
        ? h("div", { class: "toolbar" }, note, queue.verdicts.map(([verdict, label]) =>
          h("button", { type: "button", dataset: { verdict }, onclick: act(verdict) }, label)))
        : decided(item));
  };

  const load = async (append = false) => {
    const mine = ++ticket;
    try {
      const page = await queue.list({ status: status.value, cursor: append ? cursor : "", limit: 20 });
      if (mine !== ticket) return;
      items = append ? items.concat(queue.items(page)) : queue.items(page);
      cursor = page.next_cursor;
      more.hidden = !cursor;
      replace(body, items.length ? items.map(card) : h("p", { class: "muted" }, "Nothing here."));
      body.dataset.loaded = String(mine);
    } catch (err) {
      notifyError(err);
    }
  };
  status.addEventListener("change", () => load());
  more.addEventListener("click", () => load(true));
  root.append(h("div", { class: "toolbar" }, h("h3", {}, queue.title), status), body, more);
  load();
  return () => { ticket += 1; };
}
