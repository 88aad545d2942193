// What e-mail carries: "forgot password" and "reset password", the verification landing
// page and banner, and the e-mail preferences on the profile.

import {
  confirmPasswordReset, emailPreferences, requestPasswordReset, resendVerification,
  setEmailPreferences, verifyEmail,
} from "../api.js";
import { field, formValues, h, replace } from "../dom.js";
import { notify, notifyError } from "../notices.js";

const CATEGORIES = [
  ["announcements", "News and announcements"],
  ["billing", "Receipts and subscription notices"],
  ["tournaments", "Tournaments I entered"],
  ["achievements", "Achievements I unlock"],
  ["streak_reminders", "Daily challenge streak reminders"],
];

function showFieldErrors(form, err) {
  for (const el of form.querySelectorAll(".field-error")) el.remove();
  for (const [name, problem] of Object.entries(err.fields ?? {})) {
    form.elements.namedItem(name)?.closest(".field")
      ?.append(h("small", { class: "field-error", role: "alert" }, problem));
  }
}

/** "Forgot password": always the same answer, whether the address is registered or not. */
export function forgotPasswordScreen() {
  return {
    mount(view) {
      const card = h("section", { class: "card", id: "forgot-password" });
      const form = h("form", { "aria-labelledby": "forgot-title" },
        h("h2", { id: "forgot-title" }, "Forgot your password?"),
        h("p", { class: "muted" }, "Enter your account's e-mail address and we will send you a link to choose a new password."),
        field("E-mail", h("input", { name: "email", type: "email", required: true, autocomplete: "email" })),
        h("button", { type: "submit", class: "primary" }, "Send the link"));
      form.addEventListener("submit", async (event) => {
        event.preventDefault();
        try {
          await requestPasswordReset(formValues(form).email.trim());
          replace(card, h("h2", {}, "Check your inbox"),
            h("p", { id: "forgot-done" }, "If that address belongs to an account, a link to reset its password is on its way. It works once, for 30 minutes."),
            h("a", { href: "#/signin" }, "Back to sign in"));
        } catch (err) {
          showFieldErrors(form, err);
          notifyError(err);
        }
      });
      view.append(card);
      card.append(form);
    },
  };
}

/** "Reset password": the link's token and a new password. */
export function resetPasswordScreen() {
  return {
    mount(view, params) {
      const token = params.get("token") ?? "";
      const card = h("section", { class: "card", id: "reset-password" });
      const form = h("form", { "aria-labelledby": "reset-title" },
        h("h2", { id: "reset-title" }, "Choose a new password"),
        field("New password", h("input", { name: "password", type: "password", required: true, minLength: 8,
          maxLength: 128, autocomplete: "new-password" }), "At least 8 characters"),
        h("button", { type: "submit", class: "primary" }, "Set the password"));
      form.addEventListener("submit", async (event) => {
        event.preventDefault();
        try {
          await confirmPasswordReset(token, formValues(form).password);
          replace(card, h("h2", {}, "Password changed"),
            h("p", { id: "reset-done" }, "Your password is set and every device was signed out. Sign in with the new one."),
            h("a", { class: "button primary", href: "#/signin" }, "Sign in"));
        } catch (err) {
          showFieldErrors(form, err);
          if (err.code === "invalid_token") {
            replace(card, h("h2", {}, "This link does not work"),
              h("p", { id: "reset-invalid" }, `The link is ${err.fields?.token ?? "invalid"}. Ask for a new one.`),
              h("a", { href: "#/forgot-password" }, "Send a new link"));
          }
          notifyError(err);
        }
      });
      view.append(card);
      card.append(form);
    },
  };
}

/** The landing page of a verification link. */
export function verifyEmailScreen() {
  return {
    mount(view, params) {
      const card = h("section", { class: "card", id: "verify-email" }, h("p", { class: "muted" }, "Verifying…"));
      view.append(card);
      let alive = true;
      verifyEmail(params.get("token") ?? "").then((status) => {
        if (!alive) return;
        replace(card, h("h2", {}, "Address verified"),
          h("p", { id: "verify-done" }, `${status.email} is verified. Thank you!`),
          h("a", { href: "#/profile" }, "Go to your profile"));
      }).catch((err) => {
        if (!alive) return;
        replace(card, h("h2", {}, "This link does not work"),
          h("p", { id: "verify-invalid" }, `The link is ${err.fields?.token ?? "invalid"}. Send a new one from your profile.`),
          h("a", { href: "#/profile" }, "Go to your profile"));
      });
      return () => {
        alive = false;
      };
    },
  };
}

/** The banner on the profile while the address is not verified. */
export function verificationBanner(profile) {
  if (profile.email_verified) return null;
  const status = h("span", { class: "muted" });
  return h("section", { class: "card banner", id: "verify-banner", role: "status" },
    h("p", {}, `Please verify ${profile.email}: we sent a link there.`),
    h("button", { class: "secondary", id: "verify-resend", onclick: async () => {
      try {
        const sent = await resendVerification();
        status.textContent = sent.status === "sent" ? " A new link is on its way." : " Already verified.";
      } catch (err) {
        notifyError(err);
      }
    } }, "Send the link again"), status);
}

/** E-mail preferences per category (security mail always goes). */
export function preferencesCard() {
  const form = h("form", { class: "card", id: "email-preferences", "aria-labelledby": "prefs-title" },
    h("h3", { id: "prefs-title" }, "E-mail"), h("p", { class: "muted" }, "Loading…"));
  emailPreferences().then((prefs) => {
    replace(form, h("h3", { id: "prefs-title" }, "E-mail"),
      h("p", { class: "muted" }, "Security mail (verification, password resets) always reaches you."),
      ...CATEGORIES.map(([name, label]) => h("label", { class: "check" },
        h("input", { type: "checkbox", name, checked: Boolean(prefs[name]) }), ` ${label}`)),
      h("button", { type: "submit", class: "primary" }, "Save e-mail preferences"));
  }).catch(notifyError);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const changes = Object.fromEntries(CATEGORIES.map(([name]) => [name, form.elements.namedItem(name).checked]));
    try {
      await setEmailPreferences(changes);
      notify("E-mail preferences saved");
    } catch (err) {
      notifyError(err);
    }
  });
  return form;
}
