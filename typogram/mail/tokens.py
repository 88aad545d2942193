"""Single-use e-mail tokens (verification, password reset), stored hashed.

Rules:

1. A token is 32 random bytes, URL-safe base64; only its SHA-256 is stored
   (``email_tokens``), so a database leak reveals no usable link.
2. ``spend`` succeeds once: one atomic ``UPDATE … WHERE used_at IS NULL AND
   expires_at > now AND purpose = …``. A token that is malformed, unknown,
   of the other purpose (foreign), expired or spent is refused with
   ``invalid_token`` (400) naming which in ``fields.token``, and nothing
   changes.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import select, update

from typogram.accounts import now_ms
from typogram.codes import ErrorCode
from typogram.db.database import Database
from typogram.db.schema import email_tokens
from typogram.errors import AppError

_SHAPE = re.compile(r"[A-Za-z0-9_-]{43}")


class Purpose(StrEnum):
    VERIFY = "verify"
    RESET = "reset"


@dataclass(frozen=True, slots=True)
class Spent:
    user_id: str
    email: str


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def invalid(reason: str) -> AppError:
    return AppError(
        ErrorCode.INVALID_TOKEN,
        f"the link is {reason}; ask for a new one",
        fields={"token": reason},
    )


class EmailTokens:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def issue(self, user_id: str, purpose: Purpose, email: str, ttl_s: int) -> str:
        token = secrets.token_urlsafe(32)
        now = now_ms()
        async with self._db.write() as conn:
            await conn.execute(
                email_tokens.insert().values(
                    token_hash=_hash(token),
                    user_id=user_id,
                    purpose=purpose.value,
                    email=email,
                    expires_at=now + ttl_s * 1000,
                    used_at=None,
                    created_at=now,
                )
            )
        return token

    async def spend(self, token: str, purpose: Purpose) -> Spent:
        """Rule 2."""
        if not _SHAPE.fullmatch(token):
            raise invalid("invalid")
        digest, now = _hash(token), now_ms()
        async with self._db.write() as conn:
            spent = await conn.execute(
                update(email_tokens)
                .where(
                    email_tokens.c.token_hash == digest,
                    email_tokens.c.purpose == purpose.value,
                    email_tokens.c.used_at.is_(None),
                    email_tokens.c.expires_at > now,
                )
                .values(used_at=now)
            )
            found = (
                await conn.execute(select(email_tokens).where(email_tokens.c.token_hash == digest))
            ).first()
        if found is None or found.purpose != purpose.value:
            raise invalid("invalid")
        if spent.rowcount != 1:
            raise invalid("used" if found.used_at is not None else "expired")
        return Spent(found.user_id, found.email)
