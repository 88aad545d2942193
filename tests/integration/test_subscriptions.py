"""Plans, subscriptions and premium gating (with, without, and right after expiry), on
both backends; the service's idempotency, events and cache."""

from __future__ import annotations

import asyncio
import time
import uuid

import httpx
import pytest
from sqlalchemy import update

from tests.integration.courses_support import client, eventually, staff, starter, user
from typogram import cache_aside, keys, topics
from typogram.courses.services import subscriptions_of
from typogram.db.schema import subscriptions
from typogram.platform import Platform
from typogram.ports import Event
from typogram.subscriptions.rules import SubscriptionError
from workers.courses import expire_and_prune

pytestmark = pytest.mark.integration
__all__ = ["client", "starter"]  # fixtures

PREMIUM = "speed-building"


def code(response: httpx.Response) -> str:
    return str(response.json()["error"]["code"])


async def test_plans_and_my_subscription(client: httpx.AsyncClient, starter: None) -> None:
    plans = (await client.get("/api/v1/plans")).json()["plans"]
    assert [p["id"] for p in plans] == ["monthly", "yearly"]
    assert plans[0] | {"description": ""} == {
        "id": "monthly", "name": "Premium monthly", "description": "", "price_cents": 999,
        "currency": "USD", "interval": "month", "interval_count": 1,
    }  # fmt: skip
    _, auth = await user(client, "alice")
    assert (await client.get("/api/v1/subscriptions/me", headers=auth)).json() == {
        "subscription": None,
        "access": False,
    }
    assert (await client.get("/api/v1/subscriptions/me")).status_code == 401
    nothing = await client.post("/api/v1/subscriptions/me/cancel", headers=auth)
    assert nothing.status_code == 409


async def test_premium_gating_with_without_and_right_after_expiry(
    client: httpx.AsyncClient, platform: Platform, starter: None
) -> None:
    alice_id, alice = await user(client, "alice")
    lesson = f"/api/v1/courses/{PREMIUM}/lessons/1/test"
    detail = (await client.get(f"/api/v1/courses/{PREMIUM}", headers=alice)).json()
    assert detail["premium"] is True and detail["access"] is False
    refused = await client.post(f"/api/v1/courses/{PREMIUM}/enroll", headers=alice)
    assert refused.status_code == 402 and code(refused) == "subscription_required"
    assert code(await client.get(lesson, headers=alice)) == "subscription_required"
    free = await client.post("/api/v1/courses/home-row-basics/enroll", headers=alice)
    assert free.status_code == 201 and free.json()["enrollment"]["expires_at"] is None

    subs = subscriptions_of(platform)
    granted = await subs.apply_payment(alice_id, "monthly", reference="pay_1")
    assert granted.action == "grant" and granted.applied
    enrolled = await client.post(f"/api/v1/courses/{PREMIUM}/enroll", headers=alice)
    assert enrolled.status_code == 201
    assert enrolled.json()["enrollment"]["expires_at"] == granted.subscription.period_end
    assert (await client.get(lesson, headers=alice)).status_code == 200
    me = (await client.get("/api/v1/subscriptions/me", headers=alice)).json()
    assert me["access"] is True and me["subscription"]["status"] == "active"
    assert me["subscription"]["plan"]["id"] == "monthly"

    # The period ends in a moment; the cached subscription still says "active".
    soon = int(time.time() * 1000) + 1500
    async with platform.db.write() as conn:
        await conn.execute(
            update(subscriptions)
            .where(subscriptions.c.user_id == alice_id)
            .values(current_period_end=soon)
        )
    await cache_aside.invalidate(
        platform.cache,
        keys.user_subscription_version(alice_id),
        keys.user_subscription(alice_id),
        ttl=900,
    )
    assert (await client.get(lesson, headers=alice)).status_code == 200  # cache warmed
    assert await platform.cache.get(keys.user_subscription(alice_id)) is not None
    await asyncio.sleep(max(0.0, (soon - time.time() * 1000) / 1000) + 0.05)
    gone = await client.get(lesson, headers=alice)  # before any expiry job ran
    assert gone.status_code == 402 and code(gone) == "subscription_required"
    mine = (await client.get("/api/v1/enrollments/me", headers=alice)).json()["courses"]
    assert {c["course"]["slug"]: c["access"] for c in mine} == {
        PREMIUM: False,
        "home-row-basics": True,
    }
    expired = await subs.expire_due()
    assert [c.subscription.status for c in expired] == ["expired"]
    assert await subs.expire_due() == []  # idempotent
    assert (await client.get(lesson, headers=alice)).status_code == 402
    assert (
        await client.get("/api/v1/courses/home-row-basics/lessons/1/test", headers=alice)
    ).status_code == 200

    # A new payment grants again from now; a staff revoke ends it at once.
    renewed = await subs.apply_payment(alice_id, "yearly", reference="pay_2")
    assert renewed.action == "grant" and renewed.subscription.status == "active"
    assert (await client.get(lesson, headers=alice)).status_code == 200
    await subs.revoke(alice_id, actor="staff")
    assert code(await client.get(lesson, headers=alice)) == "subscription_required"


async def test_service_is_idempotent_and_publishes(platform: Platform, starter: None) -> None:
    received: list[Event] = []

    async def record(topic: str, raw: bytes) -> None:
        received.append(Event.decode(raw))

    group = f"test-{uuid.uuid4().hex[:8]}"
    consumer = asyncio.create_task(platform.events.consume(group, [topics.PAYMENT_EVENTS], record))
    await asyncio.sleep(0.05)
    try:
        subs = subscriptions_of(platform)
        user_id = uuid.uuid4().hex
        first = await subs.apply_payment(user_id, "monthly", reference="pay_a")
        replay = await subs.apply_payment(user_id, "monthly", reference="pay_a")
        assert first.applied and not replay.applied
        assert replay.subscription == first.subscription
        renewed = await subs.apply_payment(user_id, "monthly", reference="pay_b")
        assert renewed.action == "renew"
        assert renewed.subscription.period_start == first.subscription.period_end
        with pytest.raises(SubscriptionError):
            await subs.apply_payment(uuid.uuid4().hex, "monthly", reference="pay_b")
        with pytest.raises(SubscriptionError):
            await subs.apply_payment(user_id, "no-such-plan", reference="pay_c")
        # Concurrent deliveries of one payment: applied once.
        twice = await asyncio.gather(
            *(subs.apply_payment(user_id, "monthly", reference="pay_d") for _ in range(3))
        )
        assert sum(change.applied for change in twice) == 1
        cancelled = await subs.cancel(user_id, actor=user_id)
        assert cancelled.subscription.cancel_at_period_end
        with pytest.raises(SubscriptionError):
            await subs.cancel(user_id)
        await subs.resume(user_id)
        await subs.mark_past_due(user_id, reference="fail_1")
        assert await subs.has_access(user_id)  # past due: in its grace period

        async def all_published() -> list[str] | None:
            types = [e.type for e in received if e.key == user_id]
            return types if len(types) >= 6 else None

        types = await eventually(all_published)
        assert types == [
            "subscription.granted", "subscription.renewed", "subscription.renewed",
            "subscription.cancelled", "subscription.resumed", "subscription.past_due",
        ]  # fmt: skip
        granted = next(e for e in received if e.key == user_id)
        assert granted.data["user_id"] == user_id and granted.data["reference"] == "pay_a"
    finally:
        consumer.cancel()
        await asyncio.gather(consumer, return_exceptions=True)


async def test_users_cancel_and_resume_staff_grant_and_revoke(
    client: httpx.AsyncClient, platform: Platform, starter: None
) -> None:
    alice_id, alice = await user(client, "alice")
    admin = await staff(client, platform, "ada", "admin")
    editor = await staff(client, platform, "edna", "editor")
    body = {"username": "alice", "plan": "monthly", "reference": "req-1"}
    assert (
        await client.post("/api/v1/admin/subscriptions", json=body, headers=alice)
    ).status_code == 403
    assert (
        await client.post("/api/v1/admin/subscriptions", json=body, headers=editor)
    ).status_code == 403
    granted = await client.post("/api/v1/admin/subscriptions", json=body, headers=admin)
    assert granted.status_code == 200 and granted.json()["applied"] is True
    again = await client.post("/api/v1/admin/subscriptions", json=body, headers=admin)
    assert again.json()["applied"] is False
    unknown = await client.post(
        "/api/v1/admin/subscriptions", json={**body, "username": "nobody"}, headers=admin
    )
    assert unknown.status_code == 404
    no_plan = await client.post(
        "/api/v1/admin/subscriptions",
        json={**body, "plan": "gold", "reference": "r2"},
        headers=admin,
    )
    assert no_plan.status_code == 409
    cancelled = await client.post("/api/v1/subscriptions/me/cancel", headers=alice)
    assert cancelled.status_code == 200
    sub = cancelled.json()["subscription"]
    assert sub["cancel_at_period_end"] is True and cancelled.json()["access"] is True
    assert (await client.post("/api/v1/subscriptions/me/cancel", headers=alice)).status_code == 409
    resumed = await client.post("/api/v1/subscriptions/me/resume", headers=alice)
    assert resumed.json()["subscription"]["cancel_at_period_end"] is False
    assert (await client.post("/api/v1/subscriptions/me/resume", headers=alice)).status_code == 409
    revoked = await client.post(
        "/api/v1/admin/subscriptions/revoke", json={"username": "alice"}, headers=admin
    )
    assert revoked.status_code == 200
    assert revoked.json()["subscription"]["status"] == "cancelled"
    me = (await client.get("/api/v1/subscriptions/me", headers=alice)).json()
    assert me["access"] is False
    entries = await platform.accounts.audit_entries(
        (await platform.accounts.get_by_username("ada")).id  # type: ignore[union-attr]
    )
    assert {"subscription.grant", "subscription.revoke"} <= {e["action"] for e in entries}
    assert alice_id


async def test_the_schedule_expires_and_cancels(platform: Platform, starter: None) -> None:
    subs = subscriptions_of(platform)
    ending, lapsing, running = (uuid.uuid4().hex for _ in range(3))
    for user_id in (ending, lapsing, running):
        await subs.apply_payment(user_id, "monthly", reference=f"p-{user_id}")
    await subs.cancel(ending)
    past = int(time.time() * 1000) - 1000
    async with platform.db.write() as conn:
        await conn.execute(
            update(subscriptions)
            .where(subscriptions.c.user_id.in_([ending, lapsing]))
            .values(current_period_end=past)
        )
    assert await expire_and_prune(platform) == 2
    assert (await subs.current(ending)).status == "cancelled"  # type: ignore[union-attr]
    assert (await subs.current(lapsing)).status == "expired"  # type: ignore[union-attr]
    assert (await subs.current(running)).status == "active"  # type: ignore[union-attr]
    assert await expire_and_prune(platform) == 0
