"""The reliability scenarios of payments, on both backends, over real HTTP: the sandbox
delivers signed webhooks to the REST API and the payments worker applies them.

* the same webhook 10 times in a row and 10 times at once: one credit, one period;
* webhooks out of order (succeeded before pending; a refund before the success):
  the right final state;
* 100 concurrent checkouts with a coupon limited to 1 (overall, then per user):
  exactly one redemption; a failed payment gives it back;
* the worker killed between applying an event and committing its offset, 100 times:
  every payment applied exactly once;
* a tampered body, a wrong secret, a stale or future timestamp: 400, nothing stored.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence

import httpx
import orjson
import pytest

from tests.integration.courses_support import starter
from tests.integration.payments_support import (
    admin,
    checkout,
    count,
    credits,
    eventually,
    http,
    make_coupon,
    payment_row,
    payments_group,
    platform,
    run_group,
    sandbox_of,
    server,
    settled,
    status_is,
    stop,
    subscription,
    user,
    worker,
)
from typogram.db.schema import coupon_redemptions, payment_webhook_events
from typogram.payments.signature import HEADER, sign
from typogram.platform import Platform
from typogram.ports import Event
from typogram.subscriptions.rules import add_period
from workers import payments as payments_worker

pytestmark = pytest.mark.integration
__all__ = ["http", "platform", "server", "starter", "worker"]  # fixtures
WEBHOOK = "/api/v1/payments/webhooks/sandbox"


async def pay(http: httpx.AsyncClient, payment_id: str, outcome: str = "succeeded") -> None:
    response = await http.post(f"/sandbox/pay/{payment_id}", json={"outcome": outcome})
    assert response.status_code == 200, response.text


async def bought(http: httpx.AsyncClient, name: str, **kw: str) -> tuple[str, dict[str, str], str]:
    user_id, auth = await user(http, name)
    response = await checkout(http, auth, **kw)
    assert response.status_code == 201, response.text
    return user_id, auth, response.json()["payment_id"]


def one_month_after(start: int) -> int:
    return add_period(start, "month", 1)


async def test_the_same_webhook_ten_times_in_a_row_and_at_once_credits_once(
    http: httpx.AsyncClient, platform: Platform, starter: None, worker: None
) -> None:
    sandbox = sandbox_of(platform)
    user_id, _, payment_id = await bought(http, "alice")
    sandbox.hold()  # take the success webhook before the sandbox sends it
    await pay(http, payment_id)
    (body,) = [body for kind, body in sandbox.held() if kind == "payment_intent.succeeded"]
    await sandbox.release()

    # Ten at once, racing the sandbox's own delivery: one is stored, the rest are duplicates.
    answers = await asyncio.gather(
        *(http.post(WEBHOOK, content=body, headers=sandbox.signed(body)) for _ in range(10))
    )
    assert {a.status_code for a in answers} == {200}
    outcomes = [a.json()["outcome"] for a in answers]
    assert outcomes.count("accepted") <= 1 and set(outcomes) <= {"accepted", "duplicate"}
    await eventually(lambda: settled(platform, payment_id, "succeeded"))
    for _ in range(10):  # ten more, one after the other
        again = await http.post(WEBHOOK, content=body, headers=sandbox.signed(body))
        assert again.status_code == 200 and again.json()["outcome"] == "duplicate"
    event_id = orjson.loads(body)["id"]
    await sandbox.redeliver(event_id, times=3)  # and the provider's own retries
    await asyncio.sleep(0.5)

    stored = payment_webhook_events.c.event_id == event_id
    assert await count(platform, payment_webhook_events, stored) == 1
    history = await credits(platform, user_id)
    assert [(h.action, h.reference) for h in history] == [("grant", payment_id)]
    sub = await subscription(platform, user_id)
    assert sub.status == "active"
    assert sub.current_period_end == one_month_after(sub.current_period_start)


async def test_success_before_pending_ends_succeeded_and_credited_once(
    http: httpx.AsyncClient, platform: Platform, starter: None, worker: None
) -> None:
    sandbox = sandbox_of(platform)
    sandbox.hold()
    user_id, _, payment_id = await bought(http, "bob")
    await pay(http, payment_id)
    assert sandbox.held_types() == ["payment_intent.created", "payment_intent.succeeded"]
    await sandbox.release(order=[1, 0])  # the success overtakes the creation
    await eventually(lambda: settled(platform, payment_id, "succeeded"))
    await asyncio.sleep(0.3)  # the late "pending" lands after
    row = await payment_row(platform, payment_id)
    assert row.status == "succeeded" and row.credited_at is not None
    assert [h.reference for h in await credits(platform, user_id)] == [payment_id]


async def test_a_refund_that_overtakes_the_success_ends_refunded_with_no_access(
    http: httpx.AsyncClient, platform: Platform, starter: None, worker: None
) -> None:
    sandbox = sandbox_of(platform)
    sandbox.hold()
    user_id, auth, payment_id = await bought(http, "carol")
    await pay(http, payment_id)
    intent = sandbox.payment(payment_id)
    assert intent is not None
    # Refunded at the provider (its dashboard) before any of its webhooks reached us.
    await sandbox.refund(
        payment_id=payment_id, provider_payment_id=intent.intent_id, amount=intent.amount
    )
    assert sandbox.held_types() == [
        "payment_intent.created", "payment_intent.succeeded", "charge.refunded",
    ]  # fmt: skip
    await sandbox.release(order=[2, 1, 0])
    await eventually(lambda: settled(platform, payment_id, "refunded"))
    await asyncio.sleep(0.3)
    row = await payment_row(platform, payment_id)
    assert row.status == "refunded" and row.credited_at is None
    assert await credits(platform, user_id) == []
    me = (await http.get("/api/v1/subscriptions/me", headers=auth)).json()
    assert me == {"subscription": None, "access": False}


async def test_a_refund_after_the_success_revokes_the_period_it_paid(
    http: httpx.AsyncClient, platform: Platform, starter: None, worker: None
) -> None:
    user_id, auth, payment_id = await bought(http, "dave")
    await pay(http, payment_id)
    await eventually(lambda: settled(platform, payment_id, "succeeded"))
    root = await admin(http, platform)
    refunded = await http.post(
        f"/api/v1/admin/payments/{payment_id}/refund", json={"reason": "asked"}, headers=root
    )
    assert refunded.status_code == 202, refunded.text
    await eventually(lambda: settled(platform, payment_id, "refunded"))
    assert [h.action for h in await credits(platform, user_id)] == ["grant", "revoke"]
    me = (await http.get("/api/v1/subscriptions/me", headers=auth)).json()
    assert me["access"] is False and me["subscription"]["status"] == "cancelled"
    again = await http.post(f"/api/v1/admin/payments/{payment_id}/refund", json={}, headers=root)
    assert again.status_code == 409


async def _concurrent_checkouts(
    http: httpx.AsyncClient, auths: Sequence[dict[str, str]], code: str
) -> list[httpx.Response]:
    return list(
        await asyncio.gather(
            *(checkout(http, auths[i % len(auths)], coupon=code) for i in range(100))
        )
    )


async def test_a_hundred_concurrent_checkouts_redeem_a_coupon_limited_to_one_once(
    http: httpx.AsyncClient, platform: Platform, starter: None, worker: None
) -> None:
    root = await admin(http, platform)
    coupon = await make_coupon(http, root, max_redemptions=1, max_per_user=None)
    auths = [(await user(http, f"buyer{i}"))[1] for i in range(10)]
    answers = await _concurrent_checkouts(http, auths, coupon["code"])
    won = [a for a in answers if a.status_code == 201]
    refused = [a for a in answers if a.status_code != 201]
    assert len(won) == 1, [a.text for a in answers[:3]]
    assert {(a.status_code, a.json()["error"]["fields"]["coupon"]) for a in refused} == {
        (422, "exhausted")
    }
    assert won[0].json()["discount"] == 200  # 20 % of 9.99, rounded half up
    assert await count(platform, coupon_redemptions) == 1
    listed = await http.get(f"/api/v1/admin/coupons/{coupon['code']}", headers=root)
    assert listed.json()["redeemed"] == 1

    # The winner's payment fails: the redemption is released and the coupon usable again.
    await pay(http, won[0].json()["payment_id"], "failed")
    await eventually(lambda: settled(platform, won[0].json()["payment_id"], "failed"))
    assert (await http.get(f"/api/v1/admin/coupons/{coupon['code']}", headers=root)).json()[
        "redeemed"
    ] == 0
    again = await checkout(http, auths[3], coupon=coupon["code"])
    assert again.status_code == 201, again.text


async def test_a_hundred_concurrent_checkouts_of_one_user_redeem_once(
    http: httpx.AsyncClient, platform: Platform, starter: None, worker: None
) -> None:
    root = await admin(http, platform)
    coupon = await make_coupon(http, root, max_redemptions=None, max_per_user=1)
    _, auth = await user(http, "eager")
    answers = await _concurrent_checkouts(http, [auth], coupon["code"])
    assert sorted({a.status_code for a in answers}) == [201, 422]
    assert sum(a.status_code == 201 for a in answers) == 1
    assert {a.json()["error"]["fields"]["coupon"] for a in answers if a.status_code == 422} == {
        "already_used"
    }
    assert await count(platform, coupon_redemptions) == 1
    _, other = await user(http, "patient")
    assert (await checkout(http, other, coupon=coupon["code"])).status_code == 201


class Killed(BaseException):
    """The worker process dies: not an error the runtime could catch and retry."""


class Crashed(RuntimeError):
    """The handler fails after applying: the runtime handles the event again, as the
    group's next consumer would after a restart."""


def _kills(exc: BaseException | None) -> int:
    """How many kills stopped the consumer (partitions handled side by side may each
    die in the same moment); 0 if anything else stopped it."""
    if isinstance(exc, BaseExceptionGroup):
        inner = [_kills(e) for e in exc.exceptions]
        return 0 if 0 in inner else sum(inner)
    return int(isinstance(exc, Killed))


@pytest.mark.timeout(300)
async def test_a_worker_killed_between_apply_and_commit_a_hundred_times_applies_once(
    http: httpx.AsyncClient, platform: Platform, starter: None, backend: str
) -> None:
    """Each kill lands after the ledger committed and before the offset did. In process,
    all hundred stop the consumer and a new one replays. On Kafka a consumer joining
    the group takes seconds, so five stop it (the broker replays from the last
    committed offset) and ninety-five fail the handler after it applied (the runtime
    handles the event again), which a restart would do too."""
    killed: set[str] = set()
    hard = 100 if backend == "embedded" else 5

    async def apply_then_die(p: Platform, topic: str, event: Event) -> None:
        await payments_worker.handle(p, topic, event)
        if event.type == "payment.webhook" and event.id not in killed and len(killed) < 100:
            killed.add(event.id)
            if len(killed) <= hard:
                raise Killed(event.id)  # applied and committed in SQL; the offset is not
            raise Crashed(event.id)

    doomed = payments_group(handle=apply_then_die)
    task = await run_group(platform, doomed)
    users = [await user(http, f"payer{i}") for i in range(10)]
    payments: list[tuple[str, str]] = []
    for round_ in range(5):
        for user_id, auth in users:
            answer = await checkout(http, auth, key=f"round-{round_}-{user_id}")
            assert answer.status_code == 201, answer.text
            payments.append((user_id, answer.json()["payment_id"]))
    for _, payment_id in payments:
        await pay(http, payment_id)
    deaths = 0
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        if task.done():
            kills = _kills(task.exception())
            assert kills, task.exception()
            deaths += kills
            task = await run_group(platform, doomed)  # the group's next consumer replays
        done = [await status_is(platform, pid, "succeeded") for _, pid in payments]
        if (
            all(done)
            and len(killed) >= 100
            and all([await settled(platform, pid, "succeeded") for _, pid in payments])
            and not task.done()
        ):
            break
        await asyncio.sleep(0.02)
    await stop(task)
    assert deaths == hard and len(killed) == 100
    for user_id, _ in users:
        mine = [pid for uid, pid in payments if uid == user_id]
        history = await credits(platform, user_id)
        assert sorted(h.reference for h in history) == sorted(mine)  # each exactly once
        assert [h.action for h in history] == ["grant", "renew", "renew", "renew", "renew"]
        end = history[0].period_end  # one month per payment, stacked
        for _ in range(4):
            end = one_month_after(end)
        assert (await subscription(platform, user_id)).current_period_end == end


def _forged(body: bytes, secret: str, at: int) -> dict[str, str]:
    return {HEADER: sign(body, secret, at), "Content-Type": "application/json"}


async def test_tampered_wrongly_signed_stale_or_future_webhooks_are_refused_and_change_nothing(
    http: httpx.AsyncClient, platform: Platform, starter: None, worker: None
) -> None:
    sandbox = sandbox_of(platform)
    sandbox.hold()
    user_id, _, payment_id = await bought(http, "mallory")
    await pay(http, payment_id)
    good = next(body for kind, body in sandbox.held() if kind == "payment_intent.succeeded")
    secret = platform.settings.payments_webhook_secret
    now = int(time.time())
    tampered = good.replace(b'"amount":999', b'"amount":1')
    assert tampered != good
    attacks: list[tuple[bytes, dict[str, str]]] = [
        (good, {"Content-Type": "application/json"}),  # no signature
        (tampered, sandbox.signed(good)),  # signed, then changed
        (good, _forged(good, "whsec_not_the_secret", now)),  # wrong secret
        (good, _forged(good, secret, now - 301)),  # stale
        (good, _forged(good, secret, now + 3600)),  # from the future
        (good, {HEADER: "t=abc,v1=zz"}),  # garbage
        (good, {HEADER: f"t={now},v0={'0' * 64}"}),  # no v1 scheme
        (b"\xff\xfe" + good, _forged(b"\xff\xfe" + good, secret, now)),  # not UTF-8
        (b"[1, 2]", _forged(b"[1, 2]", secret, now)),  # signed, not an event
    ]
    for body, headers in attacks:
        refused = await http.post(WEBHOOK, content=body, headers=headers)
        assert refused.status_code == 400, (body[:40], headers, refused.text)
        assert refused.json()["error"]["code"] in {"bad_signature", "bad_request"}
    elsewhere = await http.post(
        "/api/v1/payments/webhooks/stripe", content=good, headers=sandbox.signed(good)
    )
    assert elsewhere.status_code == 404
    assert await count(platform, payment_webhook_events) == 0
    await asyncio.sleep(0.3)
    row = await payment_row(platform, payment_id)
    assert row.status == "pending" and await credits(platform, user_id) == []

    await sandbox.release()  # the genuine deliveries still go through
    await eventually(lambda: settled(platform, payment_id, "succeeded"))
    assert [h.reference for h in await credits(platform, user_id)] == [payment_id]


async def test_an_event_whose_amount_disagrees_changes_nothing(
    http: httpx.AsyncClient, platform: Platform, starter: None, worker: None
) -> None:
    """A correctly signed event (a provider bug, a leaked secret) that claims another amount."""
    sandbox = sandbox_of(platform)
    user_id, _, payment_id = await bought(http, "trent")
    body = orjson.dumps(
        {
            "id": f"evt_{uuid.uuid4().hex}", "type": "payment_intent.succeeded",
            "created": int(time.time()),
            "data": {"object": {"id": "pi_x", "object": "payment_intent", "amount": 1,
                                "currency": "usd", "metadata": {"payment_id": payment_id}}},
        }
    )  # fmt: skip
    answer = await http.post(WEBHOOK, content=body, headers=sandbox.signed(body))
    assert answer.status_code == 200 and answer.json()["outcome"] == "accepted"
    await asyncio.sleep(0.5)
    row = await payment_row(platform, payment_id)
    assert row.status == "pending" and await credits(platform, user_id) == []
