"""Per-category e-mail preferences: a row per (user, category) the user chose, else the
category's default (``catalog.DEFAULTS``)."""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from typogram.accounts import now_ms
from typogram.db.database import Database
from typogram.db.schema import email_preferences
from typogram.mail.catalog import DEFAULTS, Category


class Preferences:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def of(self, user_id: str) -> dict[Category, bool]:
        """Every category, chosen or default."""
        async with self._db.read(primary=True) as conn:
            result = await conn.execute(
                select(email_preferences.c.category, email_preferences.c.enabled).where(
                    email_preferences.c.user_id == user_id
                )
            )
            chosen = {str(category): bool(enabled) for category, enabled in result}
        return {c: chosen.get(c.value, default) for c, default in DEFAULTS.items()}

    async def enabled(self, user_id: str, category: Category) -> bool:
        async with self._db.read(primary=True) as conn:
            result = await conn.execute(
                select(email_preferences.c.enabled).where(
                    email_preferences.c.user_id == user_id,
                    email_preferences.c.category == category.value,
                )
            )
            chosen = result.scalar_one_or_none()
        return DEFAULTS[category] if chosen is None else bool(chosen)

    async def set(self, user_id: str, changes: Mapping[Category, bool]) -> dict[Category, bool]:
        """Record the choices (one transaction); returns every category afterwards."""
        if changes:
            for _ in range(3):
                try:
                    async with self._db.write() as conn:
                        await conn.execute(
                            delete(email_preferences).where(
                                email_preferences.c.user_id == user_id,
                                email_preferences.c.category.in_([c.value for c in changes]),
                            )
                        )
                        await conn.execute(
                            email_preferences.insert(),
                            [
                                {
                                    "user_id": user_id,
                                    "category": category.value,
                                    "enabled": int(on),
                                    "updated_at": now_ms(),
                                }
                                for category, on in changes.items()
                            ],
                        )
                    break
                except IntegrityError:  # a concurrent change inserted first: do it again
                    continue
        return await self.of(user_id)
