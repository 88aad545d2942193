"""The account flows e-mail carries (``typogram.mail.account_mail``): verification on
register, verify, resend; password reset and its confirmation; changing the address.

No answer tells whether an address is registered: registering with a taken
address answers as any registration (its holder is told by e-mail), and a
reset request always answers ``202`` before anything is looked up.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Annotated

import msgspec
from starlette.requests import Request

from rest.auth import Email, Password
from rest.context import client_ip, platform_of
from rest.routing import Answer, Api
from typogram import topics
from typogram.codes import ErrorCode
from typogram.errors import AppError
from typogram.mail.links import reset_url
from typogram.mail.outbox import SendingLimited
from typogram.mail.services import account_mail_of, outbox_of
from typogram.passwords import require_strong_password
from typogram.ports import Event
from typogram.revocation import RevokeReason
from typogram.tokens import Claims

if TYPE_CHECKING:
    from typogram.platform import Platform

api = Api()

Token = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


class TokenBody(msgspec.Struct, forbid_unknown_fields=True):
    token: Token


class ResetBody(msgspec.Struct, forbid_unknown_fields=True):
    email: Email


class ResetConfirmBody(msgspec.Struct, forbid_unknown_fields=True):
    token: Token
    password: Password


class EmailChangeBody(msgspec.Struct, forbid_unknown_fields=True):
    email: Email
    current_password: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]


class Accepted(msgspec.Struct):
    status: str


class EmailStatus(msgspec.Struct):
    email: str
    email_verified: bool


async def sign_out_everywhere(platform: Platform, user_id: str) -> None:
    """The one place a password reset revokes the user's tokens and closes their sockets
    on every node (``typogram.revocation``, as logout-all and a password change do)."""
    await platform.revocation.revoke_user(user_id, RevokeReason.PASSWORD_RESET)


async def email_status(platform: Platform, user_id: str) -> dict[str, object]:
    state = await account_mail_of(platform).addresses.state(user_id)
    if state is None:
        raise AppError(ErrorCode.UNAUTHORIZED, "token has been revoked")
    return {"email": state.wanted, "email_verified": state.verified}


def _limited(exc: SendingLimited) -> AppError:
    return AppError(ErrorCode.RATE_LIMITED, str(exc), retry_after=exc.retry_after)


@api.route(
    "POST",
    "/api/v1/auth/verify-email",
    summary="Verify an e-mail address with the token a verification link carries",
    tag="auth",
    body=TokenBody,
    response=EmailStatus,
    errors=(400, 413, 429),
)
async def verify_email(request: Request, body: TokenBody) -> Answer:
    platform = platform_of(request)
    user_id = await account_mail_of(platform).verify(body.token)
    await platform.accounts.audit("email_verify", "success", user_id=user_id, ip=client_ip(request))
    return Answer(await email_status(platform, user_id))


@api.route(
    "POST",
    "/api/v1/auth/verify-email/resend",
    summary="Send the verification link again (limited per account and per address)",
    tag="auth",
    response=Accepted,
    status=202,
    auth="user",
    errors=(401, 429),
)
async def resend_verification(request: Request, claims: Claims) -> Answer:
    try:
        outcome = await account_mail_of(platform_of(request)).send_verification(claims.subject)
    except SendingLimited as exc:
        raise _limited(exc) from exc
    return Answer({"status": outcome.value}, 202)


@api.route(
    "POST",
    "/api/v1/auth/password-reset",
    summary="Mail a password-reset link; always 202, whether the address is registered or not",
    tag="auth",
    body=ResetBody,
    response=Accepted,
    status=202,
    errors=(400, 413, 429),
)
async def password_reset(request: Request, body: ResetBody) -> Answer:
    platform = platform_of(request)
    address = body.email.lower()
    key = hashlib.sha256(address.encode()).hexdigest()[:32]
    await platform.events.publish(
        topics.EMAIL_SEND,
        Event(type=topics.PASSWORD_RESET_REQUESTED, data={"address": address}, key=key),
    )
    return Answer({"status": "accepted"}, 202)


@api.route(
    "POST",
    "/api/v1/auth/password-reset/confirm",
    summary="Set a new password with a reset token; signs out every session",
    tag="auth",
    body=ResetConfirmBody,
    response=Accepted,
    errors=(400, 413, 429),
)
async def password_reset_confirm(request: Request, body: ResetConfirmBody) -> Answer:
    platform = platform_of(request)
    await require_strong_password(body.password, min_score=platform.settings.password_min_score)
    password_hash = await platform.passwords.hash(body.password)
    user_id = await account_mail_of(platform).confirm_reset(body.token, password_hash)
    await sign_out_everywhere(platform, user_id)
    await platform.accounts.audit(
        "password_reset", "success", user_id=user_id, ip=client_ip(request)
    )
    user = await platform.accounts.get(user_id)
    state = await account_mail_of(platform).addresses.state(user_id)
    if user is not None and state is not None and state.deliverable is not None:
        await outbox_of(platform).enqueue(
            "password_changed",
            user_id=user_id,
            to=state.deliverable,
            name=user.display_name,
            params={"link": reset_url(platform.settings.site_url)},
        )
    return Answer({"status": "password_changed"})


@api.route(
    "POST",
    "/api/v1/users/me/email",
    summary="Change the e-mail address: it waits, unverified, for its verification link",
    tag="users",
    body=EmailChangeBody,
    response=EmailStatus,
    status=202,
    auth="user",
    errors=(400, 401, 413, 429),
)
async def change_email(request: Request, body: EmailChangeBody, claims: Claims) -> Answer:
    platform = platform_of(request)
    stored = await platform.accounts.password_hash(claims.subject)
    if not await platform.passwords.verify(stored, body.current_password):
        raise AppError(
            ErrorCode.UNAUTHORIZED,
            "current password is wrong",
            fields={"current_password": "wrong"},
        )
    mail = account_mail_of(platform)
    state = await mail.addresses.state(claims.subject)
    address = body.email.lower()
    if state is not None and state.current == address:
        await mail.addresses.set_pending(claims.subject, None)
    else:
        await mail.addresses.set_pending(claims.subject, address)
        try:
            await mail.send_verification(claims.subject)
        except SendingLimited as exc:
            raise _limited(exc) from exc
    await platform.accounts.audit(
        "email_change", "success", user_id=claims.subject, ip=client_ip(request)
    )
    return Answer(await email_status(platform, claims.subject), 202)
