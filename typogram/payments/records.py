"""Payment rows: their public shape, reads, pages, the per-user recent cache and audit rows.

1. A user's newest payments (``payments_max_page`` of them) are cached as
   ``user:{id}:payments:recent`` for ``payments_recent_cache_ttl_s``; every
   change of one of the user's payments renews the version token
   (``changed``), so a page is never staler than the change.
2. Pages are keyset pages, newest first: the cursor is the last row's
   ``created_at`` and id.
3. ``audit_row`` writes to the audit log inside the caller's transaction,
   so a money-moving change and its audit entry commit together.
"""

from __future__ import annotations

import base64
import binascii
import time
from typing import Any

import orjson
from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from typogram import cache_aside, keys
from typogram.db.database import Database
from typogram.db.schema import audit_log, payments
from typogram.ports import Cache

PUBLIC = (
    "id", "user_id", "order_id", "plan_id", "status", "amount", "list_amount", "discount",
    "currency", "coupon_code", "provider", "provider_payment_id", "failure_reason", "created_at",
    "updated_at", "succeeded_at", "failed_at", "refunded_at",
)  # fmt: skip
MONEY = ("amount", "list_amount", "discount")


def now_ms() -> int:
    return int(time.time() * 1000)


def view(row: Any) -> dict[str, Any]:
    """The JSON form of a payment row (the API and the cache hold it)."""
    doc = {name: getattr(row, name) for name in PUBLIC}
    for name in MONEY:
        doc[name] = int(doc[name])
    doc["credited"] = row.credited_at is not None
    doc["redirect_url"] = row.redirect_url if row.status == "pending" else ""
    return doc


def encode_cursor(created_at: int, payment_id: str) -> str:
    return base64.urlsafe_b64encode(f"{created_at}:{payment_id}".encode()).decode()


def decode_cursor(cursor: str) -> tuple[int, str]:
    """Raises ``ValueError`` for anything this module did not make."""
    try:
        created, _, payment_id = base64.urlsafe_b64decode(cursor.encode()).decode().partition(":")
        return int(created), payment_id
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise ValueError("invalid cursor") from exc


async def audit_row(
    conn: AsyncConnection, action: str, *, actor: str | None, detail: dict[str, Any], ip: str = ""
) -> None:
    """Rule 3. ``detail`` never holds a secret."""
    await conn.execute(
        audit_log.insert().values(
            user_id=actor,
            action=action[:32],
            outcome="ok",
            ip=ip[:45],
            detail=orjson.dumps(detail).decode(),
            created_at=now_ms(),
        )
    )


class PaymentRecords:
    def __init__(self, db: Database, cache: Cache, *, ttl_s: float, max_page: int) -> None:
        self.db = db
        self.cache = cache
        self.ttl_s = ttl_s
        self.max_page = max_page

    async def get(self, payment_id: str) -> Any | None:
        """The row from the primary (every partition: the id alone is known)."""
        async with self.db.read(primary=True) as conn:
            return (await conn.execute(select(payments).where(payments.c.id == payment_id))).first()

    async def mine(
        self, user_id: str, *, limit: int, cursor: str | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Rules 1 and 2: a page of the user's payments, the first one from the cache."""
        if cursor is not None:
            return await self.page(user_id=user_id, limit=limit, cursor=cursor)
        key, version_key = keys.user_recent_payments(user_id), keys.user_payments_version(user_id)
        value, version = await cache_aside.read(self.cache, key, version_key)
        if value is None:
            value, _ = await self.page(user_id=user_id, limit=self.max_page, cursor=None)
            await cache_aside.store(self.cache, key, version, value, self.ttl_s)
        rows: list[dict[str, Any]] = value
        following = None
        if len(rows) > limit:
            last = rows[limit - 1]
            following = encode_cursor(last["created_at"], last["id"])
        elif len(rows) == self.max_page == limit:
            last = rows[-1]
            following = encode_cursor(last["created_at"], last["id"])
        return rows[:limit], following

    async def page(
        self,
        *,
        limit: int,
        cursor: str | None,
        user_id: str | None = None,
        status: str | None = None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Rule 2, for one user or (staff) everyone, optionally one status."""
        p = payments.c
        statement = select(payments).order_by(p.created_at.desc(), p.id.desc()).limit(limit + 1)
        if user_id is not None:
            statement = statement.where(p.user_id == user_id)
        if status is not None:
            statement = statement.where(p.status == status)
        if cursor is not None:
            created, last_id = decode_cursor(cursor)
            statement = statement.where(
                or_(p.created_at < created, and_(p.created_at == created, p.id < last_id))
            )
        async with self.db.read(primary=user_id is not None) as conn:
            rows = [view(row) for row in await conn.execute(statement)]
        following = None
        if len(rows) > limit:
            rows = rows[:limit]
            following = encode_cursor(rows[-1]["created_at"], rows[-1]["id"])
        return rows, following

    async def changed(self, user_id: str) -> None:
        """Rule 1: the user's cached payments are stale from now."""
        await cache_aside.invalidate(
            self.cache,
            keys.user_payments_version(user_id),
            keys.user_recent_payments(user_id),
            ttl=self.ttl_s,
        )
