"""Payments and coupons through the REST API on both backends: checkout idempotency, coupon
validation and its cache, the caller's payments and their cache, staff views and the rules
of who may do what."""

from __future__ import annotations

import asyncio
import time
import uuid

import httpx
import pytest
from sqlalchemy import update

from tests.integration.courses_support import starter
from tests.integration.payments_support import (
    admin,
    checkout,
    credits,
    eventually,
    http,
    make_coupon,
    payment_row,
    platform,
    server,
    settled,
    staff,
    user,
    worker,
)
from typogram import keys, topics
from typogram.db.schema import payment_webhook_events, payments
from typogram.payments.ledger import announcement_id
from typogram.payments.services import intake_of, ledger_of
from typogram.platform import Platform
from typogram.ports import Event

pytestmark = pytest.mark.integration
__all__ = ["http", "platform", "server", "starter", "worker"]  # fixtures


def error(response: httpx.Response) -> dict[str, object]:
    return dict(response.json()["error"])


async def test_checkout_needs_a_key_and_replays_the_same_request(
    http: httpx.AsyncClient, platform: Platform, starter: None
) -> None:
    _, auth = await user(http, "alice")
    missing = await http.post("/api/v1/checkout", json={"plan": "monthly"}, headers=auth)
    assert missing.status_code == 400 and error(missing)["fields"] == {
        "Idempotency-Key": "required"
    }
    short = await checkout(http, auth, key="abc")
    assert short.status_code == 400
    assert (await checkout(http, {}, key="k" * 16)).status_code == 401
    assert (await checkout(http, auth, plan="no-such-plan")).status_code == 404
    first = await checkout(http, auth, key="order-0001")
    assert first.status_code == 201
    body = first.json()
    assert body["status"] == "pending" and body["provider"] == "sandbox"
    assert (body["amount"], body["currency"], body["discount"]) == (999, "USD", 0)
    assert body["redirect_url"] == f"/#/sandbox-pay?payment={body['payment_id']}"
    again = await checkout(http, auth, key="order-0001")
    assert again.status_code == 201 and again.json() == body
    assert again.headers["Idempotent-Replayed"] == "true"
    other = await checkout(http, auth, plan="yearly", key="order-0001")
    assert other.status_code == 422 and "Idempotency-Key" in error(other)["fields"]  # type: ignore[operator]
    # Another user's identical key is theirs alone.
    _, bob = await user(http, "bob")
    theirs = await checkout(http, bob, key="order-0001")
    assert theirs.status_code == 201 and theirs.json()["payment_id"] != body["payment_id"]
    mine = (await http.get("/api/v1/payments/me", headers=auth)).json()
    assert [p["id"] for p in mine["payments"]] == [body["payment_id"]]


async def test_coupon_validation_reasons_and_the_discounted_price(
    http: httpx.AsyncClient, platform: Platform, starter: None
) -> None:
    root = await admin(http, platform)
    _, auth = await user(http, "carol")
    now = int(time.time() * 1000)
    fixed = await make_coupon(
        http, root, code="FIVEOFF", kind="fixed", percent_off=None, amount_off=500,
        currency="USD", plans=["monthly"],
    )  # fmt: skip
    assert fixed["plans"] == ["monthly"] and fixed["redeemed"] == 0

    async def validate(code: str, plan: str = "monthly") -> dict[str, object]:
        answer = await http.post(
            "/api/v1/coupons/validate", json={"code": code, "plan": plan}, headers=auth
        )
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    ok = await validate("fiveoff")  # codes ignore case
    assert ok["valid"] is True and (ok["list_amount"], ok["discount"], ok["amount"]) == (
        999, 500, 499,
    )  # fmt: skip
    assert (await validate("FIVEOFF", "yearly"))["reason"] == "not_applicable"
    assert (await validate("NOPE-NOPE"))["reason"] == "not_found"
    await make_coupon(http, root, code="OLDONE", valid_until=now - 1)
    assert (await validate("OLDONE"))["reason"] == "expired"
    await make_coupon(http, root, code="SOON", valid_from=now + 3_600_000)
    assert (await validate("SOON"))["reason"] == "not_started"
    await make_coupon(http, root, code="ONCEONLY", max_redemptions=1, max_per_user=None)
    await make_coupon(http, root, code="MINE", max_per_user=1)
    assert (await checkout(http, auth, coupon="MINE")).status_code == 201
    assert (await validate("MINE"))["reason"] == "already_used"
    _, dave = await user(http, "dave")
    assert (await checkout(http, dave, coupon="ONCEONLY")).status_code == 201
    assert (await validate("ONCEONLY"))["reason"] == "exhausted"
    refused = await checkout(http, auth, coupon="ONCEONLY")
    assert refused.status_code == 422 and error(refused)["code"] == "coupon_refused"
    assert error(refused)["fields"] == {"coupon": "exhausted"}
    # Cached while active, and stale the moment staff change it.
    assert await platform.cache.get(keys.coupon("FIVEOFF")) is not None
    patched = await http.patch(
        "/api/v1/admin/coupons/FIVEOFF", json={"active": False}, headers=root
    )
    assert patched.status_code == 200 and patched.json()["active"] is False
    assert (await validate("FIVEOFF"))["reason"] == "not_found"
    await http.patch("/api/v1/admin/coupons/FIVEOFF", json={"active": True}, headers=root)
    assert (await validate("FIVEOFF"))["valid"] is True
    deleted = await http.delete("/api/v1/admin/coupons/FIVEOFF", headers=root)
    assert deleted.status_code == 200 and deleted.json()["active"] is False
    assert (await validate("FIVEOFF"))["reason"] == "not_found"


async def test_coupon_administration_is_for_admins_and_validated(
    http: httpx.AsyncClient, platform: Platform, starter: None
) -> None:
    root = await admin(http, platform)
    editor = await staff(http, platform, "eddie", "editor")
    moderator = await staff(http, platform, "molly", "moderator")
    body = {"code": "SPRING", "kind": "percent", "percent_off": 10}
    assert (await http.post("/api/v1/admin/coupons", json=body, headers=editor)).status_code == 403
    assert (await http.get("/api/v1/admin/coupons", headers=moderator)).status_code == 403
    bad = [
        {"code": "SPRING", "kind": "percent", "percent_off": 0},
        {"code": "SPRING", "kind": "percent", "percent_off": 10, "amount_off": 5},
        {"code": "SPRING", "kind": "fixed", "amount_off": 100},  # no currency
        {"code": "SPRING", "kind": "fixed", "amount_off": 100, "currency": "usd"},
        {"code": "no spaces", "kind": "percent", "percent_off": 10},
        {"code": "SPRING", "kind": "percent", "percent_off": 10, "valid_from": 5, "valid_until": 5},
        {"code": "SPRING", "kind": "percent", "percent_off": 10.5},
        {"code": "SPRING", "kind": "percent", "percent_off": 10, "max_per_user": 0},
    ]
    for payload in bad:
        refused = await http.post("/api/v1/admin/coupons", json=payload, headers=root)
        assert refused.status_code == 400, (payload, refused.text)
    created = await http.post("/api/v1/admin/coupons", json=body, headers=root)
    assert created.status_code == 201
    twice = await http.post("/api/v1/admin/coupons", json=body | {"code": "spring"}, headers=root)
    assert twice.status_code == 409
    listed = (await http.get("/api/v1/admin/coupons", headers=root)).json()["coupons"]
    assert [c["code"] for c in listed] == ["SPRING"]
    assert (
        await http.patch("/api/v1/admin/coupons/NONE", json={}, headers=root)
    ).status_code == 404
    wrong = await http.patch("/api/v1/admin/coupons/SPRING", json={"kind": "fixed"}, headers=root)
    assert wrong.status_code == 400
    audit = await platform.accounts.audit_entries(
        (await platform.accounts.get_by_username("root")).id  # type: ignore[union-attr]
    )
    assert "coupon.create" in {entry["action"] for entry in audit}


async def test_my_payments_page_and_cache_follow_changes(
    http: httpx.AsyncClient, platform: Platform, starter: None, worker: None
) -> None:
    user_id, auth = await user(http, "erin")
    made = []
    for i in range(5):
        answer = await checkout(http, auth, key=f"erin-{i:04d}")
        made.append(answer.json()["payment_id"])
    first = (await http.get("/api/v1/payments/me?limit=2", headers=auth)).json()
    assert [p["id"] for p in first["payments"]] == made[::-1][:2]
    second = (
        await http.get(f"/api/v1/payments/me?limit=2&cursor={first['next_cursor']}", headers=auth)
    ).json()
    assert [p["id"] for p in second["payments"]] == made[::-1][2:4]
    assert await platform.cache.get(keys.user_recent_payments(user_id)) is not None
    for bad in ("limit=0", "limit=1000", "cursor=%%%", "limit=x"):
        assert (await http.get(f"/api/v1/payments/me?{bad}", headers=auth)).status_code == 400
    # Paying changes the cached page at once.
    paid = await http.post(f"/sandbox/pay/{made[-1]}", json={"outcome": "succeeded"})
    assert paid.status_code == 200
    await eventually(lambda: settled(platform, made[-1], "succeeded"))
    newest = (await http.get("/api/v1/payments/me?limit=1", headers=auth)).json()["payments"][0]
    assert newest["status"] == "succeeded" and newest["credited"] is True
    assert newest["redirect_url"] == ""
    one = await http.get(f"/api/v1/payments/me/{made[-1]}", headers=auth)
    assert one.status_code == 200 and one.json()["status"] == "succeeded"
    _, frank = await user(http, "frank")
    assert (await http.get(f"/api/v1/payments/me/{made[-1]}", headers=frank)).status_code == 404
    twice = await http.post(f"/sandbox/pay/{made[-1]}", json={"outcome": "failed"})
    assert twice.status_code == 409
    assert (
        await http.post(f"/sandbox/pay/{uuid.uuid4().hex}", json={"outcome": "failed"})
    ).status_code == 404
    assert (
        await http.post(f"/sandbox/pay/{made[0]}", json={"outcome": "maybe"})
    ).status_code == 400


async def test_staff_list_payments_and_only_admins_refund(
    http: httpx.AsyncClient, platform: Platform, starter: None, worker: None
) -> None:
    _, auth = await user(http, "gina")
    paid = (await checkout(http, auth)).json()["payment_id"]
    pending = (await checkout(http, auth)).json()["payment_id"]
    await http.post(f"/sandbox/pay/{paid}", json={"outcome": "succeeded"})
    await eventually(lambda: settled(platform, paid, "succeeded"))
    moderator = await staff(http, platform, "mod", "moderator")
    root = await admin(http, platform)
    listed = await http.get("/api/v1/admin/payments?status=succeeded", headers=moderator)
    assert listed.status_code == 200
    assert [p["id"] for p in listed.json()["payments"]] == [paid]
    by_user = await http.get("/api/v1/admin/payments?user=gina", headers=root)
    assert {p["id"] for p in by_user.json()["payments"]} == {paid, pending}
    assert (await http.get("/api/v1/admin/payments", headers=auth)).status_code == 403
    assert (await http.get("/api/v1/admin/payments?status=x", headers=root)).status_code == 400
    assert (await http.get("/api/v1/admin/payments?user=nobody", headers=root)).status_code == 404
    url = f"/api/v1/admin/payments/{paid}/refund"
    assert (await http.post(url, json={}, headers=moderator)).status_code == 403
    assert (
        await http.post(f"/api/v1/admin/payments/{pending}/refund", json={}, headers=root)
    ).status_code == 409
    assert (
        await http.post(f"/api/v1/admin/payments/{uuid.uuid4().hex}/refund", json={}, headers=root)
    ).status_code == 404
    refunded = await http.post(url, json={"reason": "duplicate purchase"}, headers=root)
    assert refunded.status_code == 202 and refunded.json()["refund_id"].startswith("re_sbx_")
    await eventually(lambda: settled(platform, paid, "refunded"))
    root_id = (await platform.accounts.get_by_username("root")).id  # type: ignore[union-attr]
    actions = {entry["action"] for entry in await platform.accounts.audit_entries(root_id)}
    assert "payment.refund" in actions


async def test_receipts_are_announced_once_with_what_a_receipt_needs(
    http: httpx.AsyncClient, platform: Platform, starter: None, worker: None
) -> None:
    received: list[Event] = []

    async def record(topic: str, raw: bytes) -> None:
        event = Event.decode(raw)
        if event.type.startswith("payment.") and event.type != "payment.webhook":
            received.append(event)

    group = f"receipts-{uuid.uuid4().hex[:8]}"
    consumer = asyncio.create_task(platform.events.consume(group, [topics.PAYMENT_EVENTS], record))
    await asyncio.sleep(0.1)
    try:
        user_id, auth = await user(http, "hank")
        paid = (await checkout(http, auth)).json()["payment_id"]
        declined = (await checkout(http, auth)).json()["payment_id"]
        await http.post(f"/sandbox/pay/{paid}", json={"outcome": "succeeded"})
        await http.post(f"/sandbox/pay/{declined}", json={"outcome": "failed"})
        await eventually(lambda: settled(platform, paid, "succeeded"))
        await eventually(lambda: settled(platform, declined, "failed"))
        # A replay of the worker's follow-ups announces nothing new.
        assert await ledger_of(platform).settle(paid) == "succeeded"

        def mine() -> list[Event]:  # the session's topic holds earlier tests' events too
            return [e for e in received if e.key == user_id]

        async def both() -> bool | None:
            return True if len({e.id for e in mine()}) >= 2 else None

        await eventually(both)
        await asyncio.sleep(0.3)
    finally:
        consumer.cancel()
        await asyncio.gather(consumer, return_exceptions=True)
    by_type = {e.type: e for e in mine()}
    assert sorted(by_type) == ["payment.failed", "payment.succeeded"]
    assert len({e.id for e in mine()}) == 2  # each announced once (or the same id again)
    receipt = by_type["payment.succeeded"]
    assert receipt.key == user_id and receipt.id == announcement_id(paid, "succeeded")
    data = receipt.data
    assert (data["id"], data["user_id"], data["plan_id"], data["plan_name"]) == (
        paid, user_id, "monthly", "Premium monthly",
    )  # fmt: skip
    assert (data["amount"], data["list_amount"], data["discount"], data["currency"]) == (
        999, 999, 0, "USD",
    )  # fmt: skip
    assert data["credited"] is True and data["succeeded_at"] is not None
    assert by_type["payment.failed"].data["failure_reason"] == "payment_intent.payment_failed"


async def test_the_sweep_publishes_the_outbox_and_fails_abandoned_checkouts(
    http: httpx.AsyncClient, platform: Platform, starter: None, worker: None
) -> None:
    root = await admin(http, platform)
    coupon = await make_coupon(http, root, max_redemptions=1, max_per_user=None)
    _, auth = await user(http, "ivan")
    answer = (await checkout(http, auth, coupon=coupon["code"])).json()
    payment_id = answer["payment_id"]
    # The provider's answer never arrived (the REST process died before storing it).
    p = payments.c
    async with platform.db.write() as conn:
        await conn.execute(
            update(payments).where(p.id == payment_id).values(provider_payment_id=None)
        )
    assert await ledger_of(platform).abandon_stale(3600) == 0  # not old enough
    assert await ledger_of(platform).abandon_stale(0) == 1
    await eventually(lambda: settled(platform, payment_id, "failed"))
    row = await payment_row(platform, payment_id)
    assert row.failure_reason == "abandoned"
    listed = await http.get(f"/api/v1/admin/coupons/{coupon['code']}", headers=root)
    assert listed.json()["redeemed"] == 0  # released

    # A stored webhook left unpublished (a crash between storing and publishing).
    _, other = await user(http, "judy")
    second = (await checkout(http, other)).json()["payment_id"]
    await http.post(f"/sandbox/pay/{second}", json={"outcome": "succeeded"})
    await eventually(lambda: settled(platform, second, "succeeded"))
    w = payment_webhook_events.c
    async with platform.db.write() as conn:
        await conn.execute(
            update(payment_webhook_events)
            .where(w.payment_id == second)
            .values(published_at=None, received_at=0)
        )
    assert await intake_of(platform).publish_pending(1.0) == 2  # created and succeeded
    assert await intake_of(platform).publish_pending(1.0) == 0
    await asyncio.sleep(0.3)
    judy = (await payment_row(platform, second)).user_id
    assert [h.reference for h in await credits(platform, judy)] == [second]  # credited once
