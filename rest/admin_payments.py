"""Staff: payments (list: staff; refund: admins) and coupon CRUD (admins). All audited.

A coupon is never deleted (its redemptions refer to it): ``DELETE``
deactivates it. Every change drops the coupon's cached copy at once.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from starlette.requests import Request

from rest.context import client_ip, platform_of, staff_audit
from rest.payments import PaymentPage, PaymentView, page_args
from rest.routing import Answer, Api
from typogram.codes import ErrorCode
from typogram.errors import AppError
from typogram.payments.coupons import DuplicateCode, view
from typogram.payments.machine import STATUSES, PaymentError
from typogram.payments.pricing import Coupon, definition_errors, normalize_code
from typogram.payments.provider import ProviderError, ProviderUnavailable
from typogram.payments.records import view as payment_view
from typogram.payments.services import coupons_of, ledger_of, records_of
from typogram.roles import STAFF, Role
from typogram.tokens import Claims

api = Api()
ADMINS = frozenset({Role.ADMIN})
PLAN_IDS = Annotated[
    list[Annotated[str, msgspec.Meta(min_length=1, max_length=32)]], msgspec.Meta(max_length=20)
]
WHEN = Annotated[int, msgspec.Meta(ge=0)] | None
LIMIT = Annotated[int, msgspec.Meta(ge=1, le=10_000_000)] | None


class RefundBody(msgspec.Struct, forbid_unknown_fields=True):
    reason: Annotated[str, msgspec.Meta(max_length=200)] = ""


class Refunded(msgspec.Struct):
    payment: PaymentView
    refund_id: str


class CouponBody(msgspec.Struct, forbid_unknown_fields=True):
    code: Annotated[str, msgspec.Meta(min_length=3, max_length=32)]
    kind: Literal["percent", "fixed"]
    percent_off: Annotated[int, msgspec.Meta(ge=1, le=100)] | None = None
    amount_off: Annotated[int, msgspec.Meta(ge=1, le=10**9)] | None = None
    currency: Annotated[str, msgspec.Meta(min_length=3, max_length=3)] | None = None
    valid_from: WHEN = None
    valid_until: WHEN = None
    max_redemptions: LIMIT = None
    max_per_user: LIMIT = 1
    plans: PLAN_IDS = msgspec.field(default_factory=list)
    active: bool = True


class CouponPatch(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    valid_from: WHEN | msgspec.UnsetType = msgspec.UNSET
    valid_until: WHEN | msgspec.UnsetType = msgspec.UNSET
    max_redemptions: LIMIT | msgspec.UnsetType = msgspec.UNSET
    max_per_user: LIMIT | msgspec.UnsetType = msgspec.UNSET
    plans: PLAN_IDS | msgspec.UnsetType = msgspec.UNSET
    active: bool | msgspec.UnsetType = msgspec.UNSET


class CouponView(msgspec.Struct):
    id: str
    code: str
    kind: str
    percent_off: int | None
    amount_off: int | None
    currency: str | None
    valid_from: int | None
    valid_until: int | None
    max_redemptions: int | None
    max_per_user: int | None
    plans: list[str]
    active: bool
    redeemed: int


class CouponList(msgspec.Struct):
    coupons: list[CouponView]


@api.route(
    "GET",
    "/api/v1/admin/payments",
    summary="Every payment, newest first (staff)",
    tag="payments",
    response=PaymentPage,
    auth="user",
    roles=STAFF,
    errors=(400, 401, 403, 404),
    query={
        "status": "pending, succeeded, failed or refunded",
        "user": "a username",
        "limit": "page size, 1..100 (default 20)",
        "cursor": "next_cursor of the last page",
    },
)
async def list_payments(request: Request, claims: Claims) -> Answer:
    platform = platform_of(request)
    records = records_of(platform)
    limit, cursor = page_args(request, records.max_page)
    status = request.query_params.get("status") or None
    if status is not None and status not in STATUSES:
        raise AppError(ErrorCode.BAD_REQUEST, "unknown status", fields={"status": "invalid"})
    user_id = None
    if username := request.query_params.get("user"):
        user = await platform.accounts.get_by_username(username[:64])
        if user is None:
            raise AppError(ErrorCode.NOT_FOUND, "no such user", fields={"user": "unknown"})
        user_id = user.id
    rows, following = await records.page(limit=limit, cursor=cursor, user_id=user_id, status=status)
    return Answer({"payments": rows, "next_cursor": following})


@api.route(
    "POST",
    "/api/v1/admin/payments/{payment_id}/refund",
    summary="Refund a succeeded payment in full at the provider (admins)",
    tag="payments",
    body=RefundBody,
    response=Refunded,
    status=202,
    auth="user",
    roles=ADMINS,
    errors=(400, 401, 403, 404, 409, 503),
)
async def refund(request: Request, body: RefundBody, claims: Claims) -> Answer:
    platform = platform_of(request)
    payment_id = request.path_params["payment_id"][:64]
    try:
        refund_id = await ledger_of(platform).request_refund(
            payment_id, actor=claims.subject, ip=client_ip(request), reason=body.reason
        )
    except LookupError as exc:
        raise AppError(ErrorCode.NOT_FOUND, "no such payment") from exc
    except (PaymentError, ProviderError) as exc:
        raise AppError(ErrorCode.CONFLICT, str(exc)) from exc
    except ProviderUnavailable as exc:
        raise AppError(ErrorCode.PROVIDER_UNAVAILABLE, str(exc), retry_after=5) from exc
    row = await records_of(platform).get(payment_id)
    return Answer({"payment": payment_view(row), "refund_id": refund_id}, 202)


# -- coupons ------------------------------------------------------------------------


def _coupon_of(body: CouponBody) -> Coupon:
    coupon = Coupon(
        id="",
        code=normalize_code(body.code),
        kind=body.kind,
        percent_off=body.percent_off,
        amount_off=body.amount_off,
        currency=body.currency,
        valid_from=body.valid_from,
        valid_until=body.valid_until,
        max_redemptions=body.max_redemptions,
        max_per_user=body.max_per_user,
        plans=tuple(dict.fromkeys(body.plans)),
        active=body.active,
    )
    if errors := definition_errors(coupon):
        raise AppError(ErrorCode.BAD_REQUEST, "invalid coupon", fields=errors)
    return coupon


async def _audit(request: Request, claims: Claims, action: str, detail: dict[str, Any]) -> None:
    await staff_audit(request, claims, action, detail)


@api.route(
    "POST",
    "/api/v1/admin/coupons",
    summary="Create a coupon (admins)",
    tag="payments",
    body=CouponBody,
    response=CouponView,
    status=201,
    auth="user",
    roles=ADMINS,
    errors=(400, 401, 403, 409),
)
async def create_coupon(request: Request, body: CouponBody, claims: Claims) -> Answer:
    try:
        coupon = await coupons_of(platform_of(request)).create(
            _coupon_of(body), actor=claims.subject
        )
    except DuplicateCode as exc:
        raise AppError(
            ErrorCode.CONFLICT, "a coupon with this code exists", fields={"code": "taken"}
        ) from exc
    await _audit(request, claims, "coupon.create", view(coupon))
    return Answer(view(coupon), 201)


@api.route(
    "GET",
    "/api/v1/admin/coupons",
    summary="Every coupon, by code (admins)",
    tag="payments",
    response=CouponList,
    auth="user",
    roles=ADMINS,
    errors=(401, 403),
    query={"after": "the last code of the previous page", "limit": "1..500 (default 100)"},
)
async def list_coupons(request: Request, claims: Claims) -> Answer:
    query = request.query_params
    limit = int(query["limit"]) if query.get("limit", "").isdigit() else 100
    found = await coupons_of(platform_of(request)).listing(
        limit=max(1, min(limit, 500)), after=(query.get("after") or "")[:32] or None
    )
    return Answer({"coupons": [view(c) for c in found]})


async def _coupon_or_404(request: Request) -> Coupon:
    coupon = await coupons_of(platform_of(request)).get(request.path_params["code"][:64])
    if coupon is None:
        raise AppError(ErrorCode.NOT_FOUND, "no such coupon")
    return coupon


@api.route(
    "GET",
    "/api/v1/admin/coupons/{code}",
    summary="One coupon with its redemption count (admins)",
    tag="payments",
    response=CouponView,
    auth="user",
    roles=ADMINS,
    errors=(401, 403, 404),
)
async def get_coupon(request: Request, claims: Claims) -> Answer:
    return Answer(view(await _coupon_or_404(request)))


@api.route(
    "PATCH",
    "/api/v1/admin/coupons/{code}",
    summary="Change a coupon's window, limits, plans or active flag (admins)",
    tag="payments",
    body=CouponPatch,
    response=CouponView,
    auth="user",
    roles=ADMINS,
    errors=(400, 401, 403, 404),
)
async def patch_coupon(request: Request, body: CouponPatch, claims: Claims) -> Answer:
    current = await _coupon_or_404(request)
    changes = msgspec.structs.asdict(body)
    changes = {k: v for k, v in changes.items() if v is not msgspec.UNSET}
    merged = {**view(current), **changes}
    merged["plans"] = tuple(dict.fromkeys(merged["plans"]))
    if errors := definition_errors(Coupon(**merged)):
        raise AppError(ErrorCode.BAD_REQUEST, "invalid coupon", fields=errors)
    if "plans" in changes:
        changes["plans"] = list(merged["plans"])
    updated = await coupons_of(platform_of(request)).update(current.code, changes)
    if updated is None:
        raise AppError(ErrorCode.NOT_FOUND, "no such coupon")
    await _audit(request, claims, "coupon.update", {"code": current.code, **changes})
    return Answer(view(updated))


@api.route(
    "DELETE",
    "/api/v1/admin/coupons/{code}",
    summary="Deactivate a coupon (kept for its redemptions) (admins)",
    tag="payments",
    response=CouponView,
    auth="user",
    roles=ADMINS,
    errors=(401, 403, 404),
)
async def delete_coupon(request: Request, claims: Claims) -> Answer:
    current = await _coupon_or_404(request)
    updated = await coupons_of(platform_of(request)).update(current.code, {"active": False})
    if updated is None:
        raise AppError(ErrorCode.NOT_FOUND, "no such coupon")
    await _audit(request, claims, "coupon.deactivate", {"code": current.code})
    return Answer(view(updated))
