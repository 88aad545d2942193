"""Registration, login, refresh rotation, logout-all, password change and guests."""

from __future__ import annotations

import time
import uuid
from typing import Annotated, NoReturn

import msgspec
from starlette.requests import Request

from rest.context import client_ip, platform_of
from rest.routing import Answer, Api
from typogram.accounts import RefreshReplayed, User
from typogram.codes import ErrorCode
from typogram.errors import AppError
from typogram.login_throttle import Decision, throttle_of, within_hourly_quota
from typogram.mail.account_mail import create_account
from typogram.mail.i18n import preferred_language
from typogram.mail.services import account_mail_of
from typogram.passwords import MAX_LENGTH, MIN_LENGTH, require_strong_password
from typogram.revocation import RevokeReason
from typogram.staff import banned, desk_of
from typogram.text_rules import username_key, whole
from typogram.tokens import Claims, TokenType

api = Api()

# Patterns match the whole value (``typogram.text_rules``): no trailing newline slips by.
USERNAME_PATTERN = whole(r"[A-Za-z0-9_]+")
Username = Annotated[str, msgspec.Meta(min_length=3, max_length=32, pattern=USERNAME_PATTERN)]
Email = Annotated[
    str,
    msgspec.Meta(min_length=3, max_length=254, pattern=whole(r"[^@\s]+@[^@\s]+\.[^@\s]+")),
]
Password = Annotated[str, msgspec.Meta(min_length=MIN_LENGTH, max_length=MAX_LENGTH)]
LoginName = Annotated[str, msgspec.Meta(min_length=1, max_length=254)]
GuestName = Annotated[str, msgspec.Meta(min_length=1, max_length=32, pattern=USERNAME_PATTERN)]
# Every response that carries a token: never kept by a browser or a shared cache.
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


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
    appear_offline: bool = False
    # The language of the user's mail (one of ``typogram.texts.LANGUAGES``).
    language: str = "en"
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
    """A fresh access + refresh token for ``user``; the refresh token is recorded.

    ``family`` is the login session being refreshed (``None``: a new login); both
    tokens carry it as ``sid``, so the session can be revoked alone."""
    platform = platform_of(request)
    tokens = platform.tokens
    sid = family or uuid.uuid4().hex
    pair = [
        tokens.issue(
            user.id, kind, version=user.token_version, name=user.username, role=user.role, sid=sid
        )
        for kind in (TokenType.ACCESS, TokenType.REFRESH)
    ]
    (access, access_claims), (refresh, refresh_claims) = pair
    await platform.accounts.store_refresh(
        refresh_claims.jti, user.id, sid, refresh_claims.expires_at
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
async def register(request: Request, body: RegisterBody) -> Answer:
    platform = platform_of(request)
    await _ip_quota(request, "register", platform.settings.register_per_ip_per_hour)
    await require_strong_password(
        body.password,
        user_inputs=(body.username, body.email.partition("@")[0]),
        min_score=platform.settings.password_min_score,
    )
    password_hash = await platform.passwords.hash(body.password)
    # A taken address answers as a free one does: its holder hears of it by e-mail.
    language = preferred_language(request.headers.get("accept-language")) or "en"
    user, taken = await create_account(
        platform.accounts, body.username, body.email, password_hash, language=language
    )
    await platform.accounts.audit("register", "success", user_id=user.id, ip=client_ip(request))
    platform.metrics.auth_events.labels("register", "success").inc()
    await account_mail_of(platform).registered(user.id, body.email.lower(), taken=taken)
    pair = await issue_pair(request, user)
    return Answer({**pair, "user": {**user.private(), "email_verified": False}}, 201, NO_STORE)


@api.route(
    "POST",
    "/api/v1/auth/login",
    summary="Log in with a username or e-mail",
    tag="auth",
    body=LoginBody,
    response=TokenPair,
    errors=(400, 401, 413, 429),
)
async def login(request: Request, body: LoginBody) -> Answer:
    platform = platform_of(request)
    ip = client_ip(request) or "unknown"
    found = await platform.accounts.credentials(body.login)
    # Username and e-mail are one account; an unknown name is throttled by its key.
    account = found[0].id if found else f"name:{_login_key(body.login)}"
    user_id = found[0].id if found else None
    throttle = throttle_of(platform)
    decision = await throttle.admit(account, ip)
    if not decision.allowed:
        await _refuse(request, "login", decision, user_id, {"login": body.login[:64]})
    ok = await platform.passwords.verify(found[1] if found else None, body.password)
    if not found or not ok:
        wait = await throttle.failed(account, ip)
        await platform.accounts.audit(
            "login",
            "failure",
            user_id=user_id,
            ip=ip,
            detail={"login": body.login[:64], "backoff_s": wait},
        )
        platform.metrics.auth_events.labels("login", "failure").inc()
        raise AppError(ErrorCode.UNAUTHORIZED, "invalid login or password")
    await throttle.succeeded(account, ip)
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
    return Answer(await issue_pair(request, user), headers=NO_STORE)


@api.route(
    "POST",
    "/api/v1/auth/refresh",
    summary="Rotate a refresh token for a new pair",
    tag="auth",
    body=RefreshBody,
    response=TokenPair,
    errors=(400, 401, 413, 429),
)
async def refresh(request: Request, body: RefreshBody) -> Answer:
    platform = platform_of(request)
    claims = platform.tokens.verify(body.refresh_token, TokenType.REFRESH)
    user = await _current_user(request, claims)
    if (ban := await desk_of(platform).active_ban(user.id)) is not None:
        raise banned(ban)
    try:
        family = await platform.accounts.spend_refresh(claims.jti, user.id)
    except RefreshReplayed as replay:
        # Stolen or leaked: the whole login session goes, its access tokens and sockets too.
        await platform.revocation.revoke_session(
            user.id, replay.family, RevokeReason.REFRESH_REPLAY
        )
        platform.metrics.auth_events.labels("refresh", "replayed").inc()
        raise
    platform.metrics.auth_events.labels("refresh", "success").inc()
    return Answer(await issue_pair(request, user, family), headers=NO_STORE)


@api.route(
    "POST",
    "/api/v1/auth/logout-all",
    summary="Revoke every token of the caller",
    tag="auth",
    response=LoggedOut,
    auth="user",
    errors=(401, 429),
)
async def logout_all(request: Request, claims: Claims) -> Answer:
    platform = platform_of(request)
    version = await platform.revocation.revoke_user(claims.subject, RevokeReason.LOGOUT_ALL)
    await platform.accounts.audit(
        "logout_all", "success", user_id=claims.subject, ip=client_ip(request)
    )
    return Answer({"token_version": version})


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
async def change_password(request: Request, body: PasswordBody, claims: Claims) -> Answer:
    platform = platform_of(request)
    ip = client_ip(request) or "unknown"
    # A stolen access token must not buy unlimited guesses at the current password:
    # the same counters as logging in, per (account, IP).
    throttle = throttle_of(platform)
    decision = await throttle.admit(claims.subject, ip)
    if not decision.allowed:
        await _refuse(request, "password_change", decision, claims.subject)
    stored = await platform.accounts.password_hash(claims.subject)
    if not await platform.passwords.verify(stored, body.current_password):
        wait = await throttle.failed(claims.subject, ip)
        await platform.accounts.audit(
            "password_change", "failure", user_id=claims.subject, ip=ip, detail={"backoff_s": wait}
        )
        raise AppError(
            ErrorCode.UNAUTHORIZED,
            "current password is wrong",
            fields={"current_password": "wrong"},
        )
    await throttle.succeeded(claims.subject, ip)
    user = await platform.accounts.update_profile(claims.subject, {})
    await require_strong_password(
        body.new_password,
        user_inputs=(user.username, user.email.partition("@")[0]),
        min_score=platform.settings.password_min_score,
        field="new_password",
    )
    await platform.accounts.set_password(
        claims.subject, await platform.passwords.hash(body.new_password)
    )
    await platform.revocation.revoke_user(claims.subject, RevokeReason.PASSWORD_CHANGE)
    await platform.accounts.audit(
        "password_change", "success", user_id=claims.subject, ip=client_ip(request)
    )
    user = await platform.accounts.update_profile(claims.subject, {})
    return Answer(await issue_pair(request, user), headers=NO_STORE)


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
async def guest(request: Request, body: GuestBody) -> Answer:
    platform = platform_of(request)
    await _ip_quota(request, "guest", platform.settings.guest_tokens_per_ip_per_hour)
    name = body.name or f"guest_{uuid.uuid4().hex[:6]}"
    token, claims = platform.tokens.issue_guest(name)
    return Answer(
        {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": claims.expires_at - int(time.time()),
            "user": {"id": claims.subject, "name": name, "guest": True},
        },
        201,
        NO_STORE,
    )


async def _ip_quota(request: Request, action: str, limit: int) -> None:
    """Count one ``action`` from the client's IP this hour; 429 past ``limit``."""
    platform = platform_of(request)
    ip = client_ip(request) or "unknown"
    retry_after = await within_hourly_quota(platform.cache, action, ip, limit, time.time())
    if retry_after:
        platform.metrics.auth_events.labels(action, "throttled").inc()
        if action == "register":
            await platform.accounts.audit(
                action, "throttled", ip=ip, detail={"scope": "ip", "retry_after": retry_after}
            )
        raise AppError(
            ErrorCode.RATE_LIMITED,
            f"too many {action} requests from this address, try again later",
            retry_after=retry_after,
        )


def _login_key(login: str) -> str:
    return login.lower() if "@" in login else username_key(login)


async def _refuse(
    request: Request,
    action: str,
    decision: Decision,
    user_id: str | None,
    detail: dict[str, str] | None = None,
) -> NoReturn:
    """Audit a throttled ``action`` and answer 429 naming the wait (never which limit)."""
    platform = platform_of(request)
    await platform.accounts.audit(
        action,
        "throttled",
        user_id=user_id,
        ip=client_ip(request),
        detail={**(detail or {}), "scope": decision.scope, "retry_after": decision.retry_after},
    )
    platform.metrics.auth_events.labels(action, "throttled").inc()
    raise AppError(
        ErrorCode.RATE_LIMITED,
        "too many attempts, try again later",
        retry_after=decision.retry_after,
    )


async def _current_user(request: Request, claims: Claims) -> User:
    """The user a token names, refusing a revoked token (``typogram.revocation``)."""
    platform = platform_of(request)
    await platform.revocation.check(claims)
    user = await platform.accounts.get(claims.subject)
    if user is None:
        raise AppError(ErrorCode.UNAUTHORIZED, "token has been revoked")
    return user
