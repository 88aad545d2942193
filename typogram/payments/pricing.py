"""Coupons and prices: whether a coupon applies and what it takes off. Pure.

Rules:

1. Amounts are integers in the currency's minor units (cents); currencies
   are upper-case ISO 4217 codes. No floats anywhere.
2. A coupon is ``percent`` (1-100 % off) or ``fixed`` (an amount off in
   one currency, so it applies only to plans priced in that currency).
3. A coupon applies when it is active, ``valid_from <= now < valid_until``
   (either bound may be open), its overall redemptions are below
   ``max_redemptions``, the user's are below ``max_per_user``, and the plan
   is one of ``plans`` (empty: every plan). The first rule broken is the
   reason, in this order: ``not_found`` (unknown or inactive),
   ``not_started``, ``expired``, ``not_applicable``, ``exhausted``,
   ``already_used``.
4. A percentage rounds the discount half up to a whole minor unit; a fixed
   amount takes off at most the price. No discount takes the amount below
   ``min_amount`` (the provider's smallest charge): the discount stops there.
5. This is the rule for display and early refusal; the limits are enforced
   again, atomically, when a checkout redeems the coupon.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Literal

Kind = Literal["percent", "fixed"]
Reason = Literal[
    "not_found", "not_started", "expired", "not_applicable", "exhausted", "already_used"
]
REASONS: Final[tuple[Reason, ...]] = (
    "not_found", "not_started", "expired", "not_applicable", "exhausted", "already_used",
)  # fmt: skip
MESSAGES: Final[dict[Reason, str]] = {
    "not_found": "no such coupon",
    "not_started": "this coupon is not valid yet",
    "expired": "this coupon has expired",
    "not_applicable": "this coupon does not apply to this plan",
    "exhausted": "this coupon has been used up",
    "already_used": "you have already used this coupon",
}
CODE: Final = re.compile(r"\A[A-Z0-9][A-Z0-9_-]{2,31}\Z")


@dataclass(frozen=True, slots=True)
class Coupon:
    id: str
    code: str
    kind: Kind
    percent_off: int | None = None
    amount_off: int | None = None
    currency: str | None = None  # required for ``fixed``
    valid_from: int | None = None  # epoch ms
    valid_until: int | None = None
    max_redemptions: int | None = None
    max_per_user: int | None = None
    plans: tuple[str, ...] = ()
    active: bool = True
    redeemed: int = 0


@dataclass(frozen=True, slots=True)
class Price:
    list_amount: int
    discount: int
    amount: int
    currency: str


def normalize_code(raw: str) -> str:
    """Codes compare case-insensitively: stored and looked up upper-case, trimmed."""
    return raw.strip().upper()


def refusal(
    coupon: Coupon | None, plan_id: str, plan_currency: str, now_ms: int, used_by_user: int
) -> Reason | None:
    """Rule 3: the reason the coupon does not apply, ``None`` when it does."""
    if coupon is None or not coupon.active:
        return "not_found"
    if coupon.valid_from is not None and now_ms < coupon.valid_from:
        return "not_started"
    if coupon.valid_until is not None and now_ms >= coupon.valid_until:
        return "expired"
    if coupon.plans and plan_id not in coupon.plans:
        return "not_applicable"
    if coupon.kind == "fixed" and coupon.currency != plan_currency:
        return "not_applicable"
    if coupon.max_redemptions is not None and coupon.redeemed >= coupon.max_redemptions:
        return "exhausted"
    if coupon.max_per_user is not None and used_by_user >= coupon.max_per_user:
        return "already_used"
    return None


def price(list_amount: int, currency: str, coupon: Coupon | None, *, min_amount: int) -> Price:
    """Rule 4: what a plan at ``list_amount`` costs with ``coupon`` (already checked)."""
    if list_amount < 0:
        raise ValueError("a price is never negative")
    off = 0
    if coupon is not None and coupon.kind == "percent":
        off = (list_amount * (coupon.percent_off or 0) + 50) // 100
    elif coupon is not None:
        off = coupon.amount_off or 0
    floor = min(list_amount, min_amount)
    off = max(0, min(off, list_amount - floor))
    return Price(list_amount=list_amount, discount=off, amount=list_amount - off, currency=currency)


def definition_errors(coupon: Coupon) -> dict[str, str]:
    """What makes a coupon definition unusable (field -> problem); empty when sound."""
    errors: dict[str, str] = {}
    if not CODE.match(coupon.code):
        errors["code"] = "3-32 of A-Z 0-9 _ -, starting with a letter or digit"
    if coupon.kind == "percent":
        if coupon.percent_off is None or not 1 <= coupon.percent_off <= 100:
            errors["percent_off"] = "a whole percentage from 1 to 100"
        if coupon.amount_off is not None:
            errors["amount_off"] = "only for fixed coupons"
    else:
        if coupon.amount_off is None or coupon.amount_off < 1:
            errors["amount_off"] = "a positive amount in minor units"
        if coupon.percent_off is not None:
            errors["percent_off"] = "only for percent coupons"
        if coupon.currency is None:
            errors["currency"] = "required for fixed coupons"
    if coupon.currency is not None and not re.fullmatch(r"[A-Z]{3}", coupon.currency):
        errors["currency"] = "an upper-case ISO 4217 code"
    if (
        coupon.valid_from is not None
        and coupon.valid_until is not None
        and coupon.valid_until <= coupon.valid_from
    ):
        errors["valid_until"] = "must be after valid_from"
    for name in ("max_redemptions", "max_per_user"):
        value = getattr(coupon, name)
        if value is not None and value < 1:
            errors[name] = "at least 1 (or null for no limit)"
    return errors
