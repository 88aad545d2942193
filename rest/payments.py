"""Checkout, provider webhooks, the caller's payments, coupon validation and the sandbox's pay step.

Amounts are integers in minor units with an explicit currency. A checkout
needs an ``Idempotency-Key`` (the same key and request answer the first
answer, ``Idempotent-Replayed: true``; another request under it is 422).
A webhook is verified on its raw bytes before anything is read; a refused
one is 400, logged and stores nothing (``typogram.payments.intake``).
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

import msgspec
from starlette.requests import Request

from rest.context import client_ip, platform_of
from rest.routing import Answer, Api
from typogram.codes import ErrorCode
from typogram.courses.services import subscriptions_of
from typogram.errors import AppError
from typogram.logs import get_logger
from typogram.payments.checkout import KeyBusy, KeyReused, ProviderRefused
from typogram.payments.coupons import CouponRefused
from typogram.payments.intake import NotPublished, WebhookRefused
from typogram.payments.pricing import MESSAGES, normalize_code
from typogram.payments.provider import ProviderUnavailable
from typogram.payments.records import decode_cursor, view
from typogram.payments.sandbox import Sandbox, SandboxError
from typogram.payments.services import checkout_of, coupons_of, intake_of, records_of
from typogram.payments.signature import HEADER
from typogram.subscriptions.rules import Plan
from typogram.tokens import Claims

api = Api()
log = get_logger("typogram.rest.payments")
IDEMPOTENCY_KEY = re.compile(r"\A[A-Za-z0-9_.:-]{8,64}\Z")
PAYMENT_ID = re.compile(r"\A[0-9a-f]{32}\Z")
PLAN = Annotated[str, msgspec.Meta(min_length=1, max_length=32)]
CODE = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]


class CheckoutBody(msgspec.Struct, forbid_unknown_fields=True):
    plan: PLAN
    coupon: CODE | None = None


class CheckoutView(msgspec.Struct):
    payment_id: str
    order_id: str
    provider: str
    provider_payment_id: str | None
    status: str
    plan: str
    list_amount: int
    discount: int
    amount: int
    currency: str
    coupon: str | None
    redirect_url: str


class PaymentView(msgspec.Struct):
    id: str
    user_id: str
    order_id: str
    plan_id: str
    status: str
    amount: int
    list_amount: int
    discount: int
    currency: str
    coupon_code: str | None
    provider: str
    provider_payment_id: str | None
    failure_reason: str
    credited: bool
    redirect_url: str
    created_at: int
    updated_at: int
    succeeded_at: int | None
    failed_at: int | None
    refunded_at: int | None


class PaymentPage(msgspec.Struct):
    payments: list[PaymentView]
    next_cursor: str | None


class ValidateBody(msgspec.Struct, forbid_unknown_fields=True):
    code: CODE
    plan: PLAN


class Validation(msgspec.Struct):
    valid: bool
    code: str
    plan: str
    currency: str
    list_amount: int
    discount: int
    amount: int
    reason: str | None = None  # expired, exhausted, not_applicable, already_used, …
    message: str | None = None


class WebhookAnswer(msgspec.Struct):
    received: bool
    outcome: str  # accepted, duplicate, ignored
    event_id: str


class PayBody(msgspec.Struct, forbid_unknown_fields=True):
    outcome: Literal["succeeded", "failed", "requires_action"]


class SandboxPaid(msgspec.Struct):
    payment_id: str
    provider_payment_id: str
    status: str


async def active_plan(request: Request, plan_id: str) -> Plan:
    plan = await subscriptions_of(platform_of(request)).plan(plan_id)
    if plan is None or not plan.active:
        raise AppError(ErrorCode.NOT_FOUND, "no such plan on sale", fields={"plan": "unknown"})
    return plan


@api.route(
    "POST",
    "/api/v1/checkout",
    summary="Buy a plan (optionally with a coupon); requires an Idempotency-Key header",
    tag="payments",
    body=CheckoutBody,
    response=CheckoutView,
    status=201,
    auth="user",
    errors=(400, 401, 404, 409, 422, 503),
)
async def checkout(request: Request, body: CheckoutBody, claims: Claims) -> Answer:
    key = request.headers.get("idempotency-key")
    if key is None or not IDEMPOTENCY_KEY.match(key):
        raise AppError(
            ErrorCode.BAD_REQUEST,
            "an Idempotency-Key header of 8-64 of A-Z a-z 0-9 _ . : - is required",
            fields={"Idempotency-Key": "required" if key is None else "invalid"},
        )
    plan = await active_plan(request, body.plan)
    try:
        answer = await checkout_of(platform_of(request)).start(
            claims.subject, plan, body.coupon, key
        )
    except KeyReused as exc:
        raise AppError(
            ErrorCode.UNPROCESSABLE,
            "this Idempotency-Key was used with a different request",
            fields={"Idempotency-Key": "reused with a different body"},
        ) from exc
    except KeyBusy as exc:
        raise AppError(ErrorCode.CONFLICT, "a request with this key is in progress") from exc
    except CouponRefused as exc:
        raise AppError(
            ErrorCode.COUPON_REFUSED, MESSAGES[exc.reason], fields={"coupon": exc.reason}
        ) from exc
    except ProviderRefused as exc:
        return Answer(exc.answer.body, exc.answer.status)
    except ProviderUnavailable as exc:
        raise AppError(
            ErrorCode.PROVIDER_UNAVAILABLE,
            "the payment provider did not answer; retry with the same Idempotency-Key",
            retry_after=2,
        ) from exc
    headers = {"Idempotent-Replayed": "true"} if answer.replayed else None
    return Answer(answer.body, answer.status, headers)


@api.route(
    "POST",
    "/api/v1/payments/webhooks/{provider}",
    summary="A payment provider's signed event (Stripe-Signature); sandbox or stripe",
    tag="payments",
    response=WebhookAnswer,
    errors=(400, 404, 503),
)
async def webhook(request: Request) -> Answer:
    platform = platform_of(request)
    provider = request.path_params["provider"]
    if provider != platform.payments.name:
        raise AppError(ErrorCode.NOT_FOUND, f"no payment provider {provider[:32]!r} here")
    raw = await request.body()
    try:
        received = await intake_of(platform).receive(provider, raw, request.headers.get(HEADER))
    except WebhookRefused as exc:
        log.warning(
            "webhook refused",
            extra={"provider": provider, "reason": str(exc), "ip": client_ip(request),
                   "bytes": len(raw)},
        )  # fmt: skip
        platform.metrics.payment_webhooks.labels(provider, "refused").inc()
        raise AppError(ErrorCode.BAD_SIGNATURE, f"webhook refused: {exc}") from exc
    except NotPublished as exc:
        raise AppError(ErrorCode.UNAVAILABLE, "stored; not handed on yet: retry") from exc
    platform.metrics.payment_webhooks.labels(provider, received.outcome).inc()
    return Answer({"received": True, "outcome": received.outcome, "event_id": received.event_id})


@api.route(
    "GET",
    "/api/v1/payments/me",
    summary="The caller's payments, newest first, paged by cursor",
    tag="payments",
    response=PaymentPage,
    auth="user",
    errors=(400, 401),
    query={"limit": "page size, 1..100 (default 20)", "cursor": "next_cursor of the last page"},
)
async def my_payments(request: Request, claims: Claims) -> Answer:
    records = records_of(platform_of(request))
    limit, cursor = page_args(request, records.max_page)
    rows, following = await records.mine(claims.subject, limit=limit, cursor=cursor)
    return Answer({"payments": rows, "next_cursor": following})


def page_args(request: Request, max_page: int) -> tuple[int, str | None]:
    """``limit`` and ``cursor`` from the query, 400 when malformed."""
    query = request.query_params
    try:
        limit = int(query.get("limit", "20"))
    except ValueError:
        limit = 0
    if not 1 <= limit <= max_page:
        raise AppError(
            ErrorCode.BAD_REQUEST,
            f"limit must be an integer between 1 and {max_page}",
            fields={"limit": "invalid"},
        )
    cursor = query.get("cursor") or None
    if cursor is not None:
        try:
            decode_cursor(cursor)
        except ValueError as exc:
            raise AppError(
                ErrorCode.BAD_REQUEST, "invalid cursor", fields={"cursor": "invalid"}
            ) from exc
    return limit, cursor


@api.route(
    "GET",
    "/api/v1/payments/me/{payment_id}",
    summary="One of the caller's payments",
    tag="payments",
    response=PaymentView,
    auth="user",
    errors=(401, 404),
)
async def my_payment(request: Request, claims: Claims) -> Answer:
    payment_id = request.path_params["payment_id"]
    row = None
    if PAYMENT_ID.match(payment_id):
        row = await records_of(platform_of(request)).get(payment_id)
    if row is None or row.user_id != claims.subject:
        raise AppError(ErrorCode.NOT_FOUND, "no such payment")
    return Answer(view(row))


@api.route(
    "POST",
    "/api/v1/coupons/validate",
    summary="The price of a plan with a coupon, or why the coupon does not apply",
    tag="payments",
    body=ValidateBody,
    response=Validation,
    auth="user",
    errors=(400, 401, 404),
)
async def validate_coupon(request: Request, body: ValidateBody, claims: Claims) -> Answer:
    plan = await active_plan(request, body.plan)
    charged, reason, _ = await coupons_of(platform_of(request)).validate(
        body.code, claims.subject, plan.id, plan.price_cents, plan.currency
    )
    answer = {
        "valid": reason is None,
        "code": normalize_code(body.code),
        "plan": plan.id,
        "currency": plan.currency,
        "list_amount": plan.price_cents,
        "discount": 0 if charged is None else charged.discount,
        "amount": plan.price_cents if charged is None else charged.amount,
    }
    if reason is not None:
        answer |= {"reason": reason, "message": MESSAGES[reason]}
    return Answer(answer)


@api.route(
    "POST",
    "/sandbox/pay/{payment_id}",
    summary="Development only: the customer's action at the sandbox provider",
    tag="payments",
    body=PayBody,
    response=SandboxPaid,
    errors=(400, 404, 409),
)
async def sandbox_pay(request: Request, body: PayBody) -> Answer:
    sandbox = platform_of(request).payments
    if not isinstance(sandbox, Sandbox):
        raise AppError(ErrorCode.NOT_FOUND, "the sandbox provider is not running here")
    try:
        paid = await sandbox.pay(request.path_params["payment_id"], body.outcome)
    except SandboxError as exc:
        code = ErrorCode.NOT_FOUND if exc.missing else ErrorCode.CONFLICT
        raise AppError(code, str(exc)) from exc
    view = {"payment_id": paid.payment_id, "provider_payment_id": paid.intent_id}
    return Answer({**view, "status": paid.status})
