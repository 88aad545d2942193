"""Staff tools over REST: users (search, view, ban, unban, sign out everywhere), roles
and the audit log (``typogram.staff``).

Moderators and admins (``STAFF``) work on users; only admins grant and
revoke roles and read the audit log. A user is addressed by id or username.
Every action is in the audit log with the staff member as ``actor_id``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from starlette.requests import Request

from rest.context import client_ip, paging, platform_of
from rest.routing import Answer, Api
from typogram.codes import ErrorCode
from typogram.errors import AppError
from typogram.roles import ADMINS, STAFF, Role
from typogram.staff import MAX_PAGE, Actor, desk_of
from typogram.tokens import Claims

api = Api()

Reason = Annotated[str, msgspec.Meta(min_length=1, max_length=500)]
Time = Annotated[int, msgspec.Meta(ge=0, le=253_402_300_799_999)]


class BanBody(msgspec.Struct, forbid_unknown_fields=True):
    """``until``: epoch ms when the ban ends by itself; null: until lifted."""

    reason: Reason
    until: Time | None = None


class UnbanBody(msgspec.Struct, forbid_unknown_fields=True):
    reason: Annotated[str, msgspec.Meta(max_length=500)] = ""


class RoleBody(msgspec.Struct, forbid_unknown_fields=True):
    role: Literal["user", "moderator", "editor", "admin"]


class Ban(msgspec.Struct):
    id: str
    reason: str
    ends_at: int | None
    created_by: str
    created_at: int
    lifted_at: int | None
    lifted_by: str | None
    lift_reason: str


class StaffUser(msgspec.Struct, kw_only=True):
    id: str
    username: str
    email: str
    display_name: str
    role: str
    created_at: int
    ban: Ban | None


class StaffUsers(msgspec.Struct):
    users: list[StaffUser]
    next_cursor: str | None


class AuditEntry(msgspec.Struct):
    id: int
    at: int
    action: str
    outcome: str
    user_id: str | None
    actor_id: str | None
    ip: str
    detail: dict[str, Any]


class StaffUserDetail(StaffUser, kw_only=True):
    bans: list[Ban]
    audit: list[AuditEntry]


class AuditPage(msgspec.Struct):
    entries: list[AuditEntry]
    next_cursor: str | None


class SessionsReset(msgspec.Struct):
    user: str
    sessions_reset: bool


def _actor(request: Request, claims: Claims) -> Actor:
    return Actor(claims.subject, claims.role, client_ip(request))


def _user(request: Request) -> str:
    user = str(request.path_params["user"])
    if not 1 <= len(user) <= 64:
        raise AppError(ErrorCode.NOT_FOUND, "no such user")
    return user


def _bad(name: str, message: str) -> AppError:
    return AppError(ErrorCode.BAD_REQUEST, f"invalid {name}", fields={name: message})


def _flag(request: Request, name: str) -> bool | None:
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return None
    if raw not in ("true", "false"):
        raise _bad(name, "true or false")
    return raw == "true"


def _time(request: Request, name: str) -> int | None:
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return None
    if not raw.isdigit() or len(raw) > 15:
        raise _bad(name, "epoch milliseconds")
    return int(raw)


@api.route(
    "GET",
    "/api/v1/admin/users",
    summary="Find users by id, username or e-mail prefix (moderators, admins)",
    tag="admin",
    response=StaffUsers,
    auth="user",
    roles=STAFF,
    errors=(400, 401, 403),
    query={
        "q": "an id, the start of a username, or the start of an e-mail (with @)",
        "role": "user, moderator, editor or admin",
        "banned": "true: only users banned now; false: only users who are not",
        "limit": f"1-{MAX_PAGE}",
        "cursor": "next_cursor",
    },
)
async def search_users(request: Request, claims: Claims) -> Answer:
    query = request.query_params.get("q") or None
    if query is not None and len(query) > 254:
        raise _bad("q", "at most 254 characters")
    role = request.query_params.get("role") or None
    if role is not None and role not in set(Role):
        raise _bad("role", "user, moderator, editor or admin")
    banned = _flag(request, "banned")
    limit, cursor = paging(request, max_page=MAX_PAGE)
    found = await desk_of(platform_of(request)).search(
        query=query, role=role, banned=banned, cursor=cursor, limit=limit
    )
    return Answer(found)


@api.route(
    "GET",
    "/api/v1/admin/users/{user}",
    summary="A user with the ban in force, past bans and recent audit entries (staff)",
    tag="admin",
    response=StaffUserDetail,
    auth="user",
    roles=STAFF,
    errors=(401, 403, 404),
)
async def user_detail(request: Request, claims: Claims) -> Answer:
    return Answer(await desk_of(platform_of(request)).view(_user(request)))


@api.route(
    "POST",
    "/api/v1/admin/users/{user}/ban",
    summary="Ban a user with a reason until a time (or until lifted); signs them out "
    "everywhere at once (staff; staff members only by admins)",
    tag="admin",
    body=BanBody,
    response=Ban,
    auth="user",
    roles=STAFF,
    errors=(400, 401, 403, 404, 409),
)
async def ban_user(request: Request, body: BanBody, claims: Claims) -> Answer:
    reason = body.reason.strip()
    if not reason:
        raise _bad("reason", "must hold something visible")
    ban = await desk_of(platform_of(request)).ban(
        _actor(request, claims), _user(request), reason=reason, ends_at=body.until
    )
    return Answer(ban)


@api.route(
    "POST",
    "/api/v1/admin/users/{user}/unban",
    summary="Lift the ban in force (staff)",
    tag="admin",
    body=UnbanBody,
    response=StaffUserDetail,
    auth="user",
    roles=STAFF,
    errors=(400, 401, 403, 404, 409),
)
async def unban_user(request: Request, body: UnbanBody, claims: Claims) -> Answer:
    desk = desk_of(platform_of(request))
    target = await desk.unban(_actor(request, claims), _user(request), reason=body.reason.strip())
    return Answer(await desk.view(target["id"]))


@api.route(
    "POST",
    "/api/v1/admin/users/{user}/sessions/revoke",
    summary="Sign a user out everywhere: every token refused, live sockets closed (staff)",
    tag="admin",
    response=SessionsReset,
    auth="user",
    roles=STAFF,
    errors=(401, 403, 404, 409),
)
async def reset_sessions(request: Request, claims: Claims) -> Answer:
    target = await desk_of(platform_of(request)).reset_sessions(
        _actor(request, claims), _user(request)
    )
    return Answer({"user": target["id"], "sessions_reset": True})


@api.route(
    "PUT",
    "/api/v1/admin/users/{user}/role",
    summary="Grant a role (admins); the user's tokens are revoked so the change holds at once",
    tag="admin",
    body=RoleBody,
    response=StaffUserDetail,
    auth="user",
    roles=ADMINS,
    errors=(400, 401, 403, 404, 409),
)
async def grant_role(request: Request, body: RoleBody, claims: Claims) -> Answer:
    desk = desk_of(platform_of(request))
    target = await desk.set_role(_actor(request, claims), _user(request), Role(body.role))
    return Answer(await desk.view(target["id"]))


@api.route(
    "DELETE",
    "/api/v1/admin/users/{user}/role",
    summary="Revoke a user's staff role: back to user (admins; never the last admin)",
    tag="admin",
    response=StaffUserDetail,
    auth="user",
    roles=ADMINS,
    errors=(401, 403, 404, 409),
)
async def revoke_role(request: Request, claims: Claims) -> Answer:
    desk = desk_of(platform_of(request))
    target = await desk.set_role(_actor(request, claims), _user(request), Role.USER)
    return Answer(await desk.view(target["id"]))


@api.route(
    "GET",
    "/api/v1/admin/audit",
    summary="The audit log, newest first, with filters (admins)",
    tag="admin",
    response=AuditPage,
    auth="user",
    roles=ADMINS,
    errors=(400, 401, 403),
    query={
        "user": "entries about this user id",
        "actor": "entries of this staff member's actions (user id, or cli)",
        "action": "an action (login, user.ban, post.update…); a trailing * matches a prefix",
        "outcome": "success, failure or ok",
        "since": "epoch ms, inclusive",
        "until": "epoch ms, exclusive",
        "limit": f"1-{MAX_PAGE}, default 50",
        "cursor": "next_cursor",
    },
)
async def audit(request: Request, claims: Claims) -> Answer:
    params = request.query_params
    filters: dict[str, str | None] = {}
    for name in ("user", "actor", "action", "outcome"):
        value = params.get(name) or None
        if value is not None and len(value) > 64:
            raise _bad(name, "at most 64 characters")
        filters[name] = value
    since, until = _time(request, "since"), _time(request, "until")
    limit, cursor = paging(request, max_page=MAX_PAGE, default=50)
    page = await desk_of(platform_of(request)).audit(
        user_id=filters["user"],
        actor_id=filters["actor"],
        action=filters["action"],
        outcome=filters["outcome"],
        since=since,
        until=until,
        cursor=cursor,
        limit=limit,
    )
    return Answer(page)
