"""Each user's address: verified or not, and one waiting to replace it.

Rules:

1. A user's address is verified while ``email_addresses.verified_email``
   equals ``users.email`` and no other address waits (``pending_email``):
   changing the address re-verifies.
2. Registering with an address another account holds must answer as any
   registration does (no enumeration). That account is made with an
   *unclaimed* address: ``users.email`` holds ``"~<random> <address>"``
   (``unclaimed``: it never equals an address and never receives mail) and
   the address waits in ``pending_email``, where no verification can ever
   complete. The holder of the address is told by e-mail.
3. Verifying moves a pending address into ``users.email``; when someone
   else holds it by then, the link is refused and nothing changes.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from typogram.accounts import Accounts, now_ms
from typogram.db.database import Database
from typogram.db.schema import email_addresses, users
from typogram.mail.tokens import invalid
from typogram.mail.unclaimed import is_unclaimed, shown


@dataclass(frozen=True, slots=True)
class AddressState:
    current: str  # ``users.email``, as stored
    pending: str | None
    verified: bool

    @property
    def deliverable(self) -> str | None:
        """Where mail about the account goes: the current address, unless unclaimed."""
        return None if is_unclaimed(self.current) else self.current

    @property
    def wanted(self) -> str:
        """The address the user asked for: the pending one, else the current one."""
        return self.pending or shown(self.current)


class EmailAddresses:
    def __init__(self, db: Database, accounts: Accounts) -> None:
        self._db = db
        self._accounts = accounts

    async def state(self, user_id: str) -> AddressState | None:
        """``None`` when there is no such user."""
        statement = (
            select(users.c.email, email_addresses.c.verified_email, email_addresses.c.pending_email)
            .select_from(users.outerjoin(email_addresses, email_addresses.c.user_id == users.c.id))
            .where(users.c.id == user_id)
        )
        async with self._db.read(primary=True) as conn:
            row = (await conn.execute(statement)).first()
        if row is None:
            return None
        current, verified, pending = row
        return AddressState(current, pending, pending is None and verified == current)

    async def owner(self, address: str) -> str | None:
        """The user whose ``users.email`` is ``address`` (lower-cased)."""
        async with self._db.read(primary=True) as conn:
            result = await conn.execute(select(users.c.id).where(users.c.email == address.lower()))
            return result.scalar_one_or_none()

    async def _write(self, user_id: str, **values: object) -> None:
        async with self._db.write() as conn:
            changed = await conn.execute(
                update(email_addresses)
                .where(email_addresses.c.user_id == user_id)
                .values(**values, updated_at=now_ms())
            )
            if changed.rowcount == 0:
                row: dict[str, object] = {
                    "verified_email": None,
                    "verified_at": None,
                    "pending_email": None,
                }
                row.update(values)
                await conn.execute(
                    email_addresses.insert().values(user_id=user_id, **row, updated_at=now_ms())
                )

    async def set_pending(self, user_id: str, address: str | None) -> None:
        try:
            await self._write(user_id, pending_email=address)
        except IntegrityError:  # a concurrent first write made the row: update it
            await self._write(user_id, pending_email=address)

    async def verify(self, user_id: str, address: str) -> None:
        """Rule 3: ``address`` (a token's) becomes the user's verified address. Refuses
        (``invalid_token``) a link for an address the user no longer wants."""
        state = await self.state(user_id)
        if state is None or address not in (state.current, state.pending):
            raise invalid("invalid")
        if state.current != address:
            try:
                async with self._db.write() as conn:
                    await conn.execute(
                        update(users)
                        .where(users.c.id == user_id)
                        .values(email=address, updated_at=now_ms())
                    )
            except IntegrityError as exc:
                raise invalid("taken") from exc
            await self._accounts.profile_changed(user_id)
        await self._write(user_id, verified_email=address, verified_at=now_ms(), pending_email=None)
