"""Plans and the caller's subscription; staff grant and revoke (``typogram.subscriptions``).

A user cancels at the end of the paid period (and may resume until then);
staff grant a plan (from now, or renewing a running one: the same call a
succeeded payment makes, ``Subscriptions.apply_payment``) or revoke at once.
A rule the state does not allow answers 409 with the reason.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from starlette.requests import Request

from rest.context import client_ip, platform_of
from rest.routing import Answer, Api
from typogram.codes import ErrorCode
from typogram.courses.services import subscriptions_of
from typogram.errors import AppError
from typogram.roles import ADMINS
from typogram.subscriptions import rules
from typogram.subscriptions.rules import SubscriptionError
from typogram.subscriptions.service import Change, Subscriptions, now_ms
from typogram.tokens import Claims

api = Api()


class PlanView(msgspec.Struct):
    id: str
    name: str
    description: str
    price_cents: int
    currency: str
    interval: str
    interval_count: int


class Plans(msgspec.Struct):
    plans: list[PlanView]


class SubscriptionView(msgspec.Struct):
    id: str
    plan: PlanView | None
    status: str
    current_period_start: int
    current_period_end: int
    cancel_at_period_end: bool
    cancelled_at: int | None


class MySubscription(msgspec.Struct):
    subscription: SubscriptionView | None
    access: bool  # premium courses open now


class GrantBody(msgspec.Struct, forbid_unknown_fields=True):
    username: Annotated[str, msgspec.Meta(min_length=1, max_length=32)]
    plan: Annotated[str, msgspec.Meta(min_length=1, max_length=32)]
    # A payment or request id: the same reference again changes nothing.
    reference: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] | None = None


class RevokeBody(msgspec.Struct, forbid_unknown_fields=True):
    username: Annotated[str, msgspec.Meta(min_length=1, max_length=32)]


class StaffChange(msgspec.Struct):
    action: str
    applied: bool
    user: str
    subscription: SubscriptionView


def plan_view(plan: rules.Plan) -> dict[str, Any]:
    return {
        "id": plan.id, "name": plan.name, "description": plan.description,
        "price_cents": plan.price_cents, "currency": plan.currency, "interval": plan.interval,
        "interval_count": plan.interval_count,
    }  # fmt: skip


async def subscription_view(subs: Subscriptions, sub: rules.Subscription) -> dict[str, Any]:
    plan = await subs.plan(sub.plan_id)
    return {
        "id": sub.id,
        "plan": None if plan is None else plan_view(plan),
        "status": sub.status,
        "current_period_start": sub.period_start,
        "current_period_end": sub.period_end,
        "cancel_at_period_end": sub.cancel_at_period_end,
        "cancelled_at": sub.cancelled_at,
    }


@api.route(
    "GET",
    "/api/v1/plans",
    summary="The plans on sale",
    tag="subscriptions",
    response=Plans,
)
async def list_plans(request: Request) -> Answer:
    plans = await subscriptions_of(platform_of(request)).plans()
    return Answer({"plans": [plan_view(plan) for plan in plans]})


@api.route(
    "GET",
    "/api/v1/subscriptions/me",
    summary="The caller's subscription (null for none) and whether premium courses are open",
    tag="subscriptions",
    response=MySubscription,
    auth="user",
    errors=(401,),
)
async def my_subscription(request: Request, claims: Claims) -> Answer:
    subs = subscriptions_of(platform_of(request))
    sub = await subs.current(claims.subject)
    if sub is None:
        return Answer({"subscription": None, "access": False})
    view = await subscription_view(subs, sub)
    return Answer({"subscription": view, "access": rules.has_access(sub, now_ms(), subs.grace_ms)})


async def _changed(subs: Subscriptions, change: Change) -> dict[str, Any]:
    sub = change.subscription
    view = await subscription_view(subs, sub)
    return {"subscription": view, "access": rules.has_access(sub, now_ms(), subs.grace_ms)}


def _refused(exc: SubscriptionError) -> AppError:
    return AppError(ErrorCode.CONFLICT, str(exc))


async def _mine(request: Request, claims: Claims, action: str) -> Answer:
    subs = subscriptions_of(platform_of(request))
    change_of = subs.cancel if action == "cancel" else subs.resume
    try:
        change = await change_of(claims.subject, actor=claims.subject)
    except SubscriptionError as exc:
        raise _refused(exc) from exc
    return Answer(await _changed(subs, change))


@api.route(
    "POST",
    "/api/v1/subscriptions/me/cancel",
    summary="End the subscription with its paid period (access stays until then)",
    tag="subscriptions",
    response=MySubscription,
    auth="user",
    errors=(401, 409),
)
async def cancel(request: Request, claims: Claims) -> Answer:
    return await _mine(request, claims, "cancel")


@api.route(
    "POST",
    "/api/v1/subscriptions/me/resume",
    summary="Undo a cancellation before the period ends",
    tag="subscriptions",
    response=MySubscription,
    auth="user",
    errors=(401, 409),
)
async def resume(request: Request, claims: Claims) -> Answer:
    return await _mine(request, claims, "resume")


async def _user_id(request: Request, username: str) -> str:
    user = await platform_of(request).accounts.get_by_username(username)
    if user is None:
        raise AppError(ErrorCode.NOT_FOUND, "no such user", fields={"username": "unknown"})
    return user.id


@api.route(
    "POST",
    "/api/v1/admin/subscriptions",
    summary="Grant a plan to a user from now, or renew a running subscription (admins)",
    tag="subscriptions",
    body=GrantBody,
    response=StaffChange,
    auth="user",
    roles=ADMINS,
    errors=(400, 401, 403, 404, 409),
)
async def grant(request: Request, body: GrantBody, claims: Claims) -> Answer:
    platform = platform_of(request)
    subs = subscriptions_of(platform)
    user_id = await _user_id(request, body.username)
    reference = None if body.reference is None else f"staff:{body.reference}"
    try:
        change = await subs.grant(user_id, body.plan, reference=reference, actor=claims.subject)
    except SubscriptionError as exc:
        raise _refused(exc) from exc
    await platform.accounts.audit(
        "subscription.grant", "ok", user_id=claims.subject, actor_id=claims.subject,
        ip=client_ip(request),
        detail={"user": user_id, "plan": body.plan, "action": change.action,
                "applied": change.applied, "reference": body.reference},
    )  # fmt: skip
    return Answer(await _staff_view(subs, change, body.username))


@api.route(
    "POST",
    "/api/v1/admin/subscriptions/revoke",
    summary="End a user's subscription now (admins)",
    tag="subscriptions",
    body=RevokeBody,
    response=StaffChange,
    auth="user",
    roles=ADMINS,
    errors=(400, 401, 403, 404, 409),
)
async def revoke(request: Request, body: RevokeBody, claims: Claims) -> Answer:
    platform = platform_of(request)
    subs = subscriptions_of(platform)
    user_id = await _user_id(request, body.username)
    try:
        change = await subs.revoke(user_id, actor=claims.subject)
    except SubscriptionError as exc:
        raise _refused(exc) from exc
    await platform.accounts.audit(
        "subscription.revoke", "ok", user_id=claims.subject, actor_id=claims.subject,
        ip=client_ip(request),
        detail={"user": user_id},
    )  # fmt: skip
    return Answer(await _staff_view(subs, change, body.username))


async def _staff_view(subs: Subscriptions, change: Change, username: str) -> dict[str, Any]:
    return {
        "action": change.action,
        "applied": change.applied,
        "user": username,
        "subscription": await subscription_view(subs, change.subscription),
    }
