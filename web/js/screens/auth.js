// Sign in, sign up and play as guest.

import { authStore } from "../auth-store.js";
import { login, playAsGuest, register } from "../api.js";
import { field, formValues, h } from "../dom.js";
import { notifyError } from "../notices.js";

function fieldErrors(form, err) {
  for (const el of form.querySelectorAll(".field-error")) el.remove();
  for (const [name, problem] of Object.entries(err.fields ?? {})) {
    const input = form.elements.namedItem(name);
    input?.closest(".field")?.append(h("small", { class: "field-error", role: "alert" }, problem));
  }
}

function submitting(form, action) {
  return async (event) => {
    event.preventDefault();
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      await action(formValues(form));
    } catch (err) {
      fieldErrors(form, err);
      notifyError(err);
    } finally {
      button.disabled = false;
    }
  };
}

function guestCard(onSignedIn) {
  const form = h("form", { class: "card", id: "guest-form", "aria-labelledby": "guest-title" },
    h("h2", { id: "guest-title" }, "Just play"),
    h("p", { class: "muted" }, "No account needed. Guests can chat and take tests; results are not kept."),
    field("Name (optional)", h("input", { name: "name", autocomplete: "nickname", maxLength: 32, pattern: "[A-Za-z0-9_]+" })),
    h("button", { type: "submit", class: "secondary" }, "Play as guest"));
  form.addEventListener("submit", submitting(form, async ({ name }) => {
    authStore.save(await playAsGuest(name?.trim() || undefined));
    onSignedIn("solo");
  }));
  return form;
}

function signInCard(onSignedIn) {
  const form = h("form", { class: "card", id: "signin-form", "aria-labelledby": "signin-title" },
    h("h2", { id: "signin-title" }, "Sign in"),
    field("Username or e-mail", h("input", { name: "login", required: true, autocomplete: "username" })),
    field("Password", h("input", { name: "password", type: "password", required: true, autocomplete: "current-password" })),
    h("button", { type: "submit", class: "primary" }, "Sign in"),
    h("p", { class: "muted" }, h("a", { href: "#/forgot-password", id: "forgot-link" }, "Forgot your password?")),
    h("p", { class: "muted" }, "New here? ", h("a", { href: "#/signup" }, "Create an account")));
  form.addEventListener("submit", submitting(form, async ({ login: name, password }) => {
    authStore.save(await login(name.trim(), password));
    onSignedIn("profile");
  }));
  return form;
}

function signUpCard(onSignedIn) {
  const form = h("form", { class: "card", id: "signup-form", "aria-labelledby": "signup-title" },
    h("h2", { id: "signup-title" }, "Create an account"),
    field("Username", h("input", { name: "username", required: true, minLength: 3, maxLength: 32,
      pattern: "[A-Za-z0-9_]+", autocomplete: "username" }), "3–32 letters, digits or _"),
    field("E-mail", h("input", { name: "email", type: "email", required: true, autocomplete: "email" })),
    field("Password", h("input", { name: "password", type: "password", required: true, minLength: 8,
      maxLength: 128, autocomplete: "new-password" }), "At least 8 characters"),
    h("button", { type: "submit", class: "primary" }, "Sign up"),
    h("p", { class: "muted" }, "Have an account? ", h("a", { href: "#/signin" }, "Sign in")));
  form.addEventListener("submit", submitting(form, async ({ username, email, password }) => {
    authStore.save(await register(username.trim(), email.trim(), password));
    onSignedIn("profile");
  }));
  return form;
}

/** The screens for signed-out visitors; `onSignedIn(route)` moves on. */
export function signInScreen(onSignedIn) {
  return { mount: (view) => view.append(h("div", { class: "grid-2" }, signInCard(onSignedIn), guestCard(onSignedIn))) };
}

export function signUpScreen(onSignedIn) {
  return { mount: (view) => view.append(h("div", { class: "grid-2" }, signUpCard(onSignedIn), guestCard(onSignedIn))) };
}
