// The lobby as the client knows it: members with their status, and chat.
//
// Fed by gateway pushes (room.joined, room.presence, chat.message, chat.deleted) and by
// presence.query answers, which the lobby asks for every few seconds since
// status changes are not pushed.

import { Emitter } from "./events.js";

export const LOBBY = "lobby";
const MAX_MESSAGES = 200;
const PRESENCE_POLL_MS = 3000;

export class LobbyState extends Emitter {
  #gateway;
  #poll = null;

  constructor(gateway) {
    super();
    this.#gateway = gateway;
    this.members = new Map(); // id -> {id, name, guest, status}
    this.messages = [];
    this.#reset();
    gateway.on("room.joined", (d) => d.room === LOBBY && this.#snapshot(d));
    gateway.on("room.presence", (d) => d.room === LOBBY && this.#presence(d));
    gateway.on("chat.message", (d) => d.room === LOBBY && this.#message(d));
    gateway.on("chat.deleted", (d) => d.room === LOBBY && this.#deleted(d));
    gateway.on("room.left", (d) => d.room === LOBBY && this.#reset());
    gateway.on("state", ({ state }) => state === "offline" && this.#reset());
  }

  #reset() {
    this.members = new Map();
    this.messages = [];
    this.joined = false;
  }

  /** Joins the lobby (again after reconnects) and starts asking for statuses. */
  enter() {
    this.#gateway.join(LOBBY);
    clearInterval(this.#poll);
    this.#poll = setInterval(() => this.refreshPresence(), PRESENCE_POLL_MS);
  }

  /** Stops polling; the session stays in the room so chat keeps arriving. */
  pause() {
    clearInterval(this.#poll);
    this.#poll = null;
  }

  send(text) {
    return this.#gateway.request("chat.send", { room: LOBBY, text });
  }

  /** Reports a message to the staff's queue (registered users only). */
  report(id, reason = "") {
    return this.#gateway.request("chat.report", { room: LOBBY, id, reason });
  }

  /** Deletes a message for everyone (staff only); the chat.deleted push removes it here. */
  remove(id) {
    return this.#gateway.request("chat.delete", { room: LOBBY, id });
  }

  setStatus(status) {
    return this.#gateway.request("presence.set", { status }).then(() => {
      const me = this.#gateway.user && this.members.get(this.#gateway.user.id);
      if (me) {
        me.status = status;
        this.emit("members", this.members);
      }
    });
  }

  async refreshPresence() {
    const ids = [...this.members.keys()].slice(0, 100);
    if (!ids.length || this.#gateway.state !== "online") return;
    try {
      const { users } = await this.#gateway.request("presence.query", { users: ids });
      for (const [id, status] of Object.entries(users)) {
        const member = this.members.get(id);
        if (member) member.status = status;
      }
      this.emit("members", this.members);
    } catch {
      // A missed poll is harmless: the next one comes in a few seconds.
    }
  }

  #snapshot({ members = [], history = [] }) {
    this.joined = true;
    const before = this.members;
    this.members = new Map(members.map((u) => [u.id, { ...u, status: before.get(u.id)?.status ?? "online" }]));
    const known = new Set(this.messages.map((m) => m.id));
    this.messages = [...this.messages, ...history.filter((m) => !known.has(m.id))]
      .sort((a, b) => a.ts - b.ts)
      .slice(-MAX_MESSAGES);
    this.emit("members", this.members);
    this.emit("messages", this.messages);
    this.refreshPresence();
  }

  #presence({ joined = [], left = [] }) {
    for (const user of joined) this.members.set(user.id, { ...user, status: "online" });
    for (const user of left) this.members.delete(user.id);
    this.emit("members", this.members);
    if (joined.length) this.refreshPresence();
  }

  #deleted({ id }) {
    const before = this.messages.length;
    this.messages = this.messages.filter((m) => m.id !== id);
    if (this.messages.length !== before) this.emit("messages", this.messages);
  }

  #message(message) {
    if (this.messages.some((m) => m.id === message.id)) return;
    this.messages.push(message);
    if (this.messages.length > MAX_MESSAGES) this.messages.shift();
    this.emit("message", message);
  }
}
