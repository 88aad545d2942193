"""A payment's state machine and what must follow each state. Pure.

Rules:

1. A payment is ``pending`` from checkout until the provider says what
   happened. Provider events arrive at least once and in any order; each
   carries a *signal*: ``pending`` (created, processing, requires action),
   ``succeeded``, ``failed`` or ``refunded``.
2. Transitions (any other pair changes nothing: a stale or repeated event):

   ===========  ===========  ===========  ==========================================
   status       signal       becomes      why
   ===========  ===========  ===========  ==========================================
   pending      succeeded    succeeded
   pending      failed       failed
   pending      refunded     refunded     the refund overtook the success it implies
   failed       succeeded    succeeded    money moved after a failed attempt: credit it
   failed       refunded     refunded     likewise, then returned
   succeeded    refunded     refunded
   ===========  ===========  ===========  ==========================================

   So a late ``pending`` changes nothing, a ``failed`` after ``succeeded``
   changes nothing, and ``refunded`` is final.
3. What follows a status is derived from the stored state, not from the
   event that set it (``follow_ups``), so a worker that dies between a
   change and its follow-ups finishes them on the replay, and a replay
   after they ran finds nothing to do:

   * ``succeeded``: credit the subscription once (the payment id is the
     credit's reference); a held coupon becomes ``redeemed``.
   * ``failed``: make sure the provider cannot still take the money
     (``cancel``), then release the held coupon.
   * ``refunded``: a held coupon becomes ``redeemed`` (it was used); a
     payment that was credited has its subscription revoked per the refund
     policy, once.
   * every status: announce it once (receipts and notices).
4. Staff refund only a ``succeeded`` payment (``refundable``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

Status = Literal["pending", "succeeded", "failed", "refunded"]
Signal = Literal["pending", "succeeded", "failed", "refunded"]
CouponState = Literal["held", "redeemed", "released"]
STATUSES: Final[tuple[Status, ...]] = ("pending", "succeeded", "failed", "refunded")

TRANSITIONS: Final[dict[tuple[Status, Signal], Status]] = {
    ("pending", "succeeded"): "succeeded",
    ("pending", "failed"): "failed",
    ("pending", "refunded"): "refunded",
    ("failed", "succeeded"): "succeeded",
    ("failed", "refunded"): "refunded",
    ("succeeded", "refunded"): "refunded",
}

# Provider event types (Stripe's names; the sandbox sends the same) and their signal.
SIGNALS: Final[dict[str, Signal]] = {
    "payment_intent.created": "pending",
    "payment_intent.processing": "pending",
    "payment_intent.requires_action": "pending",
    "payment_intent.succeeded": "succeeded",
    "payment_intent.payment_failed": "failed",
    "payment_intent.canceled": "failed",
    "charge.refunded": "refunded",
}


class PaymentError(ValueError):
    """An action rule 4 does not allow; the message says why."""


def step(status: Status, signal: Signal) -> Status | None:
    """Rule 2: the new status, or ``None`` when the signal changes nothing."""
    return TRANSITIONS.get((status, signal))


def refundable(status: Status) -> None:
    """Rule 4: raises ``PaymentError`` unless staff may refund a payment in ``status``."""
    if status != "succeeded":
        raise PaymentError(f"only a succeeded payment can be refunded (this one is {status})")


@dataclass(frozen=True, slots=True)
class Progress:
    """What has been done for a payment so far (its stored row)."""

    status: Status
    credited: bool  # the subscription was credited for it
    coupon: CouponState | None  # its coupon redemption, if it used a coupon
    refund_settled: bool  # the refund policy has been applied
    announced: Status | None  # the last status announced


FollowUp = Literal["credit", "redeem", "cancel_and_release", "retake", "revoke", "announce"]


def follow_ups(p: Progress) -> list[FollowUp]:
    """Rule 3: what is still to do for the payment as stored, in order."""
    todo: list[FollowUp] = []
    if p.status == "succeeded":
        if p.coupon == "held":
            todo.append("redeem")
        elif p.coupon == "released":
            # Only when the provider took money after confirming it could not
            # (a misbehaving provider): the customer paid the discounted price.
            todo.append("retake")
        if not p.credited:
            todo.append("credit")
    elif p.status == "failed":
        if p.coupon == "held":
            todo.append("cancel_and_release")
    elif p.status == "refunded":
        if p.coupon == "held":
            todo.append("redeem")
        if p.credited and not p.refund_settled:
            todo.append("revoke")
    if p.announced != p.status and p.status != "pending":
        todo.append("announce")
    return todo
