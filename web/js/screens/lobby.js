// Lobby chat with presence: who is here and with what status, and messages.

import { canModerate } from "../admin-api.js";
import { authStore } from "../auth-store.js";
import { h, replace } from "../dom.js";
import { notify, notifyError } from "../notices.js";

const STATUSES = ["online", "away", "racing"];

function timeOf(ts) {
  return new Date(ts).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

function messageItem(message, myId, actions) {
  const mine = message.user?.id === myId;
  const { report, remove } = actions;
  return h("li", { class: `msg${mine ? " mine" : ""}`, dataset: { id: message.id } },
    h("span", { class: "msg-meta" }, h("b", { class: "msg-user" }, message.user?.name ?? "?"), " ", timeOf(message.ts),
      report && !mine ? h("button", { type: "button", class: "link msg-report", title: "Report to the moderators",
        onclick: () => report(message.id) }, "Report") : null,
      remove ? h("button", { type: "button", class: "link msg-delete", title: "Delete for everyone",
        onclick: () => remove(message.id) }, "Delete") : null),
    h("span", { class: "msg-text" }, message.text));
}

function memberItem(member, myId) {
  return h("li", { class: "member", dataset: { id: member.id, name: member.name, status: member.status } },
    h("span", { class: `dot dot-${member.status}`, "aria-hidden": "true" }),
    h("span", { class: "member-name" }, member.name),
    member.guest ? h("small", { class: "tag" }, "guest") : null,
    member.id === myId ? h("small", { class: "tag" }, "you") : null,
    h("small", { class: "member-status" }, member.status));
}

export function lobbyScreen(gateway, lobby) {
  return {
    mount(view) {
      const myId = () => gateway.user?.id;
      const members = h("ul", { class: "members", id: "members", "aria-label": "People in the lobby" });
      const messages = h("ol", { class: "messages", id: "messages", "aria-live": "polite" });
      const input = h("input", { name: "text", id: "chat-input", maxLength: 500, autocomplete: "off",
        placeholder: "Say hello…", "aria-label": "Message" });
      const status = h("select", { id: "my-status", "aria-label": "Your status" },
        STATUSES.map((s) => h("option", { value: s }, s)));
      status.addEventListener("change", () => lobby.setStatus(status.value).catch(notifyError));

      const form = h("form", { class: "chat-form", id: "chat-form" }, input, h("button", { type: "submit", class: "primary" }, "Send"));
      form.addEventListener("submit", async (event) => {
        event.preventDefault();
        const text = input.value.trim();
        if (!text) return;
        try {
          await lobby.send(text);
          input.value = "";
        } catch (err) {
          notifyError(err);
        }
      });

      const renderMembers = () => {
        const sorted = [...lobby.members.values()].sort((a, b) => a.name.localeCompare(b.name));
        replace(members, sorted.map((m) => memberItem(m, myId())));
        const me = lobby.members.get(myId());
        if (me && STATUSES.includes(me.status)) status.value = me.status;
      };
      // Guests read and chat but do not report; staff delete (the server checks both).
      const actions = () => ({
        report: gateway.user && !gateway.user.guest ? (id) => lobby.report(id)
          .then(() => notify("Reported to the moderators")).catch(notifyError) : null,
        remove: canModerate(authStore.current?.user?.role) ? (id) => lobby.remove(id).catch(notifyError) : null,
      });
      const renderMessages = () => {
        replace(messages, lobby.messages.map((m) => messageItem(m, myId(), actions())));
        messages.scrollTop = messages.scrollHeight;
      };
      const addMessage = (message) => {
        messages.append(messageItem(message, myId(), actions()));
        messages.scrollTop = messages.scrollHeight;
      };

      view.append(h("div", { class: "lobby" },
        h("section", { class: "card chat" }, h("h2", {}, "Lobby"), messages, form),
        h("aside", { class: "card" }, h("h3", {}, "Here now"),
          h("label", { class: "field inline" }, h("span", { class: "field-label" }, "Your status"), status), members)));

      const offs = [
        lobby.on("members", renderMembers),
        lobby.on("messages", renderMessages),
        lobby.on("message", addMessage),
        gateway.on("state", ({ state }) => {
          input.disabled = state !== "online";
        }),
      ];
      input.disabled = gateway.state !== "online";
      renderMembers();
      renderMessages();
      lobby.enter();
      return () => {
        lobby.pause();
        for (const off of offs) off();
      };
    },
  };
}
