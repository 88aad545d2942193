"""The ledger: provider events applied to payments, and what follows, exactly once.

What the ``payments`` worker calls for each ``payment.webhook`` event.

1. ``apply`` locks the payment's row, asks the state machine
   (``machine.step``) and writes the new status with its audit entry in
   one transaction. An event whose amount or currency differ from the
   payment's changes nothing (logged and audited).
2. Then ``settle`` finishes what the stored state still asks for
   (``machine.follow_ups``), whatever event brought it there: credit the
   subscription (``Subscriptions.apply_payment``, reference = payment id:
   once), settle the coupon, revoke on refund (reference
   ``refund:<payment id>``: once), announce. Each step records that it is
   done in the payment's row, and the state is read again after each
   round, so a worker killed at any point finishes on the replay and a
   replay of a finished payment does nothing.
3. Refund policy: a refund ends the subscription now (``revoke``) when the
   period this payment paid for has not ended yet; a refund of a payment
   whose period is over changes no subscription.
4. Announcements (``payment.succeeded|failed|refunded`` on
   ``payment-events``, key the user) carry an id derived from the payment
   and status, so a consumer (the receipt mailer) counts each once.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select, update

from typogram import topics
from typogram.db.database import Database
from typogram.db.schema import coupon_redemptions, payments, subscription_history
from typogram.logs import get_logger
from typogram.payments import machine
from typogram.payments.coupons import Coupons
from typogram.payments.provider import PaymentProvider
from typogram.payments.records import PaymentRecords, audit_row, now_ms, view
from typogram.ports import Event, EventLog
from typogram.subscriptions.rules import SubscriptionError
from typogram.subscriptions.service import Subscriptions

log = get_logger("typogram.payments")
EVENT_VERSION = 1
MAX_ROUNDS = 4  # follow-up rounds per call: each round re-reads the state


def announcement_id(payment_id: str, status: str) -> str:
    return uuid.uuid5(uuid.NAMESPACE_URL, f"payment:{payment_id}:{status}").hex


class Ledger:
    def __init__(
        self,
        db: Database,
        events: EventLog,
        provider: PaymentProvider,
        subscriptions: Subscriptions,
        coupons: Coupons,
        records: PaymentRecords,
    ) -> None:
        self.db = db
        self.events = events
        self.provider = provider
        self.subscriptions = subscriptions
        self.coupons = coupons
        self.records = records

    async def apply(self, data: Mapping[str, Any]) -> machine.Status | None:
        """Rules 1 and 2 for one provider event; the payment's status after it
        (``None``: no such payment)."""
        payment_id = str(data["payment_id"])
        signal: machine.Signal = data["signal"]
        now = now_ms()
        p = payments.c
        async with self.db.write() as conn:
            row = (
                await conn.execute(select(payments).where(p.id == payment_id).with_for_update())
            ).first()
            if row is None:
                log.warning("event for an unknown payment", extra={"payment_id": payment_id})
                return None
            values: dict[str, Any] = {}
            intent = data.get("intent_id")
            if intent and row.provider_intent_id is None:
                values["provider_intent_id"] = str(intent)[:255]
            new = machine.step(row.status, signal)
            mismatch = self._mismatch(row, data, signal)
            if new is not None and mismatch:
                log.error(
                    "provider event disagrees with the payment; ignored",
                    extra={"payment_id": payment_id, "problem": mismatch},
                )
                await audit_row(
                    conn, "payment.mismatch", actor=None,
                    detail={"payment_id": payment_id, "event_id": data.get("event_id"),
                            "problem": mismatch},
                )  # fmt: skip
                new = None
            if new is not None:
                values.update(status=new, **{f"{new}_at": now})
                if new == "failed":
                    values["failure_reason"] = str(data.get("type", ""))[:255]
                await audit_row(
                    conn, f"payment.{new}", actor=None,
                    detail={"payment_id": payment_id, "user": row.user_id,
                            "amount": int(row.amount), "currency": row.currency,
                            "from": row.status, "event_id": data.get("event_id")},
                )  # fmt: skip
            if values:
                await conn.execute(
                    update(payments)
                    .where(p.id == payment_id, p.created_at == row.created_at)
                    .values(**values, updated_at=now)
                )
        if new is not None:
            await self.records.changed(row.user_id)
        return await self.settle(payment_id)

    @staticmethod
    def _mismatch(row: Any, data: Mapping[str, Any], signal: machine.Signal) -> str | None:
        if signal not in {"succeeded", "refunded"}:
            return None
        amount, currency = data.get("amount"), data.get("currency")
        if amount is not None and int(amount) != int(row.amount):
            return f"amount {amount} is not {int(row.amount)}"
        if currency and str(currency).upper() != row.currency:
            return f"currency {currency} is not {row.currency}"
        refunded = data.get("amount_refunded")
        if signal == "refunded" and refunded is not None and int(refunded) < int(row.amount):
            return f"a partial refund ({refunded} of {int(row.amount)})"
        return None

    async def request_refund(self, payment_id: str, *, actor: str, ip: str, reason: str) -> str:
        """Staff: ask the provider to refund a succeeded payment (whole); the refund id.
        ``charge.refunded`` then arrives by webhook and ``apply`` refunds it here. Asking
        again is safe: the provider's refund is idempotent by the payment id. Raises
        ``machine.PaymentError`` (not refundable) or ``LookupError`` (no such payment)."""
        row = await self.records.get(payment_id)
        if row is None:
            raise LookupError(payment_id)
        machine.refundable(row.status)
        target = row.provider_intent_id or row.provider_payment_id
        if target is None:
            raise machine.PaymentError("the provider's payment is not known yet")
        refund_id = await self.provider.refund(
            payment_id=row.id, provider_payment_id=target, amount=int(row.amount)
        )
        p = payments.c
        async with self.db.write() as conn:
            await conn.execute(
                update(payments)
                .where(p.id == row.id, p.created_at == row.created_at)
                .values(refund_requested_at=now_ms(), updated_at=now_ms())
            )
            await audit_row(
                conn, "payment.refund", actor=actor, ip=ip,
                detail={"payment_id": row.id, "user": row.user_id, "amount": int(row.amount),
                        "currency": row.currency, "refund_id": refund_id, "reason": reason},
            )  # fmt: skip
        await self.records.changed(row.user_id)
        return refund_id

    async def abandon_stale(self, older_than_s: int, *, limit: int = 200) -> int:
        """Fail payments the provider never made (the checkout died before it answered
        and nobody retried its key); their coupons are released. How many failed."""
        p = payments.c
        before = now_ms() - older_than_s * 1000
        async with self.db.read(primary=True) as conn:
            stale = list(
                await conn.scalars(
                    select(p.id)
                    .where(p.status == "pending", p.provider_payment_id.is_(None))
                    .where(p.created_at < before)
                    .limit(limit)
                )
            )
        for payment_id in stale:
            await self.apply({"payment_id": payment_id, "signal": "failed", "type": "abandoned"})
        return len(stale)

    async def settle(self, payment_id: str) -> machine.Status | None:
        """Rule 2: run the follow-ups the stored state asks for until none is left."""
        status: machine.Status | None = None
        for _ in range(MAX_ROUNDS):
            row = await self.records.get(payment_id)
            if row is None:
                return None
            status = row.status
            todo = machine.follow_ups(await self._progress(row))
            if not todo:
                return status
            for step in todo:
                await self._follow_up(step, row)
        return status

    async def _progress(self, row: Any) -> machine.Progress:
        coupon = None
        if row.coupon_id is not None:
            async with self.db.read(primary=True) as conn:
                coupon = await conn.scalar(
                    select(coupon_redemptions.c.status).where(
                        coupon_redemptions.c.payment_id == row.id
                    )
                )
        return machine.Progress(
            status=row.status,
            credited=row.credited_at is not None,
            coupon=coupon,
            refund_settled=row.refund_settled_at is not None,
            announced=row.announced,
        )

    async def _follow_up(self, step: machine.FollowUp, row: Any) -> None:
        if step == "credit":
            await self.subscriptions.apply_payment(
                row.user_id, row.plan_id, reference=row.id, actor="payments"
            )
            await self._mark(row, credited_at=now_ms())
        elif step in {"redeem", "retake"}:
            await self._coupon(row, "redeem" if step == "redeem" else "retake")
        elif step == "cancel_and_release":
            target = row.provider_intent_id or row.provider_payment_id
            if target is None or await self.provider.cancel(provider_payment_id=target):
                await self._coupon(row, "release")
            else:
                log.warning("a failed payment succeeded at the provider", extra={"id": row.id})
        elif step == "revoke":
            await self._revoke(row)
            await self._mark(row, refund_settled_at=now_ms())
        else:
            await self._mark(row, announced=await self._announce(row))
        await self.records.changed(row.user_id)

    async def _mark(self, row: Any, **values: Any) -> None:
        p = payments.c
        async with self.db.write() as conn:
            await conn.execute(
                update(payments)
                .where(p.id == row.id, p.created_at == row.created_at)
                .values(**values)
            )

    async def _coupon(self, row: Any, action: Any) -> None:
        now = now_ms()
        async with self.db.write() as conn:
            code = await self.coupons.settle(conn, row.id, action, now)
            if code is not None and action == "retake":
                await audit_row(
                    conn, "coupon.overdrawn", actor=None,
                    detail={"payment_id": row.id, "coupon": code},
                )  # fmt: skip
        if code is not None:
            await self.coupons.changed(code)

    async def _revoke(self, row: Any) -> None:
        """Rule 3."""
        h = subscription_history.c
        async with self.db.read(primary=True) as conn:
            paid_until = await conn.scalar(select(h.period_end).where(h.reference == row.id))
        if paid_until is None or int(paid_until) <= now_ms():
            return
        with contextlib.suppress(SubscriptionError):  # nothing running: nothing to take back
            await self.subscriptions.revoke(
                row.user_id, actor="payments", reference=f"refund:{row.id}"
            )

    async def _announce(self, row: Any) -> str:
        """Rule 4: the row as it is now (the steps before this one in the round changed it)."""
        row = await self.records.get(row.id) or row
        plan = await self.subscriptions.plan(row.plan_id)
        data = {
            **view(row),
            "user_id": row.user_id,
            "plan_name": None if plan is None else plan.name,
        }
        event = Event(
            type=topics.payment_announced(row.status),
            data=data,
            key=row.user_id,
            version=EVENT_VERSION,
            id=announcement_id(row.id, row.status),
        )
        await self.events.publish(topics.PAYMENT_EVENTS, event)
        return str(row.status)
