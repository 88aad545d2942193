"""Checkout: a plan (and a coupon) becomes a pending payment at the provider, once per key.

1. A checkout names an ``Idempotency-Key``. Its row in ``checkout_requests``
   (primary key: user and key) is inserted in the same transaction that
   holds the coupon and writes the pending payment, so either all three
   exist or none does. The request's fingerprint is its plan and coupon
   code (not its bytes): the same key with another plan or coupon is
   refused (``KeyReused``).
2. A coupon is checked (``pricing.refusal``) and held (``Coupons.hold``:
   conditional updates) inside that transaction; a refusal rolls all of
   it back.
3. The provider is called after the commit, idempotent by the payment id:
   the answer is stored as the key's response. A retry of the same key
   answers that response, or — when the first attempt died or the
   provider did not answer — carries on with the same payment, so a
   customer never gets two payments for one key.
4. A provider that refuses the payment fails it (the coupon is released);
   the refusal is stored as the key's answer.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from typogram.db.database import Database
from typogram.db.schema import checkout_requests, coupon_user_counts, coupons, payments
from typogram.payments.coupons import CouponRefused, Coupons, of_row
from typogram.payments.pricing import normalize_code, price, refusal
from typogram.payments.provider import PaymentProvider, ProviderError
from typogram.payments.records import PaymentRecords, audit_row, now_ms
from typogram.subscriptions.rules import Plan


class KeyReused(Exception):
    """The idempotency key was used with another plan or coupon."""


class _KeySeen(Exception):
    """Rule 1: the key has a row already (the transaction that found it rolls back)."""


class KeyBusy(Exception):
    """The key's first request has not finished; retry in a moment."""


class ProviderRefused(Exception):
    """The provider refused the payment; ``answer`` is the stored reply."""

    def __init__(self, answer: Answer) -> None:
        super().__init__(answer.body)
        self.answer = answer


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: dict[str, Any]
    replayed: bool = False


def fingerprint(plan_id: str, coupon: str | None) -> str:
    request = {"plan": plan_id, "coupon": None if coupon is None else normalize_code(coupon)}
    return hashlib.sha256(orjson.dumps(request)).hexdigest()


def answer_of(row: Any) -> dict[str, Any]:
    return {
        "payment_id": row.id,
        "order_id": row.order_id,
        "provider": row.provider,
        "provider_payment_id": row.provider_payment_id,
        "status": row.status,
        "plan": row.plan_id,
        "list_amount": int(row.list_amount),
        "discount": int(row.discount),
        "amount": int(row.amount),
        "currency": row.currency,
        "coupon": row.coupon_code,
        "redirect_url": row.redirect_url,
    }


class Checkout:
    def __init__(
        self,
        db: Database,
        provider: PaymentProvider,
        coupons: Coupons,
        records: PaymentRecords,
    ) -> None:
        self.db = db
        self.provider = provider
        self.coupons = coupons
        self.records = records

    async def start(self, user_id: str, plan: Plan, coupon: str | None, key: str) -> Answer:
        """Rules 1-4. Raises ``KeyReused``, ``KeyBusy``, ``CouponRefused``,
        ``ProviderRefused`` or ``ProviderUnavailable`` (retry with the same key)."""
        printed = fingerprint(plan.id, coupon)
        payment_id, now = uuid.uuid4().hex, now_ms()
        try:
            coupon_code = await self._open(user_id, plan, coupon, key, printed, payment_id, now)
        except _KeySeen:
            return await self._again(user_id, key, printed)
        if coupon_code is not None:
            await self.coupons.changed(coupon_code)
        await self.records.changed(user_id)
        return await self._at_provider(user_id, key, payment_id, now, plan)

    async def _open(
        self,
        user_id: str,
        plan: Plan,
        coupon: str | None,
        key: str,
        printed: str,
        payment_id: str,
        now: int,
    ) -> str | None:
        """Rules 1 and 2: one transaction; the held coupon's code, if any."""
        held = None
        async with self.db.write() as conn:
            try:
                await conn.execute(
                    checkout_requests.insert().values(
                        user_id=user_id, idempotency_key=key, fingerprint=printed,
                        payment_id=payment_id, payment_created_at=now, created_at=now,
                    )
                )  # fmt: skip
            except IntegrityError as exc:
                raise _KeySeen(key) from exc
            charged = price(plan.price_cents, plan.currency, None, min_amount=0)
            if coupon is not None:
                row = (
                    await conn.execute(
                        select(coupons).where(coupons.c.code == normalize_code(coupon))
                    )
                ).first()
                found = None if row is None else of_row(row)
                used = 0
                if found is not None:
                    u = coupon_user_counts.c
                    mine = (u.coupon_id == found.id) & (u.user_id == user_id)
                    used = int(await conn.scalar(select(u.count).where(mine)) or 0)
                reason = refusal(found, plan.id, plan.currency, now, used)
                if reason is not None or found is None:
                    raise CouponRefused(reason or "not_found")
                await self.coupons.hold(
                    conn, found, user_id=user_id, payment_id=payment_id, plan_id=plan.id, now=now
                )
                charged = price(
                    plan.price_cents, plan.currency, found, min_amount=self.coupons.min_amount
                )
                held = found
            await conn.execute(
                payments.insert().values(
                    id=payment_id, created_at=now, user_id=user_id, order_id=uuid.uuid4().hex,
                    plan_id=plan.id, list_amount=charged.list_amount, discount=charged.discount,
                    amount=charged.amount, currency=charged.currency,
                    coupon_id=None if held is None else held.id,
                    coupon_code=None if held is None else held.code,
                    status="pending", provider=self.provider.name, updated_at=now,
                )
            )  # fmt: skip
            await audit_row(
                conn, "payment.checkout", actor=user_id,
                detail={"payment_id": payment_id, "plan": plan.id, "amount": charged.amount,
                        "currency": charged.currency, "coupon": held and held.code},
            )  # fmt: skip
        return None if held is None else held.code

    async def _again(self, user_id: str, key: str, printed: str) -> Answer:
        """Rule 3: the key was seen: its answer, or carry on with its payment."""
        r = checkout_requests.c
        async with self.db.read(primary=True) as conn:
            seen = (
                await conn.execute(
                    select(checkout_requests).where(r.user_id == user_id, r.idempotency_key == key)
                )
            ).first()
        if seen is None:  # the first attempt is rolling back: this one may try again
            raise KeyBusy(key)
        if seen.fingerprint != printed:
            raise KeyReused(key)
        if seen.response is not None:
            stored = orjson.loads(seen.response)
            return Answer(int(stored["status"]), stored["body"], replayed=True)
        return await self._at_provider(
            user_id, key, seen.payment_id, int(seen.payment_created_at), None, replayed=True
        )

    async def _at_provider(
        self,
        user_id: str,
        key: str,
        payment_id: str,
        created_at: int,
        plan: Plan | None,
        *,
        replayed: bool = False,
    ) -> Answer:
        """Rules 3 and 4."""
        row = await self.records.get(payment_id)
        assert row is not None, "the payment was written with its key"
        if row.provider_payment_id is None and row.status == "pending":
            try:
                made = await self.provider.create_payment(
                    payment_id=payment_id,
                    amount=int(row.amount),
                    currency=row.currency,
                    description=plan.name if plan is not None else row.plan_id,
                    metadata={"user_id": user_id, "order_id": row.order_id, "plan_id": row.plan_id},
                )
            except ProviderError as exc:
                answer = Answer(422, {"error": {"code": "unprocessable", "message": str(exc)}})
                await self._refused(user_id, key, row, str(exc), answer)
                raise ProviderRefused(answer) from exc
            p = payments.c
            async with self.db.write() as conn:
                await conn.execute(
                    update(payments)
                    .where(p.id == payment_id, p.created_at == created_at)
                    .values(
                        provider_payment_id=made.provider_payment_id,
                        redirect_url=made.redirect_url,
                        updated_at=now_ms(),
                    )
                )
            row = await self.records.get(payment_id)
            assert row is not None, "just updated"
            await self.records.changed(user_id)
        answer = Answer(201, answer_of(row), replayed=replayed)
        await self._store(user_id, key, answer)
        return answer

    async def _store(self, user_id: str, key: str, answer: Answer) -> None:
        r = checkout_requests.c
        stored = orjson.dumps({"status": answer.status, "body": answer.body}).decode()
        async with self.db.write() as conn:
            await conn.execute(
                update(checkout_requests)
                .where(r.user_id == user_id, r.idempotency_key == key, r.response.is_(None))
                .values(response=stored)
            )

    async def _refused(self, user_id: str, key: str, row: Any, reason: str, answer: Answer) -> None:
        """Rule 4: the payment fails at once and its coupon is released."""
        now = now_ms()
        p = payments.c
        code = None
        async with self.db.write() as conn:
            failed = await conn.execute(
                update(payments)
                .where(p.id == row.id, p.created_at == row.created_at, p.status == "pending")
                .values(status="failed", failure_reason=reason[:255], failed_at=now, updated_at=now)
            )
            if failed.rowcount == 1:
                code = await self.coupons.settle(conn, row.id, "release", now)
        if code is not None:
            await self.coupons.changed(code)
        await self.records.changed(user_id)
        await self._store(user_id, key, answer)
