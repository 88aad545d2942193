"""Profiles: the caller's own (read and update) and anyone's public one."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from starlette.requests import Request

from rest.account_mail import email_status
from rest.auth import PrivateUser
from rest.context import client_ip, platform_of
from rest.routing import Answer, Api
from typogram.accounts import User
from typogram.codes import ErrorCode
from typogram.errors import AppError
from typogram.text_rules import visible_text_problem, whole
from typogram.texts import LANGUAGES
from typogram.tokens import Claims

api = Api()

KeyboardLayout = Literal[
    "qwerty", "azerty", "qwertz", "dvorak", "colemak", "colemak-dh", "workman", "other"
]


class ProfilePatch(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    display_name: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] | msgspec.UnsetType = (
        msgspec.UNSET
    )
    bio: Annotated[str, msgspec.Meta(max_length=500)] | msgspec.UnsetType = msgspec.UNSET
    keyboard_layout: KeyboardLayout | msgspec.UnsetType = msgspec.UNSET
    country: Annotated[str, msgspec.Meta(pattern=whole(r"([A-Z]{2})?"))] | msgspec.UnsetType = (
        msgspec.UNSET
    )
    # Appear offline to everyone on the gateway (``presence.query``).
    appear_offline: bool | msgspec.UnsetType = msgspec.UNSET
    # The language of the user's mail: one of ``typogram.texts.LANGUAGES``.
    language: Annotated[str, msgspec.Meta(max_length=16)] | msgspec.UnsetType = msgspec.UNSET


class PublicUser(msgspec.Struct):
    id: str
    username: str
    display_name: str
    bio: str
    keyboard_layout: str
    country: str
    role: str
    created_at: int
    rating: float | None = None  # the race rating's display value, once rated


async def user_named(request: Request) -> User:
    """The user the path's ``{username}`` names; 404 when there is none."""
    username = request.path_params["username"]
    user = None
    if 1 <= len(username) <= 32:
        user = await platform_of(request).accounts.get_by_username(username)
    if user is None:
        raise AppError(ErrorCode.NOT_FOUND, "no such user")
    return user


@api.route(
    "GET",
    "/api/v1/users/me",
    summary="The caller's profile",
    tag="users",
    response=PrivateUser,
    auth="user",
    errors=(401, 429),
)
async def me(request: Request, claims: Claims) -> Answer:
    platform = platform_of(request)
    user = await platform.accounts.get(claims.subject)
    if user is None:
        raise AppError(ErrorCode.UNAUTHORIZED, "token has been revoked")
    return Answer({**user.private(), **await email_status(platform, claims.subject)})


@api.route(
    "PATCH",
    "/api/v1/users/me",
    summary="Update the caller's profile",
    tag="users",
    body=ProfilePatch,
    response=PrivateUser,
    auth="user",
    errors=(400, 401, 413, 429),
)
async def update_me(request: Request, body: ProfilePatch, claims: Claims) -> Answer:
    changes = msgspec.structs.asdict(body)
    changes = {name: value for name, value in changes.items() if value is not msgspec.UNSET}
    problems = {
        name: problem
        for name, multiline in (("display_name", False), ("bio", True))
        if name in changes
        and (problem := visible_text_problem(changes[name], allow_newlines=multiline))
    }
    if "display_name" in changes and not changes["display_name"].strip():
        problems["display_name"] = "must show at least one visible character"
    if "language" in changes and changes["language"] not in LANGUAGES:
        problems["language"] = f"must be one of: {', '.join(LANGUAGES)}"
    if problems:
        raise AppError(ErrorCode.BAD_REQUEST, "text fields refused", fields=problems)
    platform = platform_of(request)
    user = await platform.accounts.update_profile(claims.subject, changes)
    if changes:
        await platform.accounts.audit(
            "profile_update",
            "success",
            user_id=claims.subject,
            ip=client_ip(request),
            detail={"fields": sorted(changes)},
        )
    return Answer(user.private())


@api.route(
    "GET",
    "/api/v1/users/{username}",
    summary="A public profile by username",
    tag="users",
    response=PublicUser,
    errors=(404, 429),
)
async def public_profile(request: Request) -> Answer:
    user = await user_named(request)
    view = user.public()
    rating = await platform_of(request).ratings.get(user.id)  # the cache, else the table
    if rating is not None:  # stored by the races worker after a rated race
        view["rating"] = round(rating.display, 1)
    return Answer(view)
