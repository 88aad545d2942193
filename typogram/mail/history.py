"""``email_history``: one row per message, and the transitions its status may take.

Rules:

1. A message is inserted ``queued`` by the outbox before its event is
   published, so the worker always finds its row (and staff see it waiting).
2. The worker moves it once: ``queued`` → ``sent`` (with the provider's
   message id) or ``queued`` → ``failed`` (a permanent refusal, attempts
   used up, a suppressed address or category turned off). A row not
   ``queued`` is never sent again: a redelivered event does nothing.
3. Delivery events move a sent message on: ``sent`` → ``delivered`` →
   ``bounced`` or ``complained``; never back (a late ``delivered`` does not
   hide a bounce), never from ``queued`` or ``failed``.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from sqlalchemy import select, update

from typogram.accounts import now_ms
from typogram.db.database import Database
from typogram.db.schema import email_history

ERROR_MAX = 255


class Status(StrEnum):
    QUEUED = "queued"
    SENT = "sent"
    DELIVERED = "delivered"
    BOUNCED = "bounced"
    COMPLAINED = "complained"
    FAILED = "failed"


# Rule 3: what a delivery event may move a message from.
DELIVERY_FROM: dict[Status, tuple[Status, ...]] = {
    Status.DELIVERED: (Status.SENT,),
    Status.BOUNCED: (Status.SENT, Status.DELIVERED),
    Status.COMPLAINED: (Status.SENT, Status.DELIVERED),
}


def queued_row(
    *, message_id: str, created_at: int, user_id: str, email_type: str, address: str
) -> dict[str, Any]:
    return {
        "id": message_id,
        "created_at": created_at,
        "user_id": user_id,
        "email_type": email_type,
        "address": address,
        "status": Status.QUEUED.value,
        "provider": "",
        "provider_message_id": None,
        "attempts": 0,
        "error": "",
        "sent_at": None,
        "updated_at": created_at,
    }


class EmailHistory:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def insert(self, row: dict[str, Any]) -> None:
        async with self._db.write() as conn:
            await conn.execute(email_history.insert().values(**row))

    async def get(self, message_id: str, created_at: int) -> dict[str, Any] | None:
        async with self._db.read(primary=True) as conn:
            result = await conn.execute(
                select(email_history).where(
                    email_history.c.id == message_id, email_history.c.created_at == created_at
                )
            )
            row = result.mappings().first()
        return dict(row) if row else None

    async def _move(self, message_id: str, created_at: int, values: dict[str, Any]) -> bool:
        async with self._db.write() as conn:
            result = await conn.execute(
                update(email_history)
                .where(
                    email_history.c.id == message_id,
                    email_history.c.created_at == created_at,
                    email_history.c.status == Status.QUEUED.value,
                )
                .values(**values, updated_at=now_ms())
            )
        return bool(result.rowcount)

    async def attempted(self, message_id: str, created_at: int, attempts: int, error: str) -> None:
        """A temporary failure: the message stays ``queued``."""
        await self._move(message_id, created_at, {"attempts": attempts, "error": error[:ERROR_MAX]})

    async def sent(
        self, message_id: str, created_at: int, *, attempts: int, provider: str, provider_id: str
    ) -> bool:
        return await self._move(
            message_id,
            created_at,
            {
                "status": Status.SENT.value,
                "attempts": attempts,
                "provider": provider,
                "provider_message_id": provider_id[:255],
                "sent_at": now_ms(),
                "error": "",
            },
        )

    async def failed(self, message_id: str, created_at: int, *, attempts: int, error: str) -> bool:
        return await self._move(
            message_id,
            created_at,
            {"status": Status.FAILED.value, "attempts": attempts, "error": error[:ERROR_MAX]},
        )

    async def delivery(self, provider_message_id: str, status: Status) -> dict[str, Any] | None:
        """Rule 3: apply a delivery event to the message the provider knows by this id;
        returns the message (moved or not), or ``None`` when there is no such message."""
        allowed = [s.value for s in DELIVERY_FROM[status]]
        async with self._db.write() as conn:
            await conn.execute(
                update(email_history)
                .where(
                    email_history.c.provider_message_id == provider_message_id,
                    email_history.c.status.in_(allowed),
                )
                .values(status=status.value, updated_at=now_ms())
            )
            result = await conn.execute(
                select(email_history).where(
                    email_history.c.provider_message_id == provider_message_id
                )
            )
            row = result.mappings().first()
        return dict(row) if row else None

    async def of_user(
        self, user_id: str, *, limit: int, before: int | None = None
    ) -> list[dict[str, Any]]:
        """The user's messages, newest first; ``before``: queued before this (epoch ms)."""
        query = select(email_history).where(email_history.c.user_id == user_id)
        if before is not None:
            query = query.where(email_history.c.created_at < before)
        query = query.order_by(email_history.c.created_at.desc(), email_history.c.id.desc())
        async with self._db.read(primary=True) as conn:
            result = await conn.execute(query.limit(limit))
            return [dict(row) for row in result.mappings()]
