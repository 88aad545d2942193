"""Plans and subscriptions: the states, the transitions and the access rule. Pure.

Rules:

1. A user has at most one subscription. Its status is one of ``active``,
   ``past_due`` (a renewal payment failed), ``cancelled`` or ``expired``;
   it covers ``[period_start, period_end)`` (epoch ms, UTC).
2. Access to premium content: ``active`` while ``now < period_end``;
   ``past_due`` while ``now < period_end + grace``. Nothing else gives
   access, and the check reads the period, so access ends at the period's
   end even before the expiry job has run.
3. Transitions (anything else raises ``SubscriptionError`` and changes nothing):

   ====================  =========================  ==================================
   action                from                       to
   ====================  =========================  ==================================
   ``grant``             none, cancelled, expired,  active, a new period from now
                         or an active one that has
                         ended
   ``renew``             active, past_due           active, the next period after the
                                                    current end (from now if it ended);
                                                    ``cancel_at_period_end`` cleared
   ``cancel``            active, past_due           same status, ``cancel_at_period_end``
   ``resume``            active/past_due set to     same status, ``cancel_at_period_end``
                         cancel at period end       cleared
   ``past_due``          active                     past_due
   ``revoke`` (staff)    active, past_due           cancelled, the period ends now
   ``expire`` (job)      active or past_due whose   cancelled if it was to cancel at
                         access has ended           period end, else expired
   ====================  =========================  ==================================

4. A payment (``for_payment``) grants when the user has no access and
   renews when they have: a payment never shortens a paid period.
5. Periods are calendar months or years in UTC; a day the target month
   lacks becomes its last day (31 January + 1 month = 28/29 February).
"""

from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass, replace
from typing import Final, Literal

Status = Literal["active", "past_due", "cancelled", "expired"]
Interval = Literal["month", "year"]
Action = Literal["grant", "renew", "cancel", "resume", "past_due", "revoke", "expire"]
STATUSES: Final[tuple[str, ...]] = ("active", "past_due", "cancelled", "expired")
LIVE: Final = frozenset({"active", "past_due"})


class SubscriptionError(ValueError):
    """A transition rule 3 does not allow; the message says why."""


@dataclass(frozen=True, slots=True)
class Plan:
    id: str
    name: str
    description: str
    price_cents: int
    currency: str
    interval: Interval
    interval_count: int
    active: bool = True


@dataclass(frozen=True, slots=True)
class Subscription:
    id: str
    user_id: str
    plan_id: str
    status: Status
    period_start: int
    period_end: int
    cancel_at_period_end: bool = False
    cancelled_at: int | None = None


def add_period(start_ms: int, interval: Interval, count: int) -> int:
    """Rule 5: ``count`` months or years after ``start_ms``."""
    start = dt.datetime.fromtimestamp(start_ms / 1000, tz=dt.UTC)
    months = count * (12 if interval == "year" else 1)
    index = start.month - 1 + months
    year, month = start.year + index // 12, index % 12 + 1
    day = min(start.day, calendar.monthrange(year, month)[1])
    return int(start.replace(year=year, month=month, day=day).timestamp() * 1000)


def has_access(sub: Subscription | None, now_ms: int, grace_ms: int) -> bool:
    """Rule 2."""
    if sub is None:
        return False
    if sub.status == "active":
        return now_ms < sub.period_end
    if sub.status == "past_due":
        return now_ms < sub.period_end + grace_ms
    return False


def grant(
    sub: Subscription | None, plan: Plan, now_ms: int, *, user_id: str, new_id: str
) -> Subscription:
    if sub is not None and sub.status in LIVE and sub.period_end > now_ms:
        raise SubscriptionError("the subscription is still running: renew it instead")
    return Subscription(
        id=sub.id if sub is not None else new_id,
        user_id=user_id,
        plan_id=plan.id,
        status="active",
        period_start=now_ms,
        period_end=add_period(now_ms, plan.interval, plan.interval_count),
    )


def renew(sub: Subscription | None, plan: Plan, now_ms: int) -> Subscription:
    if sub is None or sub.status not in LIVE:
        raise SubscriptionError("only an active or past-due subscription can be renewed")
    start = max(sub.period_end, now_ms)
    return replace(
        sub,
        plan_id=plan.id,
        status="active",
        period_start=start,
        period_end=add_period(start, plan.interval, plan.interval_count),
        cancel_at_period_end=False,
        cancelled_at=None,
    )


def for_payment(
    sub: Subscription | None, plan: Plan, now_ms: int, grace_ms: int, *, user_id: str, new_id: str
) -> tuple[Action, Subscription]:
    """Rule 4: what a succeeded payment for ``plan`` does."""
    if has_access(sub, now_ms, grace_ms):
        return "renew", renew(sub, plan, now_ms)
    if sub is not None and sub.status in LIVE:  # ran out without renewal: start afresh
        sub = replace(sub, status="expired")
    return "grant", grant(sub, plan, now_ms, user_id=user_id, new_id=new_id)


def cancel(sub: Subscription | None, now_ms: int) -> Subscription:
    if sub is None or sub.status not in LIVE:
        raise SubscriptionError("there is no running subscription to cancel")
    if sub.cancel_at_period_end:
        raise SubscriptionError("the subscription is already set to end with its period")
    return replace(sub, cancel_at_period_end=True, cancelled_at=now_ms)


def resume(sub: Subscription | None, now_ms: int) -> Subscription:
    if sub is None or sub.status not in LIVE or not sub.cancel_at_period_end:
        raise SubscriptionError("there is no cancellation to undo")
    if sub.period_end <= now_ms:
        raise SubscriptionError("the period has ended: subscribe again")
    return replace(sub, cancel_at_period_end=False, cancelled_at=None)


def past_due(sub: Subscription | None) -> Subscription:
    if sub is None or sub.status != "active":
        raise SubscriptionError("only an active subscription can fall past due")
    return replace(sub, status="past_due")


def revoke(sub: Subscription | None, now_ms: int) -> Subscription:
    if sub is None or sub.status not in LIVE:
        raise SubscriptionError("there is no running subscription to revoke")
    return replace(
        sub, status="cancelled", period_end=min(sub.period_end, now_ms), cancelled_at=now_ms
    )


def expire(sub: Subscription, now_ms: int, grace_ms: int) -> Subscription | None:
    """The expiry job's step: the ended subscription's new state, ``None`` if not due."""
    if sub.status not in LIVE or has_access(sub, now_ms, grace_ms):
        return None
    return replace(sub, status="cancelled" if sub.cancel_at_period_end else "expired")
