// Buying a subscription: the plans, checkout with a coupon, the sandbox's pay step, and
// the subscription and payment history cards of the profile.
//
// Amounts arrive as integers in minor units with their currency and are shown with
// Intl.NumberFormat; nothing here does arithmetic on money. A checkout keeps one
// Idempotency-Key for as long as the screen is open, so a double click or a retry
// after a lost answer gets the same payment, never a second one.

import { api } from "../api.js";
import { field, h, replace } from "../dom.js";
import { notify, notifyError } from "../notices.js";

const POLL_MS = 400;
const POLL_FOR_MS = 15_000;

export function money(amount, currency) {
  const digits = new Intl.NumberFormat("en", { style: "currency", currency }).resolvedOptions().maximumFractionDigits;
  return new Intl.NumberFormat(undefined, { style: "currency", currency }).format(amount / 10 ** digits);
}

const plans = () => api("GET", "/api/v1/plans");
const validate = (code, plan) => api("POST", "/api/v1/coupons/validate", { body: { code, plan }, auth: true });
const myPayment = (id) => api("GET", `/api/v1/payments/me/${encodeURIComponent(id)}`, { auth: true });
const myPayments = (limit = 10) => api("GET", `/api/v1/payments/me?limit=${limit}`, { auth: true });
const mySubscription = () => api("GET", "/api/v1/subscriptions/me", { auth: true });

/** POST /api/v1/checkout with the screen's Idempotency-Key (api() has no header option). */
async function startCheckout(body, key, token) {
  const response = await fetch("/api/v1/checkout", {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "application/json", Authorization: `Bearer ${token}`, "Idempotency-Key": key },
    body: JSON.stringify(body),
  });
  const data = await response.json().catch(() => null);
  if (!response.ok) throw Object.assign(new Error(data?.error?.message ?? `HTTP ${response.status}`), { status: response.status, code: data?.error?.code, fields: data?.error?.fields });
  return data;
}

function interval(plan) {
  const unit = plan.interval === "year" ? "year" : "month";
  return plan.interval_count === 1 ? `per ${unit}` : `every ${plan.interval_count} ${unit}s`;
}

export function plansScreen() {
  return {
    mount(view) {
      const list = h("div", { class: "plans", id: "plans" }, h("p", { class: "muted" }, "Loading plans…"));
      view.append(h("section", { class: "card" }, h("h2", {}, "Premium"),
        h("p", { class: "muted" }, "Premium opens every premium course. Cancel any time: access lasts to the end of the period."),
        list));
      plans().then(({ plans: all }) => replace(list, all.map((plan) => h("article", { class: "card plan", dataset: { plan: plan.id } },
        h("h3", {}, plan.name),
        h("p", { class: "price" }, money(plan.price_cents, plan.currency), h("small", { class: "muted" }, ` ${interval(plan)}`)),
        plan.description ? h("p", { class: "muted" }, plan.description) : null,
        h("a", { class: "button primary", href: `#/checkout?plan=${encodeURIComponent(plan.id)}` }, "Choose")))))
        .catch((err) => { notifyError(err); replace(list, h("p", { class: "muted" }, "Plans could not be loaded.")); });
    },
  };
}

export function checkoutScreen(accessToken) {
  return {
    mount(view, params) {
      const planId = params.get("plan") || "monthly";
      const key = crypto.randomUUID();
      const summary = h("dl", { class: "facts", id: "checkout-summary" });
      const reason = h("p", { class: "muted", id: "coupon-result", role: "status" });
      const code = h("input", { name: "coupon", id: "coupon", maxLength: 32, placeholder: "e.g. SPRING20", autocomplete: "off" });
      const pay = h("button", { type: "submit", class: "primary", id: "checkout-pay", disabled: true }, "Continue to payment");
      let plan = null;
      let applied = null;
      const show = (quote) => replace(summary,
        h("dt", {}, "Plan"), h("dd", {}, plan.name),
        h("dt", {}, "Price"), h("dd", { id: "list-price" }, money(quote.list_amount, quote.currency)),
        h("dt", {}, "Discount"), h("dd", { id: "discount" }, quote.discount ? `−${money(quote.discount, quote.currency)}` : "—"),
        h("dt", {}, "You pay"), h("dd", { id: "total" }, h("strong", {}, money(quote.amount, quote.currency))));
      const apply = async () => {
        const typed = code.value.trim();
        applied = null;
        if (!typed) { reason.textContent = ""; show({ list_amount: plan.price_cents, discount: 0, amount: plan.price_cents, currency: plan.currency }); return; }
        try {
          const quote = await validate(typed, plan.id);
          if (quote.valid) { applied = quote.code; reason.textContent = `Coupon ${quote.code} applied.`; } else { reason.textContent = quote.message; }
          show(quote);
        } catch (err) { notifyError(err); }
      };
      const form = h("form", { class: "card", id: "checkout", "aria-label": "Checkout" },
        h("h2", {}, "Checkout"), summary,
        field("Coupon", h("span", { class: "row" }, code, h("button", { type: "button", id: "coupon-apply", onclick: apply }, "Apply"))),
        reason, pay);
      form.addEventListener("submit", async (event) => {
        event.preventDefault();
        pay.disabled = true;
        try {
          const body = applied ? { plan: plan.id, coupon: applied } : { plan: plan.id };
          const answer = await startCheckout(body, key, await accessToken());
          if (answer.redirect_url.startsWith("/")) location.assign(answer.redirect_url);
          else location.href = answer.redirect_url; // the provider's own page
        } catch (err) {
          notifyError(err);
          pay.disabled = false;
        }
      });
      view.append(form);
      plans().then(({ plans: all }) => {
        plan = all.find((p) => p.id === planId);
        if (!plan) { replace(form, h("p", { class: "muted" }, "That plan is not on sale. ", h("a", { href: "#/plans" }, "See the plans"))); return; }
        show({ list_amount: plan.price_cents, discount: 0, amount: plan.price_cents, currency: plan.currency });
        pay.disabled = false;
      }).catch(notifyError);
    },
  };
}

/** The sandbox's stand-in for a provider's payment page (development and tests only). */
export function sandboxPayScreen() {
  return {
    mount(view, params) {
      const id = params.get("payment") ?? "";
      let alive = true;
      const state = h("p", { id: "payment-state", role: "status" }, "Loading the payment…");
      const act = (outcome, label, cls = "") => h("button", { type: "button", class: cls, dataset: { outcome }, onclick: async () => {
        try {
          await api("POST", `/sandbox/pay/${encodeURIComponent(id)}`, { body: { outcome } });
          state.textContent = outcome === "requires_action" ? "The bank asks for authentication; pay again to finish." : "Waiting for the payment to be confirmed…";
          if (outcome !== "requires_action") await settle();
        } catch (err) { notifyError(err); }
      } }, label);
      const settle = async () => {
        const until = Date.now() + POLL_FOR_MS;
        while (alive && Date.now() < until) {
          const payment = await myPayment(id);
          if (payment.status !== "pending" && (payment.status !== "succeeded" || payment.credited)) {
            const done = { succeeded: "Payment succeeded: your subscription is active.", failed: "The payment failed. Nothing was charged.", refunded: "The payment was refunded." };
            state.textContent = done[payment.status];
            state.dataset.status = payment.status;
            if (payment.status === "succeeded") notify("Premium is yours");
            return;
          }
          await new Promise((resolve) => setTimeout(resolve, POLL_MS));
        }
      };
      view.append(h("section", { class: "card", id: "sandbox-pay" },
        h("h2", {}, "Sandbox payment"),
        h("p", { class: "muted" }, "Development only: no money moves. Choose what the customer's bank says."),
        h("dl", { class: "facts", id: "sandbox-amount" }), state,
        h("div", { class: "row" }, act("succeeded", "Pay", "primary"), act("failed", "Decline"), act("requires_action", "Ask to authenticate")),
        h("p", {}, h("a", { href: "#/profile" }, "Back to the profile"))));
      myPayment(id).then((p) => {
        replace(view.querySelector("#sandbox-amount"), h("dt", {}, "Amount"), h("dd", {}, money(p.amount, p.currency)), h("dt", {}, "Plan"), h("dd", {}, p.plan_id));
        state.textContent = p.status === "pending" ? "Waiting for you to pay." : `This payment is ${p.status}.`;
      }).catch((err) => { notifyError(err); state.textContent = "No such payment."; });
      return () => { alive = false; };
    },
  };
}

/** Profile card: the subscription's state and the newest payments. */
export function billingCard() {
  const sub = h("div", { id: "my-subscription" }, h("p", { class: "muted" }, "Loading subscription…"));
  const history = h("div", { id: "my-payments" }, h("p", { class: "muted" }, "Loading payments…"));
  mySubscription().then(({ subscription, access }) => replace(sub, subscription
    ? h("dl", { class: "facts" },
      h("dt", {}, "Plan"), h("dd", {}, subscription.plan?.name ?? subscription.id),
      h("dt", {}, "Status"), h("dd", { id: "subscription-status" }, subscription.status, subscription.cancel_at_period_end ? " (ends with the period)" : ""),
      h("dt", {}, access ? "Renews or ends" : "Ended"), h("dd", {}, new Date(subscription.current_period_end).toLocaleDateString()))
    : h("p", { class: "muted", id: "subscription-status" }, "No subscription. ", h("a", { href: "#/plans" }, "See the plans"))))
    .catch(() => replace(sub, h("p", { class: "muted" }, "The subscription could not be loaded.")));
  myPayments().then(({ payments }) => replace(history, payments.length
    ? h("table", { class: "board" },
      h("thead", {}, h("tr", {}, h("th", {}, "When"), h("th", {}, "Plan"), h("th", {}, "Amount"), h("th", {}, "Status"))),
      h("tbody", {}, payments.map((p) => h("tr", { dataset: { id: p.id, status: p.status } },
        h("td", {}, new Date(p.created_at).toLocaleString([], { dateStyle: "short", timeStyle: "short" })),
        h("td", {}, p.plan_id, p.coupon_code ? h("small", { class: "tag" }, p.coupon_code) : null),
        h("td", {}, money(p.amount, p.currency)),
        h("td", {}, p.status)))))
    : h("p", { class: "muted" }, "No payments yet.")))
    .catch(() => replace(history, h("p", { class: "muted" }, "Payments could not be loaded.")));
  return h("section", { class: "card", id: "profile-billing" }, h("h3", {}, "Subscription"), sub, h("h3", { class: "sub" }, "Payments"), history);
}
