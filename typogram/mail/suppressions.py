"""Addresses that bounced hard or complained (``email_suppressions``).

A hard bounce stops every message to the address (there is no mailbox); a
complaint stops every message but security ones (``catalog`` rule 1). The
first reason recorded stays. An address is kept lower-cased.
"""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from typogram.accounts import now_ms
from typogram.db.database import Database
from typogram.db.schema import email_suppressions


class Reason(StrEnum):
    BOUNCED = "bounced"
    COMPLAINED = "complained"


def blocks(reason: Reason | None, *, security: bool) -> bool:
    """Whether a suppression for ``reason`` holds a message back."""
    if reason is None:
        return False
    return reason is Reason.BOUNCED or not security


class Suppressions:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def reason(self, address: str) -> Reason | None:
        async with self._db.read(primary=True) as conn:
            result = await conn.execute(
                select(email_suppressions.c.reason).where(
                    email_suppressions.c.address == address.lower()
                )
            )
            found = result.scalar_one_or_none()
        return None if found is None else Reason(found)

    async def add(self, address: str, reason: Reason, message_id: str = "") -> bool:
        """Suppress ``address``; ``False`` when it already was."""
        try:
            async with self._db.write() as conn:
                await conn.execute(
                    email_suppressions.insert().values(
                        address=address.lower()[:254],
                        reason=reason.value,
                        message_id=message_id[:32],
                        created_at=now_ms(),
                    )
                )
        except IntegrityError:
            return False
        return True
