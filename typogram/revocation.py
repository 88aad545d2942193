"""Revocation: the one way a token stops working before it expires, and the check.

Rules:

1. A user's tokens are revoked together by raising the user's token version
   (``revoke_user``): logout-all, a password change, a role change, a ban,
   staff signing the user out. Every token with an older ``ver`` is refused,
   and the user's unspent refresh tokens are spent.
2. One login session is revoked alone (``revoke_session``): its refresh
   tokens are spent and every token carrying its ``sid`` is refused. A
   replayed refresh token revokes its session this way.
3. A revocation refuses at once in the process that made it, within
   ``local_s`` in every other process, and closes the live sockets it covers
   on every gateway node through the user's channel (a ``revoke`` notice);
   gateways also re-check every socket's token on a timer (``fresh``
   checks, which skip the process-local copy).
4. A revoked session is remembered while a token of it may still be alive
   (``session_ttl_s``: the refresh-token lifetime, since a refresh that
   raced the revocation may have stored one more); a version for ever.
5. Guests have no account: their tokens are never revoked, only expire.

Storage: ``users.token_version`` and ``revoked_sessions`` in SQL are the
truth. The shared cache holds, per user, the sorted set ``user:{id}:tokens``:
member ``v`` scored by the version, and each revoked session id scored by
when it may be forgotten. Every write into it is a whole snapshot read from
the primary, added with ``only_greater``; nothing in it is ever lowered or
removed (but expired sessions). So writers and readers racing each other
only ever add what was true once: the newest snapshot holds every
revocation committed before it and an older one cannot undo it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Final, Protocol

import msgspec
from sqlalchemy import delete, select
from sqlalchemy.dialects import mysql, sqlite
from sqlalchemy.exc import DBAPIError

from typogram import keys
from typogram.accounts import Accounts, now_ms
from typogram.codes import ErrorCode
from typogram.db.database import Database
from typogram.db.schema import revoked_sessions
from typogram.errors import AppError
from typogram.ports import Cache, PubSub
from typogram.tokens import Claims

log = logging.getLogger(__name__)

STATE_TTL_S: Final = 3600
# How long a process trusts its own copy of a user's token state (the
# revocation delay for REST in other processes), and for how many users.
LOCAL_S: Final = 2.0
LOCAL_MAX: Final = 65_536
VERSION_MEMBER: Final = "v"
# A session revoked twice (concurrent replays) keeps its first row: no token of it
# is issued after the first revocation, so the first expiry covers them all.
_REVOKE_MYSQL: Final = mysql.insert(revoked_sessions).on_duplicate_key_update(
    sid=revoked_sessions.c.sid
)
_REVOKE_SQLITE: Final = sqlite.insert(revoked_sessions).on_conflict_do_nothing()


class RevokeReason(StrEnum):
    """Why tokens were revoked: audited, and the close reason sockets see."""

    LOGOUT_ALL = "logout_all"
    PASSWORD_CHANGE = "password_change"
    PASSWORD_RESET = "password_reset"
    ROLE_CHANGE = "role_change"
    BAN = "ban"
    SIGNED_OUT_BY_STAFF = "signed_out_by_staff"
    REFRESH_REPLAY = "refresh_replay"


@dataclass(frozen=True, slots=True)
class TokenState:
    """What a user's tokens must pass: the version, and revoked sessions with the time
    (epoch seconds) after which each may be forgotten."""

    version: int
    revoked: Mapping[str, float]


def refusal(state: TokenState | None, claims: Claims, now: float) -> str | None:
    """Why ``claims`` is no longer good at ``now`` (epoch s), or ``None`` when it is.

    ``state`` is the subject's (``None``: no such user). Pure: no I/O, no clock.
    """
    if claims.expires_at <= now:
        return "token expired"
    if claims.is_guest:
        return None
    if state is None or claims.version < state.version:
        return "token has been revoked"
    if claims.sid and state.revoked.get(claims.sid, 0.0) > now:
        return "session has been revoked"
    return None


class RevokeNotice(msgspec.Struct, frozen=True, omit_defaults=True):
    """The ``revoke`` message on a user's channel: close that user's sockets whose token
    is older than ``version``, or belongs to session ``sid``."""

    version: int | None = None
    sid: str | None = None
    reason: str = ""

    def covers(self, claims: Claims) -> bool:
        if self.version is not None and claims.version < self.version:
            return True
        return bool(self.sid) and claims.sid == self.sid


class _Envelope(msgspec.Struct, frozen=True):
    t: str
    d: RevokeNotice


_notice_decoder: Final = msgspec.json.Decoder(_Envelope)


def encode_notice(notice: RevokeNotice) -> bytes:
    return msgspec.json.encode(_Envelope("revoke", notice))


def decode_notice(payload: bytes) -> RevokeNotice:
    """A ``revoke`` message; raises ``ValueError`` for anything else."""
    try:
        envelope = _notice_decoder.decode(payload)
    except msgspec.DecodeError as exc:
        raise ValueError(f"not a revoke notice: {exc}") from None
    if envelope.t != "revoke":
        raise ValueError(f"not a revoke notice: {envelope.t!r}")
    return envelope.d


class TokenCheck(Protocol):
    """What a gateway needs: refuse revoked tokens (``fresh``: skip the local copy)."""

    async def check(self, claims: Claims, *, fresh: bool = False) -> None: ...


class Revocation:
    """Rules 1-5; the kernel's only way to revoke, and the check REST and gateways use."""

    def __init__(
        self,
        db: Database,
        cache: Cache,
        pubsub: PubSub,
        accounts: Accounts,
        *,
        session_ttl_s: float,
        local_s: float = LOCAL_S,
        local_max: int = LOCAL_MAX,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._db = db
        self._cache = cache
        self._pubsub = pubsub
        self._accounts = accounts
        self._session_ttl = session_ttl_s
        self._local_s = local_s
        self._local_max = local_max
        self._clock = clock
        self._wall = wall
        # user id -> (state, read at), oldest read first: the process-local copy.
        self._local: dict[str, tuple[TokenState, float]] = {}

    # -- checking --------------------------------------------------------------

    def knows(self, user_id: str) -> bool:
        """Whether ``state`` answers from this process's copy (no round trip)."""
        local = self._local.get(user_id)
        return local is not None and self._clock() - local[1] < self._local_s

    async def check(self, claims: Claims, *, fresh: bool = False) -> None:
        """Raise ``unauthorized`` when ``claims`` expired or was revoked (rules 1-5)."""
        state = None if claims.is_guest else await self.state(claims.subject, fresh=fresh)
        reason = refusal(state, claims, self._wall())
        if reason is not None:
            raise AppError(ErrorCode.UNAUTHORIZED, reason)

    async def state(self, user_id: str, *, fresh: bool = False) -> TokenState | None:
        """The user's token state; ``None`` when there is no such user. May be up to
        ``local_s`` old after a revocation in another process, unless ``fresh``."""
        now = self._clock()
        local = self._local.get(user_id)
        if not fresh and local is not None and now - local[1] < self._local_s:
            return local[0]
        key = keys.user_tokens(user_id)
        members = dict(await self._cache.zrevrange(key, 0, -1))
        if VERSION_MEMBER in members:
            wall = self._wall()
            expired = [s for s, until in members.items() if s != VERSION_MEMBER and until <= wall]
            if expired:
                await self._cache.zrem(key, *expired)
            version = int(members.pop(VERSION_MEMBER))
            state = TokenState(version, {s: u for s, u in members.items() if u > wall})
        else:
            found = await self._snapshot(user_id)
            if found is None:
                return None
            state = found
        return self._remember(user_id, state, now)

    async def _snapshot(self, user_id: str) -> TokenState | None:
        """The state as the primary has it, added to the shared set (module docstring)."""
        version = await self._accounts.stored_token_version(user_id)
        if version is None:
            return None
        wall = self._wall()
        async with self._db.read(primary=True) as conn:
            rows = await conn.execute(
                select(revoked_sessions.c.sid, revoked_sessions.c.expires_at).where(
                    revoked_sessions.c.user_id == user_id,
                    revoked_sessions.c.expires_at > int(wall * 1000),
                )
            )
            revoked = {sid: expires / 1000 for sid, expires in rows}
        key = keys.user_tokens(user_id)
        await self._cache.zadd(key, {VERSION_MEMBER: version, **revoked}, only_greater=True)
        await self._cache.expire(key, STATE_TTL_S)
        return TokenState(version, revoked)

    def _remember(self, user_id: str, state: TokenState, now: float) -> TokenState:
        """Keep ``state`` as this process's copy, merged with what it knew (a read that
        started before this process's own revocation may answer late); the copy."""
        known = self._local.pop(user_id, None)  # re-inserted last: the dict stays in read order
        if known is not None:
            old = known[0]
            wall = self._wall()
            revoked = {s: u for s, u in old.revoked.items() if u > wall} | dict(state.revoked)
            state = TokenState(max(old.version, state.version), revoked)
        if len(self._local) >= self._local_max:
            del self._local[next(iter(self._local))]
        self._local[user_id] = (state, now)
        return state

    # -- revoking ----------------------------------------------------------------

    async def revoke_user(self, user_id: str, reason: RevokeReason) -> int:
        """Rule 1: refuse every token of the user issued so far and close their live
        sockets everywhere; the new token version."""
        version = await self._accounts.bump_token_version(user_id)
        await self._published(user_id, RevokeNotice(version=version, reason=reason))
        log.info("tokens revoked", extra={"user_id": user_id, "reason": reason.value})
        return version

    async def revoke_session(self, user_id: str, sid: str, reason: RevokeReason) -> None:
        """Rule 2: refuse every token of login session ``sid`` (and spend its refresh
        tokens), close its live sockets everywhere. Audited."""
        now = now_ms()
        until = now + int(self._session_ttl * 1000) + 60_000  # and a minute of clock skew
        await self._accounts.end_refresh_family(user_id, sid)
        row = {
            "sid": sid, "user_id": user_id, "reason": reason.value,
            "revoked_at": now, "expires_at": until,
        }  # fmt: skip
        insert = _REVOKE_MYSQL if self._db.dialect == "mysql" else _REVOKE_SQLITE
        async with self._db.write() as conn:
            await conn.execute(insert, row)
        await self._forget_expired(user_id, now)
        await self._published(user_id, RevokeNotice(sid=sid, reason=reason))
        await self._accounts.audit(
            "session_revoke", "success", user_id=user_id, detail={"sid": sid, "reason": reason}
        )

    async def _forget_expired(self, user_id: str, now: int) -> None:
        """Housekeeping: drop the user's rows no token can need any more. Best effort: a
        row left behind (a lock conflict with a concurrent revocation) goes next time."""
        try:
            async with self._db.write() as conn:
                await conn.execute(
                    delete(revoked_sessions).where(
                        revoked_sessions.c.user_id == user_id,
                        revoked_sessions.c.expires_at <= now,
                    )
                )
        except DBAPIError:
            log.warning("could not prune revoked sessions", extra={"user_id": user_id})

    async def _published(self, user_id: str, notice: RevokeNotice) -> None:
        """After a committed revocation: the shared state and this process's copy, then
        the notice to every gateway node."""
        state = await self._snapshot(user_id)
        if state is not None:
            self._remember(user_id, state, self._clock())
        await self._pubsub.publish(keys.channel_user(user_id), encode_notice(notice))
