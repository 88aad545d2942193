"""E-mail over REST: preferences, the unsubscribe page and its one-click POST (RFC 8058),
staff's view of a user's mail, and the signed delivery-tracking webhook."""

from __future__ import annotations

import time
from typing import Any

import jinja2
import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from rest.context import paging, platform_of, staff_audit
from rest.routing import Answer, Api
from rest.web import SECURITY_HEADERS
from typogram.codes import ErrorCode
from typogram.errors import AppError
from typogram.mail.catalog import Category
from typogram.mail.history import EmailHistory
from typogram.mail.links import read_unsubscribe_token
from typogram.mail.preferences import Preferences
from typogram.mail.tracking import Reports, apply_report
from typogram.payments.signature import SignatureError, verify
from typogram.roles import STAFF
from typogram.settings import PLACEHOLDER_SECRETS
from typogram.staff import desk_of
from typogram.tokens import Claims

api = Api()

SIGNATURE_HEADER = "Typogram-Signature"
PROVIDERS = frozenset({"smtp", "maildir"})
_PAGES = jinja2.Environment(
    loader=jinja2.PackageLoader("rest", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)


class PreferencesPatch(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    announcements: bool | None = None
    billing: bool | None = None
    tournaments: bool | None = None
    achievements: bool | None = None
    streak_reminders: bool | None = None


class EmailPreferences(msgspec.Struct):
    announcements: bool
    billing: bool
    tournaments: bool
    achievements: bool
    streak_reminders: bool


class EmailRecord(msgspec.Struct):
    id: str
    email_type: str
    address: str
    status: str
    attempts: int
    error: str
    provider: str
    provider_message_id: str | None
    created_at: int
    sent_at: int | None
    updated_at: int


class EmailPage(msgspec.Struct):
    user: dict[str, Any]
    items: list[EmailRecord]
    next_before: int | None


class ReportsAccepted(msgspec.Struct):
    applied: int


def _view(preferences: dict[Category, bool]) -> dict[str, bool]:
    return {category.value: on for category, on in preferences.items()}


@api.route(
    "GET",
    "/api/v1/users/me/email-preferences",
    summary="The caller's e-mail preferences per category",
    tag="users",
    response=EmailPreferences,
    auth="user",
    errors=(401, 429),
)
async def get_preferences(request: Request, claims: Claims) -> Answer:
    return Answer(_view(await Preferences(platform_of(request).db).of(claims.subject)))


@api.route(
    "PATCH",
    "/api/v1/users/me/email-preferences",
    summary="Turn e-mail categories on or off (security mail always goes)",
    tag="users",
    body=PreferencesPatch,
    response=EmailPreferences,
    auth="user",
    errors=(400, 401, 413, 429),
)
async def patch_preferences(request: Request, body: PreferencesPatch, claims: Claims) -> Answer:
    changes = {
        Category(name): value
        for name, value in msgspec.structs.asdict(body).items()
        if value is not None
    }
    preferences = await Preferences(platform_of(request).db).set(claims.subject, changes)
    return Answer(_view(preferences))


def _page(state: str, status: int, *, category: str = "", token: str = "") -> Response:
    titles = {"ask": "Unsubscribe", "done": "Unsubscribed", "invalid": "Link not valid"}
    body = _PAGES.get_template("unsubscribe.html").render(
        state=state, title=titles[state], category=category.replace("_", " "), token=token
    )
    headers = {**SECURITY_HEADERS, "Cache-Control": "no-store"}
    return Response(body, status, headers, media_type="text/html")


def _unsubscribe_target(request: Request) -> tuple[str, Category, str] | None:
    token = request.query_params.get("token", "")
    try:
        user_id, category = read_unsubscribe_token(platform_of(request).settings.jwt_secret, token)
    except ValueError:
        return None
    return user_id, category, token


async def unsubscribe_page(request: Request) -> Response:
    """``GET``: a page that asks (a link scanner following the link changes nothing)."""
    target = _unsubscribe_target(request)
    if target is None:
        return _page("invalid", 400)
    _, category, token = target
    return _page("ask", 200, category=category.value, token=token)


async def unsubscribe(request: Request) -> Response:
    """``POST``: the one-click unsubscribe (RFC 8058) and the page's button."""
    target = _unsubscribe_target(request)
    if target is None:
        return _page("invalid", 400)
    user_id, category, _ = target
    await Preferences(platform_of(request).db).set(user_id, {category: False})
    return _page("done", 200, category=category.value)


def routes() -> list[BaseRoute]:
    return [
        Route("/unsubscribe", unsubscribe_page, methods=["GET"]),
        Route("/unsubscribe", unsubscribe, methods=["POST"]),
    ]


@api.route(
    "GET",
    "/api/v1/admin/emails",
    summary="A user's e-mail history with statuses (staff)",
    tag="admin",
    response=EmailPage,
    auth="user",
    roles=STAFF,
    query={"user": "user id or username", "limit": "1..100", "before": "epoch ms"},
    errors=(400, 401, 403, 404, 429),
)
async def admin_emails(request: Request, claims: Claims) -> Answer:
    platform = platform_of(request)
    user_ref = request.query_params.get("user", "")
    if not 1 <= len(user_ref) <= 64:
        raise AppError(ErrorCode.BAD_REQUEST, "name a user", fields={"user": "required"})
    limit, _ = paging(request, max_page=platform.settings.email_history_max_page)
    before_raw = request.query_params.get("before")
    before = None
    if before_raw is not None:
        if not before_raw.isdigit() or len(before_raw) > 15:
            raise AppError(ErrorCode.BAD_REQUEST, "invalid before", fields={"before": "invalid"})
        before = int(before_raw)
    user = await desk_of(platform).find(user_ref)
    rows = await EmailHistory(platform.db).of_user(user["id"], limit=limit, before=before)
    await staff_audit(request, claims, "emails.view", {"count": len(rows)}, user_id=user["id"])
    items = [{name: row[name] for name in EmailRecord.__struct_fields__} for row in rows]
    next_before = rows[-1]["created_at"] if len(rows) == limit else None
    return Answer({"user": user, "items": items, "next_before": next_before})


@api.route(
    "POST",
    "/api/v1/email/events/{provider}",
    summary="Delivery events from the mail provider (signed): delivered, bounced, complained",
    tag="email",
    response=ReportsAccepted,
    errors=(400, 404, 413, 429),
)
async def delivery_events(request: Request) -> Answer:
    platform = platform_of(request)
    settings = platform.settings
    if request.path_params["provider"] not in PROVIDERS:
        raise AppError(ErrorCode.NOT_FOUND, "no such provider")
    body = await request.body()
    secret = settings.email_webhook_secret
    if not settings.is_development and secret in PLACEHOLDER_SECRETS:
        raise AppError(ErrorCode.BAD_SIGNATURE, "delivery events are not configured")
    header = request.headers.get(SIGNATURE_HEADER)
    if not header:
        raise AppError(ErrorCode.BAD_SIGNATURE, f"missing {SIGNATURE_HEADER} header")
    try:
        verify(
            body,
            header,
            secret,
            tolerance_s=settings.email_webhook_tolerance_s,
            now_s=int(time.time()),
        )
    except SignatureError as exc:
        raise AppError(ErrorCode.BAD_SIGNATURE, str(exc)) from exc
    try:
        reports = msgspec.json.decode(body, type=Reports)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise AppError(ErrorCode.BAD_REQUEST, f"not a list of delivery events: {exc}") from exc
    applied = 0
    for report in reports:
        applied += await apply_report(platform.db, report)
    return Answer({"applied": applied})
