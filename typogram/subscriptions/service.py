"""The subscription service: plans, one subscription per user, its changes and the access check.

Callers: the REST API (a user cancels or resumes), staff (grant, revoke),
the payments side (``apply_payment``: a succeeded payment grants or
renews; ``mark_past_due``: a renewal failed) and the ``courses`` worker's
expiry schedule (``expire_due``). The rules are ``typogram.subscriptions.rules``.

1. A change runs in one transaction: the user's row is read with a
   locking read, the rule computes the new state, the row and a
   ``subscription_history`` row are written, and the paid-until date of the
   user's premium enrolments (``user_typing_courses.expires_at``) follows.
2. Idempotent: a change with a ``reference`` (a payment id, a staff request
   id) is applied once; the same reference again answers the current state
   with ``applied=False`` (the unique history index settles concurrent
   ones). A change without one (cancel, resume, expire) is idempotent by
   state: a second cancel is a ``SubscriptionError``, a second expiry finds
   nothing due.
3. After the commit the user's cached subscription is stale at once (a
   fresh version token, ``typogram.cache_aside``) and a
   ``subscription.<action>`` event goes to ``payment-events`` (key: the
   user; id derived from the subscription and the history row, so a
   consumer dedupes a re-publish). A failed publish is logged; the history
   table keeps the change.
4. ``has_access`` reads the cache (``user:{id}:subscription``, 15 minutes)
   and checks the period against the clock, so access ends with the period
   even before the expiry job marks it.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError, OperationalError

from typogram import cache_aside, keys, topics
from typogram.db.database import Database
from typogram.db.schema import courses, plans, subscription_history, subscriptions
from typogram.db.schema import user_typing_courses as enrolments
from typogram.logs import get_logger
from typogram.ports import Cache, Event, EventLog
from typogram.subscriptions import rules
from typogram.subscriptions.rules import Action, Plan, Subscription, SubscriptionError

log = get_logger("typogram.subscriptions")

EVENT_VERSION = 1
ATTEMPTS = 3  # a transaction that lost a race (deadlock, duplicate first row) runs again
PAST_TENSE: dict[Action, str] = {
    "grant": "granted",
    "renew": "renewed",
    "cancel": "cancelled",
    "resume": "resumed",
    "past_due": "past_due",
    "revoke": "revoked",
    "expire": "expired",
}


@dataclass(frozen=True, slots=True)
class Change:
    """What a change did: the action, the subscription after it, whether it was applied
    now (``False``: its reference had been applied before)."""

    action: Action
    subscription: Subscription
    applied: bool


Step = Callable[[Subscription | None, int], Subscription]


def now_ms() -> int:
    return int(time.time() * 1000)


def _plan(row: Any) -> Plan:
    return Plan(
        id=row.id,
        name=row.name,
        description=row.description,
        price_cents=int(row.price_cents),
        currency=row.currency,
        interval=row.interval,
        interval_count=int(row.interval_count),
        active=bool(row.active),
    )


def _subscription(row: Any) -> Subscription:
    return Subscription(
        id=row.id,
        user_id=row.user_id,
        plan_id=row.plan_id,
        status=row.status,
        period_start=int(row.current_period_start),
        period_end=int(row.current_period_end),
        cancel_at_period_end=bool(row.cancel_at_period_end),
        cancelled_at=None if row.cancelled_at is None else int(row.cancelled_at),
    )


def view(sub: Subscription) -> dict[str, Any]:
    """The JSON form of a subscription (the cache and events hold it)."""
    return asdict(sub)


def of_view(doc: dict[str, Any]) -> Subscription:
    return Subscription(**doc)


class Subscriptions:
    def __init__(
        self,
        db: Database,
        cache: Cache,
        events: EventLog,
        *,
        cache_ttl_s: float = 900,
        grace_s: int = 3 * 24 * 3600,
    ) -> None:
        self.db = db
        self.cache = cache
        self.events = events
        self.cache_ttl_s = cache_ttl_s
        self.grace_ms = grace_s * 1000

    # -- reads ---------------------------------------------------------------

    async def plans(self, *, include_inactive: bool = False) -> list[Plan]:
        statement = select(plans).order_by(plans.c.position, plans.c.id)
        if not include_inactive:
            statement = statement.where(plans.c.active == 1)
        async with self.db.read() as conn:
            return [_plan(row) for row in await conn.execute(statement)]

    async def plan(self, plan_id: str) -> Plan | None:
        async with self.db.read() as conn:
            row = (await conn.execute(select(plans).where(plans.c.id == plan_id))).first()
        return None if row is None else _plan(row)

    async def current(self, user_id: str) -> Subscription | None:
        """The user's subscription from the primary (read-your-writes)."""
        async with self.db.read(primary=True) as conn:
            row = (
                await conn.execute(select(subscriptions).where(subscriptions.c.user_id == user_id))
            ).first()
        return None if row is None else _subscription(row)

    async def cached(self, user_id: str) -> Subscription | None:
        """Rule 4: the user's subscription through the cache."""
        key, version_key = keys.user_subscription(user_id), keys.user_subscription_version(user_id)
        value, version = await cache_aside.read(self.cache, key, version_key)
        if value is not None:
            return None if value.get("none") else of_view(value)
        sub = await self.current(user_id)
        stored = {"none": True} if sub is None else view(sub)
        await cache_aside.store(self.cache, key, version, stored, self.cache_ttl_s)
        return sub

    async def has_access(self, user_id: str, at_ms: int | None = None) -> bool:
        """Rule 4: whether the user may open premium content now."""
        sub = await self.cached(user_id)
        return rules.has_access(sub, now_ms() if at_ms is None else at_ms, self.grace_ms)

    def access_until(self, sub: Subscription) -> int:
        """The moment access ends (or ended) under the subscription as it is."""
        return sub.period_end + (self.grace_ms if sub.status == "past_due" else 0)

    # -- changes -------------------------------------------------------------

    async def apply_payment(
        self, user_id: str, plan_id: str, *, reference: str, actor: str = "payments"
    ) -> Change:
        """A succeeded payment for ``plan_id``: grant or renew (rules, rule 4)."""
        plan = await self._required_plan(plan_id)
        chosen: list[Action] = []

        def step(sub: Subscription | None, now: int) -> Subscription:
            action, new = rules.for_payment(
                sub, plan, now, self.grace_ms, user_id=user_id, new_id=uuid.uuid4().hex
            )
            chosen[:] = [action]
            return new

        return await self._change(
            user_id, "grant", step, reference=reference, actor=actor, chosen=chosen
        )

    async def grant(
        self, user_id: str, plan_id: str, *, reference: str | None = None, actor: str = ""
    ) -> Change:
        """Staff: give the user a plan from now, or renew it when one is running."""
        return await self.apply_payment(
            user_id, plan_id, reference=reference or f"grant:{uuid.uuid4().hex}", actor=actor
        )

    async def cancel(self, user_id: str, *, actor: str = "") -> Change:
        """End the subscription with its period (the user keeps access until then)."""
        return await self._change(user_id, "cancel", rules.cancel, actor=actor)

    async def resume(self, user_id: str, *, actor: str = "") -> Change:
        return await self._change(user_id, "resume", rules.resume, actor=actor)

    async def mark_past_due(
        self, user_id: str, *, reference: str | None = None, actor: str = "payments"
    ) -> Change:
        return await self._change(
            user_id, "past_due", lambda sub, _now: rules.past_due(sub), reference=reference,
            actor=actor,
        )  # fmt: skip

    async def revoke(
        self, user_id: str, *, actor: str = "", reference: str | None = None
    ) -> Change:
        """Staff: end the subscription now (a refund, abuse); with a ``reference`` (a
        refund) the same reference again changes nothing."""
        return await self._change(user_id, "revoke", rules.revoke, actor=actor, reference=reference)

    async def expire_due(self, *, limit: int = 500, at_ms: int | None = None) -> list[Change]:
        """The schedule's pass: every running subscription whose access has ended becomes
        ``expired`` (or ``cancelled`` when it was to end). Safe to run anywhere, any
        number of times at once: each one is re-checked under its row lock."""
        at = now_ms() if at_ms is None else at_ms
        s = subscriptions.c
        # Past-due ones run into their grace period; the rule re-checks each one.
        due = (
            select(s.user_id)
            .where(s.status.in_(tuple(rules.LIVE)), s.current_period_end <= at)
            .order_by(s.current_period_end)
            .limit(limit)
        )
        async with self.db.read(primary=True) as conn:
            users = [row.user_id for row in await conn.execute(due)]
        done: list[Change] = []
        for user_id in users:

            def step(sub: Subscription | None, now: int) -> Subscription:
                if sub is None or (new := rules.expire(sub, now, self.grace_ms)) is None:
                    raise SubscriptionError("not due")
                return new

            try:
                done.append(await self._change(user_id, "expire", step, at_ms=at))
            except SubscriptionError:
                continue  # renewed or expired by someone else meanwhile, or in its grace
        return done

    async def _required_plan(self, plan_id: str) -> Plan:
        plan = await self.plan(plan_id)
        if plan is None or not plan.active:
            raise SubscriptionError(f"no active plan {plan_id!r}")
        return plan

    async def _change(
        self,
        user_id: str,
        action: Action,
        step: Step,
        *,
        reference: str | None = None,
        actor: str = "",
        at_ms: int | None = None,
        chosen: list[Action] | None = None,
    ) -> Change:
        """Rules 1-3 around one ``step``; raises ``SubscriptionError`` when it refuses."""
        for attempt in range(ATTEMPTS):
            now = now_ms() if at_ms is None else at_ms
            try:
                change = await self._transaction(
                    user_id, action, step, reference, actor, now, chosen
                )
            except (IntegrityError, OperationalError):
                # A concurrent change took the reference or created the first row:
                # run again and find what it did (rule 2).
                if attempt == ATTEMPTS - 1:
                    raise
                continue
            if change.applied:
                await self._announce(change, reference, actor, now)
            return change
        raise AssertionError("unreachable")

    async def _transaction(
        self,
        user_id: str,
        action: Action,
        step: Step,
        reference: str | None,
        actor: str,
        now: int,
        chosen: list[Action] | None,
    ) -> Change:
        s = subscriptions.c
        async with self.db.write() as conn:
            locked = select(subscriptions).where(s.user_id == user_id).with_for_update()
            row = (await conn.execute(locked)).first()
            before = None if row is None else _subscription(row)
            if reference is not None:
                seen = await conn.execute(
                    select(subscription_history.c.user_id, subscription_history.c.action).where(
                        subscription_history.c.reference == reference
                    )
                )
                if (earlier := seen.first()) is not None:
                    if before is None or earlier.user_id != user_id:
                        raise SubscriptionError(f"reference {reference!r} belongs to another user")
                    return Change(earlier.action, before, applied=False)
            after = step(before, now)
            done: Action = chosen[0] if chosen else action
            values = {
                "plan_id": after.plan_id,
                "status": after.status,
                "current_period_start": after.period_start,
                "current_period_end": after.period_end,
                "cancel_at_period_end": int(after.cancel_at_period_end),
                "cancelled_at": after.cancelled_at,
                "updated_at": now,
            }
            if before is None:
                await conn.execute(
                    subscriptions.insert().values(
                        id=after.id, user_id=user_id, created_at=now, **values
                    )
                )
            else:
                await conn.execute(
                    update(subscriptions).where(s.user_id == user_id).values(**values)
                )
            await conn.execute(
                subscription_history.insert().values(
                    subscription_id=after.id,
                    user_id=user_id,
                    action=done,
                    reference=reference,
                    status=after.status,
                    plan_id=after.plan_id,
                    period_end=after.period_end,
                    actor=actor[:32],
                    created_at=now,
                )
            )
            premium = select(courses.c.id).where(courses.c.premium == 1).scalar_subquery()
            await conn.execute(
                update(enrolments)
                .where(enrolments.c.user_id == user_id, enrolments.c.course_id.in_(premium))
                .values(expires_at=self.access_until(after))
            )
        await cache_aside.invalidate(
            self.cache,
            keys.user_subscription_version(user_id),
            keys.user_subscription(user_id),
            ttl=self.cache_ttl_s,
        )
        return Change(done, after, applied=True)

    async def _announce(self, change: Change, reference: str | None, actor: str, now: int) -> None:
        sub = change.subscription
        event = Event(
            type=topics.subscription_changed(PAST_TENSE[change.action]),
            data={**view(sub), "action": change.action, "reference": reference, "actor": actor},
            key=sub.user_id,
            version=EVENT_VERSION,
            id=uuid.uuid5(uuid.NAMESPACE_URL, f"{sub.id}:{change.action}:{now}").hex,
            ts=now,
        )
        try:
            await self.events.publish(topics.PAYMENT_EVENTS, event)
        except Exception:
            log.exception(
                "subscription event not published",
                extra={"user_id": sub.user_id, "action": change.action},
            )
