"""Coupons: staff define them, customers validate them, checkouts redeem them atomically.

1. ``lookup`` reads an active coupon (with its redemption count) through the
   cache (``coupon:{code}``, ``coupon_cache_ttl_s``, an unknown code cached
   as ``null`` too); every change, redemption or release renews the
   coupon's version token, so a stale entry is never served
   (``typogram.cache_aside``).
2. ``validate`` applies ``pricing.refusal`` to that and the user's own count
   and answers the price or the reason. It decides nothing: a checkout can
   still be refused when it redeems.
3. ``hold`` runs inside the checkout's transaction and never reads before it
   writes: one conditional ``UPDATE`` raises the coupon's count only while
   it is below ``max_redemptions`` (and the coupon active and in its
   window); a second raises the user's count only while it is below
   ``max_per_user``. Either matching no row refuses the checkout and the
   transaction rolls back, so no concurrency can take a coupon past a
   limit. The coupon's row lock orders concurrent holders.
4. ``release`` (a failed payment) lowers both counts once: it acts only on
   a redemption still ``held`` (a conditional update of its status).
   ``redeem`` marks a held one ``redeemed``; ``retake`` counts a released
   one again when its payment succeeded after all (audited: the only way
   past a limit, for money already taken).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, replace
from typing import Any, Literal

from sqlalchemy import and_, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from typogram import cache_aside, keys
from typogram.db.database import Database
from typogram.db.schema import coupon_redemptions, coupon_user_counts, coupons
from typogram.payments.pricing import Coupon, Price, Reason, normalize_code, price, refusal
from typogram.ports import Cache

Settle = Literal["redeem", "release", "retake"]
SETTLES: dict[Settle, tuple[str, str, int]] = {  # from, to, change of the counts
    "redeem": ("held", "redeemed", 0),
    "release": ("held", "released", -1),
    "retake": ("released", "redeemed", 1),
}
EDITABLE = frozenset(
    {"valid_from", "valid_until", "max_redemptions", "max_per_user", "plans", "active"}
)


class CouponRefused(Exception):
    """A checkout's coupon does not apply (``reason``: ``pricing.Reason``)."""

    def __init__(self, reason: Reason) -> None:
        super().__init__(reason)
        self.reason: Reason = reason


class DuplicateCode(Exception):
    """A coupon with this code exists already."""


def now_ms() -> int:
    return int(time.time() * 1000)


def _plans_column(plans: Sequence[str]) -> str:
    return f",{','.join(plans)}," if plans else ""


def of_row(row: Any) -> Coupon:
    return Coupon(
        id=row.id,
        code=row.code,
        kind=row.kind,
        percent_off=row.percent_off,
        amount_off=None if row.amount_off is None else int(row.amount_off),
        currency=row.currency,
        valid_from=None if row.valid_from is None else int(row.valid_from),
        valid_until=None if row.valid_until is None else int(row.valid_until),
        max_redemptions=row.max_redemptions,
        max_per_user=row.max_per_user,
        plans=tuple(p for p in row.plans.split(",") if p),
        active=bool(row.active),
        redeemed=int(row.redeemed_count),
    )


def view(coupon: Coupon) -> dict[str, Any]:
    doc = asdict(coupon)
    doc["plans"] = list(coupon.plans)
    return doc


def of_view(doc: dict[str, Any]) -> Coupon:
    return Coupon(**{**doc, "plans": tuple(doc["plans"])})


class Coupons:
    def __init__(self, db: Database, cache: Cache, *, cache_ttl_s: float, min_amount: int) -> None:
        self.db = db
        self.cache = cache
        self.cache_ttl_s = cache_ttl_s
        self.min_amount = min_amount

    # -- reads ------------------------------------------------------------------

    async def lookup(self, code: str) -> Coupon | None:
        """Rule 1: the active coupon with this code, ``None`` when there is none."""
        code = normalize_code(code)
        value, version = await cache_aside.read(
            self.cache, keys.coupon(code), keys.coupon_version(code)
        )
        if value is not None:
            return None if value.get("none") else of_view(value)
        coupon = await self.get(code)
        if coupon is not None and not coupon.active:
            coupon = None
        stored = {"none": True} if coupon is None else view(coupon)
        await cache_aside.store(self.cache, keys.coupon(code), version, stored, self.cache_ttl_s)
        return coupon

    async def get(self, code: str) -> Coupon | None:
        """From the primary, active or not (staff)."""
        async with self.db.read(primary=True) as conn:
            row = (
                await conn.execute(select(coupons).where(coupons.c.code == normalize_code(code)))
            ).first()
        return None if row is None else of_row(row)

    async def used_by(self, coupon_id: str, user_id: str) -> int:
        c = coupon_user_counts.c
        async with self.db.read(primary=True) as conn:
            count = await conn.scalar(
                select(c.count).where(c.coupon_id == coupon_id, c.user_id == user_id)
            )
        return int(count or 0)

    async def validate(
        self, code: str, user_id: str, plan_id: str, list_amount: int, currency: str
    ) -> tuple[Price | None, Reason | None, Coupon | None]:
        """Rule 2: the price with the coupon, or why it does not apply."""
        coupon = await self.lookup(code)
        used = 0
        if coupon is not None and coupon.max_per_user is not None:
            used = await self.used_by(coupon.id, user_id)
        reason = refusal(coupon, plan_id, currency, now_ms(), used)
        if reason is not None:
            return None, reason, coupon
        return price(list_amount, currency, coupon, min_amount=self.min_amount), None, coupon

    async def listing(self, *, limit: int, after: str | None = None) -> list[Coupon]:
        statement = select(coupons).order_by(coupons.c.code).limit(limit)
        if after:
            statement = statement.where(coupons.c.code > after)
        async with self.db.read(primary=True) as conn:
            return [of_row(row) for row in await conn.execute(statement)]

    # -- staff changes ------------------------------------------------------------

    async def create(self, coupon: Coupon, *, actor: str) -> Coupon:
        now = now_ms()
        coupon = replace(coupon, id=uuid.uuid4().hex, code=normalize_code(coupon.code), redeemed=0)
        values = {k: v for k, v in view(coupon).items() if k not in {"plans", "redeemed", "active"}}
        try:
            async with self.db.write() as conn:
                await conn.execute(
                    coupons.insert().values(
                        **values,
                        plans=_plans_column(coupon.plans),
                        active=int(coupon.active),
                        created_by=actor[:32],
                        created_at=now,
                        updated_at=now,
                    )
                )
        except IntegrityError as exc:
            raise DuplicateCode(coupon.code) from exc
        await self.changed(coupon.code)
        return coupon

    async def update(self, code: str, changes: dict[str, Any]) -> Coupon | None:
        """Change the ``EDITABLE`` fields; ``None`` for an unknown code."""
        unknown = set(changes) - EDITABLE
        if unknown:
            raise ValueError(f"not editable: {', '.join(sorted(unknown))}")
        values = dict(changes)
        if "plans" in values:
            values["plans"] = _plans_column(values["plans"])
        if "active" in values:
            values["active"] = int(values["active"])
        code = normalize_code(code)
        async with self.db.write() as conn:
            done = await conn.execute(
                update(coupons).where(coupons.c.code == code).values(**values, updated_at=now_ms())
            )
        await self.changed(code)
        return None if done.rowcount == 0 else await self.get(code)

    async def changed(self, code: str) -> None:
        """Rule 1: cached copies of the coupon are stale from now."""
        await cache_aside.invalidate(
            self.cache, keys.coupon_version(code), keys.coupon(code), ttl=self.cache_ttl_s
        )

    # -- redemption (inside a caller's transaction) -------------------------------------

    async def hold(
        self,
        conn: AsyncConnection,
        coupon: Coupon,
        *,
        user_id: str,
        payment_id: str,
        plan_id: str,
        now: int,
    ) -> None:
        """Rule 3; raises ``CouponRefused`` (the caller's transaction must roll back)."""
        c = coupons.c
        taken = await conn.execute(
            update(coupons)
            .where(
                c.id == coupon.id,
                c.active == 1,
                or_(c.valid_from.is_(None), c.valid_from <= now),
                or_(c.valid_until.is_(None), c.valid_until > now),
                or_(c.plans == "", c.plans.contains(f",{plan_id},", autoescape=True)),
                or_(c.max_redemptions.is_(None), c.redeemed_count < c.max_redemptions),
            )
            .values(redeemed_count=c.redeemed_count + 1, updated_at=now)
        )
        if taken.rowcount != 1:
            raise CouponRefused(await self._why_not(conn, coupon.id, plan_id, now))
        await self._count_user(conn, coupon, user_id, now)
        await conn.execute(
            coupon_redemptions.insert().values(
                payment_id=payment_id,
                coupon_id=coupon.id,
                user_id=user_id,
                status="held",
                created_at=now,
                updated_at=now,
            )
        )

    async def _count_user(
        self, conn: AsyncConnection, coupon: Coupon, user_id: str, now: int
    ) -> None:
        u = coupon_user_counts.c
        mine = and_(u.coupon_id == coupon.id, u.user_id == user_id)
        raised = await conn.execute(
            update(coupon_user_counts)
            .where(mine, u.count < (coupon.max_per_user or 2**31 - 1))
            .values(count=u.count + 1, updated_at=now)
        )
        if raised.rowcount == 1:
            return
        # No row yet (first use), or the limit is reached. The coupon row is locked by
        # this transaction, so no other checkout of this coupon can insert meanwhile.
        # A locking read: it sees what committed while this one waited for the coupon.
        exists = await conn.scalar(select(u.count).where(mine).with_for_update())
        if exists is not None:
            raise CouponRefused("already_used")
        await conn.execute(
            coupon_user_counts.insert().values(
                coupon_id=coupon.id, user_id=user_id, count=1, updated_at=now
            )
        )

    async def _why_not(
        self, conn: AsyncConnection, coupon_id: str, plan_id: str, now: int
    ) -> Reason:
        row = (await conn.execute(select(coupons).where(coupons.c.id == coupon_id))).first()
        coupon = None if row is None else of_row(row)
        currency = coupon.currency or "" if coupon is not None else ""
        return refusal(coupon, plan_id, currency, now, 0) or "exhausted"

    async def settle(
        self, conn: AsyncConnection, payment_id: str, action: Settle, now: int
    ) -> str | None:
        """Rule 4: ``redeem`` (held → redeemed), ``release`` (held → released, counts
        lowered) or ``retake`` (released → redeemed, counts raised) the payment's
        redemption; the coupon's code when it moved, else ``None`` (done before)."""
        source, target, delta = SETTLES[action]
        r = coupon_redemptions.c
        row = (
            await conn.execute(
                select(r.coupon_id, r.user_id).where(r.payment_id == payment_id, r.status == source)
            )
        ).first()
        if row is None:
            return None
        moved = await conn.execute(
            update(coupon_redemptions)
            .where(r.payment_id == payment_id, r.status == source)
            .values(status=target, updated_at=now)
        )
        if moved.rowcount != 1:
            return None  # another worker settled it first
        if delta:
            c, u = coupons.c, coupon_user_counts.c
            await conn.execute(
                update(coupons)
                .where(c.id == row.coupon_id)
                .values(redeemed_count=c.redeemed_count + delta, updated_at=now)
            )
            await conn.execute(
                update(coupon_user_counts)
                .where(u.coupon_id == row.coupon_id, u.user_id == row.user_id)
                .values(count=u.count + delta, updated_at=now)
            )
        code = await conn.scalar(select(coupons.c.code).where(coupons.c.id == row.coupon_id))
        return None if code is None else str(code)
