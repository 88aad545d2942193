"""Accounts: users, profiles (cache-aside), token versions, refresh-token rotation, audit.

The store owns every query on ``users``, ``refresh_tokens`` and ``audit_log``.
Profiles are cached as ``user:{id}:profile`` for ``profile_cache_ttl_s``. A
write replaces the entry with a mark of when it committed, kept for the
database's read-your-writes window: a read that finds the mark asks for a
replica that has applied writes up to then (or the primary), and a fill
never overwrites a mark (``set_if_absent``), so neither a lagging replica
nor a read that raced the write can cache the old profile. Token versions
are cached too, because the REST layer and the gateway read them on every
authenticated request.

Token versions are also kept in process for ``TOKEN_VERSION_LOCAL_S`` (at
most ``TOKEN_VERSION_LOCAL_MAX`` users), so a client's burst of requests
costs one cache read, not one per request. The bound this puts on
revocation: a bump refuses older tokens at once in the process that made
it, and in every other process within ``TOKEN_VERSION_LOCAL_S`` (the
process-local copy is re-read from the shared cache after that).
"""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Callable, Mapping
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

REFERRAL_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
PROFILE_FIELDS = ("display_name", "bio", "keyboard_layout", "country")
TOKEN_VERSION_TTL_S = 3600
# How long a process trusts its own copy of a token version (the revocation
# delay in other processes), and how many users' versions it keeps.
TOKEN_VERSION_LOCAL_S = 2.0
TOKEN_VERSION_LOCAL_MAX = 65_536
# A profile entry that says "written at <epoch seconds>" instead of holding a profile.
WRITE_MARK = b"written:"


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
    return User(**{name: row[name] for name in User.__struct_fields__})


class Accounts:
    def __init__(
        self,
        db: Database,
        cache: Cache,
        *,
        profile_ttl_s: int = 3600,
        token_version_local_s: float = TOKEN_VERSION_LOCAL_S,
        token_version_local_max: int = TOKEN_VERSION_LOCAL_MAX,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._db = db
        self._cache = cache
        self._profile_ttl = profile_ttl_s
        self._version_local_s = token_version_local_s
        self._version_local_max = token_version_local_max
        self._clock = clock
        # user id -> (version, read at), oldest read first: the process-local copy.
        self._versions: dict[str, tuple[int, float]] = {}

    # -- users -------------------------------------------------------------

    async def create_user(self, username: str, email: str, password_hash: str) -> User:
        """Insert a user; raises ``conflict`` naming the field already taken."""
        await self._refuse_taken(username, email)
        created = now_ms()
        for _ in range(5):
            row = {
                "id": uuid.uuid4().hex,
                "username": username,
                "username_key": username.lower(),
                "email": email.lower(),
                "password_hash": password_hash,
                "display_name": username,
                "bio": "",
                "keyboard_layout": "qwerty",
                "country": "",
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
        async with self._db.read(primary=True) as conn:
            rows = await conn.execute(
                select(users.c.username_key, users.c.email).where(
                    or_(users.c.username_key == username.lower(), users.c.email == email.lower())
                )
            )
            taken = rows.all()
        fields: dict[str, str] = {}
        for username_key, taken_email in taken:
            if username_key == username.lower():
                fields["username"] = "already taken"
            if taken_email == email.lower():
                fields["email"] = "already registered"
        if fields:
            raise AppError(ErrorCode.CONFLICT, "username or e-mail already in use", fields=fields)

    async def credentials(self, login: str) -> tuple[User, str] | None:
        """The user and password hash for a username or e-mail, from the primary."""
        key = login.lower()
        column = users.c.email if "@" in key else users.c.username_key
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
                select(users.c.id).where(users.c.username_key == username.lower())
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
        async with self._db.read(primary=True) as conn:
            row = (
                (await conn.execute(select(users).where(users.c.id == user_id))).mappings().first()
            )
        if row is None:
            raise AppError(ErrorCode.NOT_FOUND, "user not found")
        return _user(row)

    async def set_role(self, user_id: str, role: str, *, actor_id: str, ip: str = "") -> None:
        """Change a user's role; audited with who did it. Old tokens keep the old role
        until they expire, so the version is bumped to make the change immediate."""
        async with self._db.write() as conn:
            result = await conn.execute(select(users.c.role).where(users.c.id == user_id))
            previous = result.scalar_one_or_none()
            if previous is None:
                raise AppError(ErrorCode.NOT_FOUND, "user not found")
            await conn.execute(update(users).where(users.c.id == user_id).values(role=role))
        await self.bump_token_version(user_id)
        await self.audit(
            "role_change",
            "success",
            user_id=user_id,
            ip=ip,
            detail={"actor": actor_id, "from": previous, "to": role},
            actor_id=actor_id[:32],
        )

    async def count(self) -> int:
        async with self._db.read() as conn:
            return int((await conn.execute(select(func.count()).select_from(users))).scalar_one())

    # -- token versions ------------------------------------------------------

    def knows_token_version(self, user_id: str) -> bool:
        """Whether ``token_version`` answers from this process's copy (no round trip)."""
        local = self._versions.get(user_id)
        return local is not None and self._clock() - local[1] < self._version_local_s

    async def token_version(self, user_id: str) -> int | None:
        """The user's current token version; ``None`` when there is no such user.

        May be up to ``token_version_local_s`` old when another process bumped
        it (module docstring); never older after a bump in this process.
        """
        now = self._clock()
        local = self._versions.get(user_id)
        if local is not None and now - local[1] < self._version_local_s:
            return local[0]
        cache_key = keys.user_token_version(user_id)
        cached = await self._cache.get(cache_key)
        if cached is not None:
            version: int | None = int(cached)
        else:
            async with self._db.read(primary=True) as conn:
                result = await conn.execute(
                    select(users.c.token_version).where(users.c.id == user_id)
                )
                version = result.scalar_one_or_none()
            if version is not None:
                await self._cache.set(cache_key, str(version).encode(), ttl=TOKEN_VERSION_TTL_S)
        if version is not None:
            version = self._remember_version(user_id, version, now)
        return version

    def _remember_version(self, user_id: str, version: int, now: float) -> int:
        """Keep ``version`` as this process's copy (never lowering it); returns the copy."""
        known = self._versions.get(user_id)
        if known is not None and known[0] > version:
            # A read that started before this process's own bump answered late.
            version = known[0]
        self._versions.pop(user_id, None)  # re-inserted last: the dict stays in read order
        if len(self._versions) >= self._version_local_max:
            del self._versions[next(iter(self._versions))]
        self._versions[user_id] = (version, now)
        return version

    async def bump_token_version(self, user_id: str) -> int:
        """Invalidate every token issued so far; returns the new version."""
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
        self._remember_version(user_id, version, self._clock())
        await self._cache.set(
            keys.user_token_version(user_id), str(version).encode(), ttl=TOKEN_VERSION_TTL_S
        )
        await self._profile_written(user_id)
        return version

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
        one being replayed also revokes its whole family (it was stolen or
        leaked), so the legitimate holder must log in again.
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
                select(refresh_tokens.c.family).where(refresh_tokens.c.jti == jti)
            )
            family = result.scalar_one_or_none()
            if family is not None:
                await conn.execute(
                    update(refresh_tokens)
                    .where(refresh_tokens.c.family == family, refresh_tokens.c.used_at.is_(None))
                    .values(used_at=now)
                )
        raise AppError(ErrorCode.UNAUTHORIZED, "refresh token is invalid or already used")

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
