"""What staff do to accounts: bans, roles, signing a user out everywhere; the user
search and views they work from, and the audit log as they read it.

Rules:

1. A ban has a reason and ends at a time (or when lifted). From the moment
   it is set, logging in and refreshing are refused (``active_ban``), every
   token issued before is refused and the user's live sockets close
   (``revoke_everywhere``). A new ban replaces the one in force; a ban that
   has ended lets the user log in again (earlier tokens stay revoked).
   Revoking is ``typogram.revocation``'s, with the reason (``ban``,
   ``role_change``, ``signed_out_by_staff``) the user's sockets are closed with.
2. Nobody bans themselves; nobody bans, demotes or signs out the last
   admin who is not banned (so the platform always keeps one). Moderators
   act on plain users only: acting on staff takes an admin.
3. Roles are ``typogram.roles.Role``; changing one revokes the user's
   tokens and closes their sockets, so no token carries a role it lost.
4. The last-admin check and the change it guards run in one transaction
   that locks the admins' rows first (a locking read), so two admins
   banning or demoting each other at once cannot leave none.

Queries on ``users`` here are the staff's read views and the role change's
guard; the account rows themselves are written by ``typogram.accounts``.
"""

from __future__ import annotations

import datetime as dt
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from typogram.accounts import Accounts
from typogram.codes import ErrorCode
from typogram.cursors import decode_cursor, encode_cursor
from typogram.db.database import Database
from typogram.db.schema import audit_log, user_bans, users
from typogram.errors import AppError
from typogram.revocation import Revocation, RevokeReason
from typogram.roles import Role

if TYPE_CHECKING:
    from typogram.platform import Platform

MAX_PAGE = 100
_ID = re.compile(r"\A[0-9a-f]{32}\Z")
_LIKE_SPECIAL = re.compile(r"([\\%_])")


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acts: a user id and role (``cli`` for the command line, with the admin role)."""

    id: str
    role: str
    ip: str = ""


CLI = Actor("cli", Role.ADMIN)


def now_ms() -> int:
    return int(time.time() * 1000)


def banned(ban: dict[str, Any]) -> AppError:
    """What logging in or refreshing answers while ``ban`` is in force (403 ``banned``)."""
    ends = ban["ends_at"]
    until = (
        ""
        if ends is None
        else f" until {dt.datetime.fromtimestamp(ends / 1000, dt.UTC):%Y-%m-%d %H:%M} UTC"
    )
    return AppError(ErrorCode.BANNED, f"this account is banned{until}: {ban['reason']}")


def _refused(message: str) -> AppError:
    return AppError(ErrorCode.CONFLICT, message)


def _ban_view(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "reason": row.reason,
        "ends_at": row.ends_at,
        "created_by": row.created_by,
        "created_at": row.created_at,
        "lifted_at": row.lifted_at,
        "lifted_by": row.lifted_by,
        "lift_reason": row.lift_reason,
    }


def _in_force(at: int) -> Any:
    b = user_bans.c
    return and_(b.lifted_at.is_(None), or_(b.ends_at.is_(None), b.ends_at > at))


def _user_row(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "username": row.username,
        "email": row.email,
        "display_name": row.display_name,
        "role": row.role,
        "created_at": row.created_at,
    }


class StaffDesk:
    def __init__(
        self,
        db: Database,
        accounts: Accounts,
        revocation: Revocation,
        *,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        self.db = db
        self.accounts = accounts
        self.revocation = revocation
        self.clock = clock

    # -- who ------------------------------------------------------------------

    async def find(self, user: str) -> dict[str, Any]:
        """A user by id or username (any case; a username that looks like an id is found
        when no id matches); 404 when there is none."""
        key = user.lower()
        match = users.c.username_key == key
        if _ID.match(user):
            match = or_(users.c.id == key, match)
        statement = select(users).where(match).order_by((users.c.id == key).desc()).limit(1)
        async with self.db.read(primary=True) as conn:
            row = (await conn.execute(statement)).first()
        if row is None:
            raise AppError(ErrorCode.NOT_FOUND, "no such user")
        return _user_row(row)

    def _may_act_on(self, actor: Actor, target: dict[str, Any], what: str) -> None:
        """Rule 2's part that needs no lock: not on yourself, staff only by an admin."""
        if target["id"] == actor.id:
            raise _refused(f"you cannot {what} yourself")
        if target["role"] != Role.USER and actor.role != Role.ADMIN:
            raise AppError(ErrorCode.FORBIDDEN, f"only admins may {what} staff")

    @staticmethod
    async def _keeps_an_admin(conn: AsyncConnection, losing: str, at: int) -> None:
        """Rule 2 under rule 4: refuse when ``losing`` is the last admin not banned."""
        admins = (
            (
                await conn.execute(
                    select(users.c.id).where(users.c.role == Role.ADMIN).with_for_update()
                )
            )
            .scalars()
            .all()
        )
        if losing not in admins:
            return
        banned = select(user_bans.c.user_id).where(_in_force(at))
        others = await conn.execute(
            select(func.count())
            .select_from(users)
            .where(users.c.role == Role.ADMIN, users.c.id != losing, users.c.id.not_in(banned))
        )
        if int(others.scalar_one()) == 0:
            raise _refused("this is the last admin: make another admin first")

    # -- sessions ----------------------------------------------------------------

    async def revoke_everywhere(self, user_id: str, reason: RevokeReason) -> int:
        """Refuse every token issued so far and close the user's live sockets on every
        gateway node (``Revocation.revoke_user``); the new token version."""
        return await self.revocation.revoke_user(user_id, reason)

    async def reset_sessions(self, actor: Actor, user: str) -> dict[str, Any]:
        target = await self.find(user)
        self._may_act_on(actor, target, "sign out")
        version = await self.revoke_everywhere(target["id"], RevokeReason.SIGNED_OUT_BY_STAFF)
        await self._audit(actor, "user.sessions_reset", target["id"], {"version": version})
        return target

    # -- bans ----------------------------------------------------------------------

    async def active_ban(self, user_id: str) -> dict[str, Any] | None:
        """The ban in force on the user now (rule 1), from the primary."""
        statement = (
            select(user_bans)
            .where(user_bans.c.user_id == user_id, _in_force(self.clock()))
            .order_by(user_bans.c.created_at.desc())
            .limit(1)
        )
        async with self.db.read(primary=True) as conn:
            row = (await conn.execute(statement)).first()
        return None if row is None else _ban_view(row)

    async def ban(
        self, actor: Actor, user: str, *, reason: str, ends_at: int | None
    ) -> dict[str, Any]:
        """Rules 1, 2 and 4; the ban set. 400 for an end in the past."""
        now = self.clock()
        if ends_at is not None and ends_at <= now:
            raise AppError(
                ErrorCode.BAD_REQUEST, "the ban must end in the future", fields={"until": "past"}
            )
        target = await self.find(user)
        self._may_act_on(actor, target, "ban")
        ban_id = uuid.uuid4().hex
        async with self.db.write() as conn:
            await self._keeps_an_admin(conn, target["id"], now)
            replaced = await self._lift(conn, target["id"], actor.id, "replaced by a new ban", now)
            await conn.execute(
                user_bans.insert().values(
                    id=ban_id,
                    user_id=target["id"],
                    reason=reason,
                    ends_at=ends_at,
                    created_by=actor.id,
                    created_at=now,
                )
            )
        await self.revoke_everywhere(target["id"], RevokeReason.BAN)
        detail = {"ban": ban_id, "reason": reason, "until": ends_at, "replaced": replaced}
        await self._audit(actor, "user.ban", target["id"], detail)
        ban = await self.active_ban(target["id"])
        assert ban is not None, "a ban just set is in force"
        return ban

    async def unban(self, actor: Actor, user: str, *, reason: str) -> dict[str, Any]:
        """Lift the ban in force; 409 when there is none."""
        target = await self.find(user)
        now = self.clock()
        async with self.db.write() as conn:
            lifted = await self._lift(conn, target["id"], actor.id, reason, now)
        if not lifted:
            raise _refused("this user is not banned")
        await self._audit(actor, "user.unban", target["id"], {"reason": reason, "bans": lifted})
        return target

    @staticmethod
    async def _lift(
        conn: AsyncConnection, user_id: str, actor_id: str, reason: str, now: int
    ) -> list[str]:
        b = user_bans.c
        found = await conn.execute(
            select(b.id).where(b.user_id == user_id, _in_force(now)).with_for_update()
        )
        ids = list(found.scalars())
        if ids:
            await conn.execute(
                update(user_bans)
                .where(b.id.in_(ids))
                .values(lifted_at=now, lifted_by=actor_id, lift_reason=reason)
            )
        return ids

    # -- roles ---------------------------------------------------------------------

    async def set_role(self, actor: Actor, user: str, role: Role) -> dict[str, Any]:
        """Rules 2-4 (admins only, checked by the caller); the user as now. Audited as
        ``role_change``."""
        target = await self.find(user)
        if target["role"] == role:
            return target
        async with self.db.write() as conn:
            if target["role"] == Role.ADMIN:
                # Rule 4: the guard holds its lock while the role changes.
                await self._keeps_an_admin(conn, target["id"], self.clock())
            await conn.execute(
                update(users).where(users.c.id == target["id"]).values(role=role.value)
            )
        await self.revoke_everywhere(target["id"], RevokeReason.ROLE_CHANGE)  # rule 3
        detail = {"actor": actor.id, "from": target["role"], "to": role.value}
        await self.accounts.audit(
            "role_change", "success", user_id=target["id"], ip=actor.ip, detail=detail,
            actor_id=actor.id,
        )  # fmt: skip
        return await self.find(target["id"])

    # -- what staff read -------------------------------------------------------------

    async def search(
        self,
        *,
        query: str | None,
        role: str | None,
        banned: bool | None,
        cursor: str | None,
        limit: int,
    ) -> dict[str, Any]:
        """Users by id, username prefix or e-mail prefix, by username; keyset-paged."""
        u = users.c
        statement = select(users)
        if query:
            pattern = _LIKE_SPECIAL.sub(r"\\\1", query.lower()) + "%"
            column = u.email if "@" in query else u.username_key
            matches = column.like(pattern, escape="\\")
            statement = statement.where(or_(matches, u.id == query.lower()))
        if role is not None:
            statement = statement.where(u.role == role)
        now = self.clock()
        if banned is not None:
            in_force = select(user_bans.c.user_id).where(_in_force(now))
            statement = statement.where(u.id.in_(in_force) if banned else u.id.not_in(in_force))
        if cursor is not None:
            _, after = decode_cursor(cursor, "n")
            statement = statement.where(u.username_key > after)
        statement = statement.order_by(u.username_key).limit(limit + 1)
        async with self.db.read(primary=True) as conn:
            rows = (await conn.execute(statement)).all()
            more = len(rows) > limit
            rows = rows[:limit]
            bans = await self._bans_in_force(conn, [row.id for row in rows], now)
        following = encode_cursor("n", 0, rows[-1].username_key) if more else None
        found = [_user_row(row) | {"ban": bans.get(row.id)} for row in rows]
        return {"users": found, "next_cursor": following}

    @staticmethod
    async def _bans_in_force(
        conn: AsyncConnection, user_ids: list[str], now: int
    ) -> dict[str, dict[str, Any]]:
        if not user_ids:
            return {}
        rows = await conn.execute(
            select(user_bans)
            .where(user_bans.c.user_id.in_(user_ids), _in_force(now))
            .order_by(user_bans.c.created_at)
        )
        return {row.user_id: _ban_view(row) for row in rows}

    async def view(self, user: str, *, history: int = 20) -> dict[str, Any]:
        """A user with the ban in force, their bans (newest first) and the newest audit
        entries about them."""
        target = await self.find(user)
        async with self.db.read(primary=True) as conn:
            bans = await conn.execute(
                select(user_bans)
                .where(user_bans.c.user_id == target["id"])
                .order_by(user_bans.c.created_at.desc())
                .limit(history)
            )
            ban_list = [_ban_view(row) for row in bans]
            in_force = await self._bans_in_force(conn, [target["id"]], self.clock())
        audit = await self.audit(user_id=target["id"], limit=history)
        return target | {
            "ban": in_force.get(target["id"]),
            "bans": ban_list,
            "audit": audit["entries"],
        }

    async def audit(
        self,
        *,
        user_id: str | None = None,
        actor_id: str | None = None,
        action: str | None = None,
        outcome: str | None = None,
        since: int | None = None,
        until: int | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> dict[str, Any]:
        """The audit log, newest first, keyset-paged on its id. ``action`` ending in
        ``*`` is a prefix (``post.*``)."""
        a = audit_log.c
        statement = select(audit_log)
        if user_id is not None:
            statement = statement.where(a.user_id == user_id)
        if actor_id is not None:
            statement = statement.where(a.actor_id == actor_id)
        if action is not None:
            if action.endswith("*"):
                prefix = _LIKE_SPECIAL.sub(r"\\\1", action[:-1])
                statement = statement.where(a.action.like(prefix + "%", escape="\\"))
            else:
                statement = statement.where(a.action == action)
        if outcome is not None:
            statement = statement.where(a.outcome == outcome)
        if since is not None:
            statement = statement.where(a.created_at >= since)
        if until is not None:
            statement = statement.where(a.created_at < until)
        if cursor is not None:
            before, _ = decode_cursor(cursor, "a")
            statement = statement.where(a.id < int(before))
        statement = statement.order_by(a.id.desc()).limit(limit + 1)
        async with self.db.read(primary=True) as conn:
            rows = (await conn.execute(statement)).all()
        more = len(rows) > limit
        rows = rows[:limit]
        entries = [
            {
                "id": int(row.id),
                "at": row.created_at,
                "action": row.action,
                "outcome": row.outcome,
                "user_id": row.user_id,
                "actor_id": row.actor_id,
                "ip": row.ip,
                "detail": orjson.loads(row.detail or "{}"),
            }
            for row in rows
        ]
        following = encode_cursor("a", int(rows[-1].id), "") if more else None
        return {"entries": entries, "next_cursor": following}

    async def _audit(self, actor: Actor, action: str, user_id: str, detail: dict[str, Any]) -> None:
        await self.accounts.audit(
            action, "ok", user_id=user_id, ip=actor.ip, detail=detail, actor_id=actor.id
        )


def desk_of(platform: Platform) -> StaffDesk:
    return StaffDesk(platform.db, platform.accounts, platform.revocation)
