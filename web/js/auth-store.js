// The signed-in identity: tokens and user, kept in localStorage across reloads.
//
// A registered user has an access and a refresh token; a guest has only an
// access (guest) token. Other tabs see changes through the "storage" event.

import { Emitter } from "./events.js";

const KEY = "typogram.auth";

function read() {
  try {
    const raw = localStorage.getItem(KEY);
    return raw ? JSON.parse(raw) : null;
  } catch {
    return null;
  }
}

/** Seconds-since-epoch expiry of a JWT, or 0 when it cannot be read. */
export function tokenExpiry(token) {
  try {
    const payload = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return Number(JSON.parse(atob(payload)).exp) || 0;
  } catch {
    return 0;
  }
}

class AuthStore extends Emitter {
  #auth = read();

  constructor() {
    super();
    window.addEventListener("storage", (event) => {
      if (event.key !== KEY) return;
      this.#auth = read();
      this.emit("change", this.#auth);
    });
  }

  get current() {
    return this.#auth;
  }

  get signedIn() {
    return Boolean(this.#auth?.access_token);
  }

  get isGuest() {
    return Boolean(this.#auth?.user?.guest);
  }

  /** Re-reads storage: another tab may have refreshed the tokens meanwhile. */
  reload() {
    this.#auth = read();
    return this.#auth;
  }

  /** Stores an answer of register, login, refresh or guest. */
  save({ access_token, refresh_token = null, user }) {
    const guest = Boolean(user?.guest);
    this.#auth = { access_token, refresh_token: guest ? null : refresh_token, user: { ...user, guest } };
    localStorage.setItem(KEY, JSON.stringify(this.#auth));
    this.emit("change", this.#auth);
  }

  updateUser(user) {
    if (!this.#auth) return;
    this.save({ ...this.#auth, user: { ...this.#auth.user, ...user } });
  }

  clear() {
    this.#auth = null;
    localStorage.removeItem(KEY);
    this.emit("change", null);
  }
}

export const authStore = new AuthStore();
