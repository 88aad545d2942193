"""Registration, login, refresh rotation, logout-all, password change and guests."""

from __future__ import annotations

import time
import uuid
from typing import Annotated

import msgspec
import orjson
from starlette.requests import Request

from rest.context import client_ip, platform_of
from rest.routing import Api, Reply
from typogram import keys
from typogram.accounts import User
from typogram.codes import ErrorCode
from typogram.errors import AppError
from typogram.mail.account_mail import create_account
from typogram.mail.services import account_mail_of
from typogram.staff import banned, desk_of
from typogram.tokens import Claims, TokenType

api = Api()

Username = Annotated[str, msgspec.Meta(min_length=3, max_length=32, pattern=r"^[A-Za-z0-9_]+$")]
Email = Annotated[
    str, msgspec.Meta(min_length=3, max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
]
Password = Annotated[str, msgspec.Meta(min_length=8, max_length=128)]
LoginName = Annotated[str, msgspec.Meta(min_length=1, max_length=254)]
GuestName = Annotated[str, msgspec.Meta(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_]+$")]


class RegisterBody(msgspec.Struct, forbid_unknown_fields=True):
    username: Username
    email: Email
    password: Password


class LoginBody(msgspec.Struct, forbid_unknown_fields=True):
    login: LoginName
    password: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]


class RefreshBody(msgspec.Struct, forbid_unknown_fields=True):
    refresh_token: Annotated[str, msgspec.Meta(min_length=1, max_length=4096)]


class PasswordBody(msgspec.Struct, forbid_unknown_fields=True):
    current_password: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
    new_password: Password


class GuestBody(msgspec.Struct, forbid_unknown_fields=True):
    name: GuestName | None = None


class PrivateUser(msgspec.Struct):
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
    # In ``users/me``, ``register`` and ``verify-email`` answers (``rest.account_mail``).
    email_verified: bool = False


class TokenPair(msgspec.Struct):
    access_token: str
    refresh_token: str
    token_type: str
    expires_in: int
    user: PrivateUser


class GuestToken(msgspec.Struct):
    access_token: str
    token_type: str
    expires_in: int
    user: dict[str, str | bool]


class LoggedOut(msgspec.Struct):
    token_version: int


async def issue_pair(request: Request, user: User, family: str | None = None) -> dict[str, object]:
    """A fresh access + refresh token for ``user``; the refresh token is recorded."""
    platform = platform_of(request)
    tokens = platform.tokens
    access, access_claims = tokens.issue(
        user.id, TokenType.ACCESS, version=user.token_version, name=user.username, role=user.role
    )
    refresh, refresh_claims = tokens.issue(
        user.id, TokenType.REFRESH, version=user.token_version, name=user.username, role=user.role
    )
    await platform.accounts.store_refresh(
        refresh_claims.jti, user.id, family or uuid.uuid4().hex, refresh_claims.expires_at
    )
    return {
        "access_token": access,
        "refresh_token": refresh,
        "token_type": "Bearer",
        "expires_in": access_claims.expires_at - int(time.time()),
        "user": user.private(),
    }


@api.route(
    "POST",
    "/api/v1/auth/register",
    summary="Create an account",
    tag="auth",
    body=RegisterBody,
    response=TokenPair,
    status=201,
    errors=(400, 409, 413, 429),
)
async def register(request: Request, body: RegisterBody) -> Reply:
    platform = platform_of(request)
    password_hash = await platform.passwords.hash(body.password)
    # A taken address answers as a free one does: its holder hears of it by e-mail.
    user, taken = await create_account(platform.accounts, body.username, body.email, password_hash)
    await platform.accounts.audit("register", "success", user_id=user.id, ip=client_ip(request))
    platform.metrics.auth_events.labels("register", "success").inc()
    await account_mail_of(platform).registered(user.id, body.email.lower(), taken=taken)
    pair = await issue_pair(request, user)
    return Reply({**pair, "user": {**user.private(), "email_verified": False}}, 201)


@api.route(
    "POST",
    "/api/v1/auth/login",
    summary="Log in with a username or e-mail",
    tag="auth",
    body=LoginBody,
    response=TokenPair,
    errors=(400, 401, 413, 429),
)
async def login(request: Request, body: LoginBody) -> Reply:
    platform = platform_of(request)
    settings = platform.settings
    window = int(time.time() // 900)
    throttle_key = keys.rate_limit("login", body.login.lower(), window)
    failures = await platform.cache.get(throttle_key)
    if failures is not None and int(failures) >= settings.login_attempts_per_15min:
        platform.metrics.auth_events.labels("login", "throttled").inc()
        raise AppError(
            ErrorCode.RATE_LIMITED,
            "too many failed logins for this account, try again later",
            retry_after=(window + 1) * 900 - int(time.time()),
        )
    found = await platform.accounts.credentials(body.login)
    ok = await platform.passwords.verify(found[1] if found else None, body.password)
    if not found or not ok:
        await platform.cache.incr(throttle_key, ttl=900)
        await platform.accounts.audit(
            "login",
            "failure",
            user_id=found[0].id if found else None,
            ip=client_ip(request),
            detail={"login": body.login[:64]},
        )
        platform.metrics.auth_events.labels("login", "failure").inc()
        raise AppError(ErrorCode.UNAUTHORIZED, "invalid login or password")
    user, stored_hash = found
    ban = await desk_of(platform).active_ban(user.id)
    if ban is not None:
        # Only the right password learns of the ban: a guess learns nothing more.
        await platform.accounts.audit(
            "login", "failure", user_id=user.id, ip=client_ip(request), detail={"banned": True}
        )
        platform.metrics.auth_events.labels("login", "banned").inc()
        raise banned(ban)
    if platform.passwords.needs_rehash(stored_hash):
        await platform.accounts.set_password(user.id, await platform.passwords.hash(body.password))
    await platform.accounts.audit("login", "success", user_id=user.id, ip=client_ip(request))
    platform.metrics.auth_events.labels("login", "success").inc()
    return Reply(await issue_pair(request, user))


@api.route(
    "POST",
    "/api/v1/auth/refresh",
    summary="Rotate a refresh token for a new pair",
    tag="auth",
    body=RefreshBody,
    response=TokenPair,
    errors=(400, 401, 413, 429),
)
async def refresh(request: Request, body: RefreshBody) -> Reply:
    platform = platform_of(request)
    claims = platform.tokens.verify(body.refresh_token, TokenType.REFRESH)
    user = await _current_user(request, claims)
    if (ban := await desk_of(platform).active_ban(user.id)) is not None:
        raise banned(ban)
    family = await platform.accounts.spend_refresh(claims.jti, user.id)
    platform.metrics.auth_events.labels("refresh", "success").inc()
    return Reply(await issue_pair(request, user, family))


@api.route(
    "POST",
    "/api/v1/auth/logout-all",
    summary="Revoke every token of the caller",
    tag="auth",
    response=LoggedOut,
    auth="user",
    errors=(401, 429),
)
async def logout_all(request: Request, claims: Claims) -> Reply:
    platform = platform_of(request)
    version = await platform.accounts.bump_token_version(claims.subject)
    # Live sockets of this user on every gateway node close on this message.
    await platform.pubsub.publish(
        keys.channel_user(claims.subject), orjson.dumps({"t": "revoke", "d": {"version": version}})
    )
    await platform.accounts.audit(
        "logout_all", "success", user_id=claims.subject, ip=client_ip(request)
    )
    return Reply({"token_version": version})


@api.route(
    "POST",
    "/api/v1/auth/password",
    summary="Change the password; revokes other tokens",
    tag="auth",
    body=PasswordBody,
    response=TokenPair,
    auth="user",
    errors=(400, 401, 413, 429),
)
async def change_password(request: Request, body: PasswordBody, claims: Claims) -> Reply:
    platform = platform_of(request)
    stored = await platform.accounts.password_hash(claims.subject)
    if not await platform.passwords.verify(stored, body.current_password):
        await platform.accounts.audit(
            "password_change", "failure", user_id=claims.subject, ip=client_ip(request)
        )
        raise AppError(
            ErrorCode.UNAUTHORIZED,
            "current password is wrong",
            fields={"current_password": "wrong"},
        )
    await platform.accounts.set_password(
        claims.subject, await platform.passwords.hash(body.new_password)
    )
    await platform.accounts.bump_token_version(claims.subject)
    await platform.accounts.audit(
        "password_change", "success", user_id=claims.subject, ip=client_ip(request)
    )
    user = await platform.accounts.update_profile(claims.subject, {})
    return Reply(await issue_pair(request, user))


@api.route(
    "POST",
    "/api/v1/auth/guest",
    summary="An access token for anonymous play",
    tag="auth",
    body=GuestBody,
    response=GuestToken,
    status=201,
    errors=(400, 413, 429),
)
async def guest(request: Request, body: GuestBody) -> Reply:
    platform = platform_of(request)
    name = body.name or f"guest_{uuid.uuid4().hex[:6]}"
    token, claims = platform.tokens.issue_guest(name)
    return Reply(
        {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": claims.expires_at - int(time.time()),
            "user": {"id": claims.subject, "name": name, "guest": True},
        },
        201,
    )


async def _current_user(request: Request, claims: Claims) -> User:
    """The user a token names, refusing tokens older than the user's token version."""
    platform = platform_of(request)
    version = await platform.accounts.token_version(claims.subject)
    if version is None or claims.version < version:
        raise AppError(ErrorCode.UNAUTHORIZED, "token has been revoked")
    user = await platform.accounts.get(claims.subject)
    if user is None:
        raise AppError(ErrorCode.UNAUTHORIZED, "token has been revoked")
    return user
