// The real-time connection (protocol v1): hello, requests with ids, pushes,
// and reconnect with resume.
//
// States: offline → connecting → online; a drop goes to reconnecting, then
// online again with `resumed` telling whether missed pushes were replayed.
// "closed" is final until start() (replaced by another tab, protocol abuse,
// or a token the server refuses and a refresh cannot fix).
//
// {session, seq} lives in sessionStorage so a tab that reconnects, even
// after a reload, asks for exactly what it missed.
//
// The server closes a socket whose token expires (4001), so a signed-in
// user's socket is handed a fresh token (`auth`) a minute before its `exp`,
// without reconnecting. Guests have nothing to refresh with: their tokens
// last a day, and a 4001 then means signing in again.

import { tokenExpiry } from "./auth-store.js";
import { Emitter } from "./events.js";

const RESUME_KEY = "typogram.resume";
const HELLO_ID = 0; // request ids start at 1
const HELLO_TIMEOUT_MS = 8000;
const REQUEST_TIMEOUT_MS = 10000;
const BACKOFF_BASE_MS = 400;
const BACKOFF_MAX_MS = 10000;
const RATE_LIMITED_MIN_MS = 5000;
const RENEW_BEFORE_S = 60; // renew this long before the token's exp
const RENEW_MIN_MS = 1000;

// Close codes after which reconnecting would not help (docs/protocol.md).
const CLOSE_UNAUTHORIZED = 4001;
const CLOSE_REPLACED = 4002;
const CLOSE_ABUSE = 4003;
const CLOSE_RATE_LIMITED = 4029;
// A client-initiated close that the server treats as a drop (not 1000/1001),
// so the session stays resumable.
const CLOSE_CLIENT_DROP = 4000;

export class GatewayError extends Error {
  /** `details`: the error frame's `d.details` ({} without), what the client needs to act on it. */
  constructor(code, message, details = {}) {
    super(message);
    this.code = code;
    this.details = details ?? {};
  }
}

const errorOf = (d) => new GatewayError(d?.code, d?.message, typeof d?.details === "object" ? d.details : {});

function loadResume(userId) {
  try {
    const saved = JSON.parse(sessionStorage.getItem(RESUME_KEY) ?? "null");
    return saved && saved.user === userId ? saved : null;
  } catch {
    return null;
  }
}

export class Gateway extends Emitter {
  #url;
  #getToken;
  #refreshToken;
  #ws = null;
  #state = "offline";
  #stopped = true;
  #attempt = 0;
  #authRetries = 0;
  #timer = null;
  #helloTimer = null;
  #renewTimer = null;
  #token = null;
  #holdMs = null;
  #nextId = 1;
  #pending = new Map();
  #rooms = new Set();
  #userId = null;
  #resume = null;

  /** getToken(): a fresh access token; refreshToken(): a new one after a 4001. */
  constructor({ url, getToken, refreshToken }) {
    super();
    this.#url = url;
    this.#getToken = getToken;
    this.#refreshToken = refreshToken;
    this.user = null;
    this.resumed = false;
  }

  get state() {
    return this.#state;
  }

  get session() {
    return this.#resume?.session ?? null;
  }

  /** Connects (for the user `userId`) and keeps reconnecting until stop(). */
  start(userId) {
    if (!this.#stopped && this.#userId === userId) return;
    if (!this.#stopped) this.stop(); // another user: end the old session first
    this.#userId = userId;
    this.#resume = loadResume(userId);
    this.#stopped = false;
    this.#attempt = 0;
    this.#authRetries = 0;
    this.#open();
  }

  /** Closes normally: the server ends the session, nothing is resumed. */
  stop() {
    this.#stopped = true;
    clearTimeout(this.#timer);
    clearTimeout(this.#helloTimer);
    clearTimeout(this.#renewTimer);
    if (this.#ws) this.#ws.close(1000, "bye");
    this.#ws = null;
    this.#rooms.clear();
    this.#saveResume(null);
    this.user = null;
    this.#setState("offline");
  }

  /** Sends a message with no reply expected; false when not connected. */
  send(t, d = {}) {
    if (this.#state !== "online") return false;
    this.#ws.send(JSON.stringify({ t, d }));
    return true;
  }

  /** Sends a message with an id; resolves with the reply's `d`, rejects on an error reply. */
  request(t, d = {}, timeoutMs = REQUEST_TIMEOUT_MS) {
    if (this.#state !== "online") {
      return Promise.reject(new GatewayError("unavailable", "not connected"));
    }
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new GatewayError("unavailable", `${t}: no reply`));
      }, timeoutMs);
      this.#pending.set(id, { resolve, reject, timer });
      this.#ws.send(JSON.stringify({ t, id, d }));
    });
  }

  /** Joins `room` now if connected, and again after any reconnect that lost it. */
  join(room) {
    this.#rooms.add(room);
    if (this.#state === "online") this.request("room.join", { room }).catch((err) => this.emit("server-error", err));
  }

  leave(room) {
    if (this.#rooms.delete(room) && this.#state === "online") this.send("room.leave", { room });
  }

  /**
   * Hands the live socket a fresh token now (normally a minute before expiry);
   * resolves with the server's `auth.renewed` data. A refused token closes the
   * socket with 4001, which takes the usual refresh-and-reconnect path.
   */
  async renewToken() {
    clearTimeout(this.#renewTimer);
    const token = await this.#refreshToken();
    const renewed = await this.request("auth", { token });
    this.#token = token;
    this.#scheduleRenew();
    this.emit("renewed", renewed);
    return renewed;
  }

  #scheduleRenew() {
    clearTimeout(this.#renewTimer);
    const expiry = tokenExpiry(this.#token ?? "");
    if (!expiry || this.user?.guest) return;
    const leftMs = expiry * 1000 - Date.now();
    // A minute ahead, but never in the first half of a short-lived token's life.
    const inMs = Math.max(RENEW_MIN_MS, leftMs - RENEW_BEFORE_S * 1000, leftMs / 2);
    this.#renewTimer = setTimeout(() => {
      if (this.#state !== "online") return;
      // On failure the socket lives until its exp, then the 4001 path takes over.
      this.renewToken().catch((err) => this.emit("renew-failed", err));
    }, inMs);
  }

  /**
   * Test and debugging hook: drops the socket the way a network would (the
   * server keeps the session for resume); the next attempt waits `holdMs`.
   */
  dropSocket(holdMs = 0) {
    this.#holdMs = holdMs;
    if (this.#ws) this.#ws.close(CLOSE_CLIENT_DROP, "dropped by the client");
  }

  // -- connection lifecycle ---------------------------------------------------

  async #open() {
    this.#setState(this.#attempt === 0 ? "connecting" : "reconnecting", { attempt: this.#attempt });
    let token;
    try {
      token = await this.#getToken();
    } catch (err) {
      this.#giveUp("unauthorized", err.message);
      return;
    }
    if (this.#stopped) return;
    this.#token = token;
    const ws = new WebSocket(this.#url);
    this.#ws = ws;
    ws.onopen = () => {
      const hello = { token };
      if (this.#resume) hello.resume = { session: this.#resume.session, seq: this.#resume.seq };
      ws.send(JSON.stringify({ t: "hello", id: HELLO_ID, d: hello }));
      this.#helloTimer = setTimeout(() => ws.close(CLOSE_CLIENT_DROP, "no welcome"), HELLO_TIMEOUT_MS);
    };
    ws.onmessage = (event) => this.#receive(event.data);
    ws.onclose = (event) => {
      if (this.#ws === ws) this.#closed(event.code, event.reason);
    };
  }

  #closed(code, reason) {
    clearTimeout(this.#helloTimer);
    clearTimeout(this.#renewTimer);
    this.#ws = null;
    for (const { reject, timer } of this.#pending.values()) {
      clearTimeout(timer);
      reject(new GatewayError("unavailable", "connection closed before the reply"));
    }
    this.#pending.clear();
    if (this.#stopped) return;
    if (code === CLOSE_REPLACED) {
      this.#giveUp("replaced", "this session was opened in another tab or window");
    } else if (code === CLOSE_ABUSE) {
      this.#giveUp("bad_request", "the server closed the connection: too many bad messages");
    } else if (code === CLOSE_UNAUTHORIZED) {
      this.#retryWithNewToken();
    } else {
      this.#schedule(code);
    }
    this.emit("closed", { code, reason });
  }

  async #retryWithNewToken() {
    if (this.#authRetries++ > 0) {
      this.#giveUp("unauthorized", "the server refused our token; please sign in again");
      return;
    }
    try {
      await this.#refreshToken();
    } catch (err) {
      this.#giveUp("unauthorized", err.message);
      return;
    }
    this.#schedule(CLOSE_UNAUTHORIZED);
  }

  #schedule(code) {
    const backoff = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** this.#attempt);
    let delay = backoff * (0.5 + Math.random() / 2);
    if (code === CLOSE_RATE_LIMITED) delay = Math.max(delay, RATE_LIMITED_MIN_MS);
    if (this.#holdMs !== null) {
      delay = this.#holdMs;
      this.#holdMs = null;
    }
    this.#attempt += 1;
    this.#setState("reconnecting", { attempt: this.#attempt, inMs: Math.round(delay), code });
    this.#timer = setTimeout(() => this.#open(), delay);
  }

  #giveUp(code, message) {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#setState("closed", { code, message });
    this.emit("server-error", new GatewayError(code, message));
  }

  #setState(state, detail = {}) {
    this.#state = state;
    this.emit("state", { state, resumed: this.resumed, ...detail });
  }

  #saveResume(resume) {
    this.#resume = resume;
    if (resume) sessionStorage.setItem(RESUME_KEY, JSON.stringify({ ...resume, user: this.#userId }));
    else sessionStorage.removeItem(RESUME_KEY);
  }

  // -- frames -----------------------------------------------------------------

  #receive(raw) {
    let frame;
    try {
      frame = JSON.parse(raw);
    } catch {
      return;
    }
    if (frame.t === "welcome") {
      this.#welcome(frame.d);
      return;
    }
    if (typeof frame.s === "number" && this.#resume) {
      this.#saveResume({ session: this.#resume.session, seq: frame.s });
    }
    const pending = frame.re !== undefined ? this.#pending.get(frame.re) : undefined;
    if (pending) {
      this.#pending.delete(frame.re);
      clearTimeout(pending.timer);
      if (frame.t === "error") pending.reject(errorOf(frame.d));
      else pending.resolve(frame.d);
    } else if (frame.t === "error" && !(frame.re === HELLO_ID && frame.d?.code === "unauthorized")) {
      // (A refused hello is followed by close 4001, which refreshes the token.)
      this.emit("server-error", errorOf(frame.d));
    }
    if (frame.t !== "error") this.emit(frame.t, frame.d ?? {});
  }

  #welcome(welcome) {
    clearTimeout(this.#helloTimer);
    const sameSession = this.#resume?.session === welcome.session;
    this.user = welcome.user;
    this.resumed = Boolean(welcome.resumed);
    this.#saveResume({ session: welcome.session, seq: sameSession ? this.#resume.seq : 0 });
    this.#attempt = 0;
    this.#authRetries = 0;
    this.#setState("online", { session: welcome.session });
    this.#scheduleRenew();
    this.emit("welcome", welcome);
    // A new session is in no room: ask again for the rooms the app is in.
    // (The same session, resumed or not, is still in them; the server
    // replays missed pushes or sends fresh room.joined snapshots itself.)
    if (!sameSession) {
      for (const room of this.#rooms) {
        this.request("room.join", { room }).catch((err) => this.emit("server-error", err));
      }
    }
  }
}
