"""Accounts: users, profiles (cache-aside), token versions, refresh-token rotation, audit.

The store owns every query on ``users``, ``refresh_tokens`` and ``audit_log``.
Profiles are cached as ``user:{id}:profile`` for ``profile_cache_ttl_s``. A
write replaces the entry with a mark of when it committed, kept for the
database's read-your-writes window: a read that finds the mark asks for a
replica that has applied writes up to then (or the primary), and a fill
never overwrites a mark (``set_if_absent``), so neither a lagging replica
nor a read that raced the write can cache the old profile.

Token versions and refresh families are written here, but revoking is
``typogram.revocation``'s (it also tells the gateways and keeps the shared
state the REST layer and the gateways check): call that, not these writes.
"""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Mapping
from typing import Any

import msgspec
import orjson
from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError

from typogram import keys
from typogram.codes import ErrorCode
from typogram.db.database import Database
from typogram.db.schema import audit_log, refresh_tokens, users
from typogram.errors import AppError
from typogram.mail.unclaimed import shown
from typogram.ports import Cache
from typogram.text_rules import username_key

REFERRAL_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
PROFILE_FIELDS = (
    "display_name",
    "bio",
    "keyboard_layout",
    "country",
    "appear_offline",
    "language",
)
# A profile entry that says "written at <epoch seconds>" instead of holding a profile.
WRITE_MARK = b"written:"


REFRESH_REFUSED = "refresh token is invalid or already used"


class RefreshReplayed(AppError):
    """A known refresh token came back after it was spent or expired: ``family`` (its
    login session) must be revoked. Answers the client as any refused refresh."""

    def __init__(self, family: str) -> None:
        super().__init__(ErrorCode.UNAUTHORIZED, REFRESH_REFUSED)
        self.family = family


class User(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    username: str
    email: str
    display_name: str
    bio: str
    keyboard_layout: str
    country: str
    role: str
    referral_code: str
    created_at: int
    token_version: int = 0
    appear_offline: bool = False  # presence.query answers "offline" to everyone
    language: str = "en"  # what mail to the user is written in (``typogram.mail.i18n``)

    def private(self) -> dict[str, Any]:
        """The owner's view: everything but secrets and the token version."""
        view = msgspec.structs.asdict(self)
        view.pop("token_version")
        view["email"] = shown(self.email)  # an unclaimed address reads as the one asked for
        return view

    def public(self) -> dict[str, Any]:
        """What anyone may see: no e-mail, no referral code."""
        view = self.private()
        view.pop("email")
        view.pop("referral_code")
        view.pop("appear_offline")
        return view


def now_ms() -> int:
    return int(time.time() * 1000)


def audit_insert(
    action: str,
    outcome: str,
    *,
    user_id: str | None = None,
    actor_id: str | None = None,
    ip: str = "",
    detail: Mapping[str, Any] | None = None,
    at_ms: int | None = None,
) -> Any:
    """The ``audit_log`` row of one action, as a statement: ``Accounts.audit`` runs it
    alone; a caller whose action must be audited atomically runs it in its own
    transaction (``typogram.reviews``). ``detail`` must never hold a secret;
    ``actor_id`` is the staff member who acted, when it was not the user."""
    return audit_log.insert().values(
        user_id=user_id,
        actor_id=actor_id,
        action=action,
        outcome=outcome,
        ip=ip[:45],
        detail=orjson.dumps(detail or {}).decode(),
        created_at=now_ms() if at_ms is None else at_ms,
    )


def _user(row: Any) -> User:
    """A ``users`` row (any mapping of column names) as a ``User``."""
    values = {name: row[name] for name in User.__struct_fields__ if name != "appear_offline"}
    # A SMALLINT column, absent from a row just built for an insert (default 0).
    return User(**values, appear_offline=bool(row.get("appear_offline", 0)))


class Accounts:
    def __init__(
        self,
        db: Database,
        cache: Cache,
        *,
        profile_ttl_s: int = 3600,
    ) -> None:
        self._db = db
        self._cache = cache
        self._profile_ttl = profile_ttl_s

    # -- users -------------------------------------------------------------

    async def create_user(
        self, username: str, email: str, password_hash: str, *, language: str = "en"
    ) -> User:
        """Insert a user; raises ``conflict`` naming the field already taken."""
        await self._refuse_taken(username, email)
        created = now_ms()
        for _ in range(5):
            row = {
                "id": uuid.uuid4().hex,
                "username": username,
                "username_key": username_key(username),
                "email": email.lower(),
                "password_hash": password_hash,
                "display_name": username,
                "bio": "",
                "keyboard_layout": "qwerty",
                "country": "",
                "language": language,
                "role": "user",
                "token_version": 0,
                "referral_code": "".join(secrets.choice(REFERRAL_ALPHABET) for _ in range(8)),
                "created_at": created,
                "updated_at": created,
            }
            try:
                async with self._db.write() as conn:
                    await conn.execute(users.insert().values(**row))
                return _user(row)
            except IntegrityError:
                # Lost a race for the name or e-mail, or (rarely) drew a taken referral code.
                await self._refuse_taken(username, email)
        raise AppError(ErrorCode.CONFLICT, "could not allocate a referral code, try again")

    async def _refuse_taken(self, username: str, email: str) -> None:
        key = username_key(username)
        async with self._db.read(primary=True) as conn:
            rows = await conn.execute(
                select(users.c.username_key, users.c.email).where(
                    or_(users.c.username_key == key, users.c.email == email.lower())
                )
            )
            taken = rows.all()
        fields: dict[str, str] = {}
        for taken_key, taken_email in taken:
            if taken_key == key:
                fields["username"] = "already taken"
            if taken_email == email.lower():
                fields["email"] = "already registered"
        if fields:
            raise AppError(ErrorCode.CONFLICT, "username or e-mail already in use", fields=fields)

    async def credentials(self, login: str) -> tuple[User, str] | None:
        """The user and password hash for a username or e-mail, from the primary."""
        email = "@" in login
        key = login.lower() if email else username_key(login)
        column = users.c.email if email else users.c.username_key
        async with self._db.read(primary=True) as conn:
            row = (await conn.execute(select(users).where(column == key))).mappings().first()
        return (_user(row), row["password_hash"]) if row else None

    async def password_hash(self, user_id: str) -> str | None:
        async with self._db.read(primary=True) as conn:
            result = await conn.execute(select(users.c.password_hash).where(users.c.id == user_id))
            return result.scalar_one_or_none()

    async def set_password(self, user_id: str, password_hash: str) -> None:
        async with self._db.write() as conn:
            await conn.execute(
                update(users)
                .where(users.c.id == user_id)
                .values(password_hash=password_hash, updated_at=now_ms())
            )

    async def get(self, user_id: str) -> User | None:
        """A user by id, cache-aside on ``user:{id}:profile``."""
        cache_key = keys.user_profile(user_id)
        cached = await self._cache.get(cache_key)
        since = None
        if cached is not None:
            if not cached.startswith(WRITE_MARK):
                return msgspec.json.decode(cached, type=User)
            since = float(cached[len(WRITE_MARK) :])  # written lately: read what was written
        async with self._db.read(since=since) as conn:
            row = (
                (await conn.execute(select(users).where(users.c.id == user_id))).mappings().first()
            )
        if row is None:
            return None
        user = _user(row)
        # Never over a write's mark: this read may have started before that write.
        await self._cache.set_if_absent(cache_key, msgspec.json.encode(user), ttl=self._profile_ttl)
        return user

    async def sync_appear_offline(self, user_id: str) -> bool:
        """Rewrite the cache's "appears offline" mark from the stored setting (the
        gateway calls this when a session starts, so a lost cache heals); returns it."""
        user = await self.get(user_id)
        hidden = user is not None and user.appear_offline
        await self._mark_appear_offline(user_id, hidden)
        return hidden

    async def _mark_appear_offline(self, user_id: str, hidden: bool) -> None:
        """``keys.user_appear_offline``: what the gateway's ``presence.query`` reads."""
        if hidden:
            await self._cache.set(keys.user_appear_offline(user_id), b"1")
        else:
            await self._cache.delete(keys.user_appear_offline(user_id))

    async def _profile_written(self, user_id: str) -> None:
        """Call after a committed write to ``users``: replaces the cached profile by a mark."""
        mark = WRITE_MARK + repr(time.time()).encode()
        window = self._db.read_your_writes_s
        await self._cache.set(keys.user_profile(user_id), mark, ttl=window)

    async def profile_changed(self, user_id: str) -> None:
        """Call after changing a ``users`` column outside this store (the e-mail address)."""
        await self._profile_written(user_id)

    async def get_by_username(self, username: str) -> User | None:
        async with self._db.read() as conn:
            result = await conn.execute(
                select(users.c.id).where(users.c.username_key == username_key(username))
            )
            user_id = result.scalar_one_or_none()
        return await self.get(user_id) if user_id else None

    async def update_profile(self, user_id: str, changes: Mapping[str, Any]) -> User:
        values = {name: changes[name] for name in PROFILE_FIELDS if name in changes}
        if values:
            async with self._db.write() as conn:
                await conn.execute(
                    update(users).where(users.c.id == user_id).values(**values, updated_at=now_ms())
                )
            await self._profile_written(user_id)
        if "appear_offline" in values:
            await self._mark_appear_offline(user_id, bool(values["appear_offline"]))
        async with self._db.read(primary=True) as conn:
            row = (
                (await conn.execute(select(users).where(users.c.id == user_id))).mappings().first()
            )
        if row is None:
            raise AppError(ErrorCode.NOT_FOUND, "user not found")
        return _user(row)

    async def count(self) -> int:
        async with self._db.read() as conn:
            return int((await conn.execute(select(func.count()).select_from(users))).scalar_one())

    # -- token versions (written for ``typogram.revocation``) ------------------------

    async def stored_token_version(self, user_id: str) -> int | None:
        """The user's token version on the primary; ``None`` when there is no such user."""
        async with self._db.read(primary=True) as conn:
            result = await conn.execute(select(users.c.token_version).where(users.c.id == user_id))
            version: int | None = result.scalar_one_or_none()
            return version

    async def bump_token_version(self, user_id: str) -> int:
        """Raise the token version and spend every unspent refresh token; the new
        version. Only ``Revocation.revoke_user`` calls this."""
        async with self._db.write() as conn:
            await conn.execute(
                update(users)
                .where(users.c.id == user_id)
                .values(token_version=users.c.token_version + 1, updated_at=now_ms())
            )
            result = await conn.execute(select(users.c.token_version).where(users.c.id == user_id))
            version = int(result.scalar_one())
            await conn.execute(
                update(refresh_tokens)
                .where(refresh_tokens.c.user_id == user_id, refresh_tokens.c.used_at.is_(None))
                .values(used_at=now_ms())
            )
        await self._profile_written(user_id)
        return version

    async def end_refresh_family(self, user_id: str, family: str) -> None:
        """Spend every unspent refresh token of one login session (``Revocation``)."""
        async with self._db.write() as conn:
            await conn.execute(
                update(refresh_tokens)
                .where(
                    refresh_tokens.c.family == family,
                    refresh_tokens.c.user_id == user_id,
                    refresh_tokens.c.used_at.is_(None),
                )
                .values(used_at=now_ms())
            )

    # -- refresh tokens --------------------------------------------------------

    async def store_refresh(self, jti: str, user_id: str, family: str, expires_at_s: int) -> None:
        async with self._db.write() as conn:
            await conn.execute(
                refresh_tokens.insert().values(
                    jti=jti,
                    user_id=user_id,
                    family=family,
                    expires_at=expires_at_s * 1000,
                    used_at=None,
                    created_at=now_ms(),
                )
            )

    async def spend_refresh(self, jti: str, user_id: str) -> str:
        """Mark a refresh token used and return its family.

        A token that is unknown, expired or already spent is refused; a spent
        one being replayed raises ``RefreshReplayed`` naming its family (it was
        stolen or leaked): the caller revokes that session
        (``Revocation.revoke_session``), so the legitimate holder must log in again.
        """
        now = now_ms()
        async with self._db.write() as conn:
            spent = await conn.execute(
                update(refresh_tokens)
                .where(
                    refresh_tokens.c.jti == jti,
                    refresh_tokens.c.user_id == user_id,
                    refresh_tokens.c.used_at.is_(None),
                    refresh_tokens.c.expires_at > now,
                )
                .values(used_at=now)
            )
            if spent.rowcount == 1:
                result = await conn.execute(
                    select(refresh_tokens.c.family).where(refresh_tokens.c.jti == jti)
                )
                return str(result.scalar_one())
            result = await conn.execute(
                select(refresh_tokens.c.family, refresh_tokens.c.used_at).where(
                    refresh_tokens.c.jti == jti, refresh_tokens.c.user_id == user_id
                )
            )
            known = result.first()
        if known is not None and known.used_at is not None:
            raise RefreshReplayed(str(known.family))
        raise AppError(ErrorCode.UNAUTHORIZED, REFRESH_REFUSED)

    # -- audit -------------------------------------------------------------------

    async def audit(
        self,
        action: str,
        outcome: str,
        *,
        user_id: str | None = None,
        ip: str = "",
        detail: Mapping[str, Any] | None = None,
        actor_id: str | None = None,
    ) -> None:
        """Append to the audit log. ``detail`` must never hold a secret. ``actor_id``: the
        staff member who acted (on ``user_id``, or on content), when it was not the user."""
        async with self._db.write() as conn:
            await conn.execute(
                audit_insert(
                    action, outcome, user_id=user_id, actor_id=actor_id, ip=ip, detail=detail
                )
            )

    async def audit_entries(self, user_id: str, limit: int = 50) -> list[dict[str, Any]]:
        async with self._db.read(primary=True) as conn:
            result = await conn.execute(
                select(audit_log)
                .where(audit_log.c.user_id == user_id)
                .order_by(audit_log.c.id.desc())
                .limit(limit)
            )
            return [dict(row) for row in result.mappings()]
