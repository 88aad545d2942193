"""The Stripe adapter through the ``stripe`` library, against a local server that answers
Stripe's request shapes (Stripe itself cannot be reached from here), and a checkout →
webhook → credit → refund round trip of the platform configured for Stripe."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import orjson
import pytest

from tests.conftest import cheap_passwords, make_settings
from tests.integration.courses_support import starter
from tests.integration.fake_stripe import API_KEY, FakeStripe, running_fake_stripe
from tests.integration.payments_support import (
    admin,
    checkout,
    credits,
    eventually,
    free_port,
    http,
    payments_group,
    run_group,
    server,
    settled,
    stop,
    user,
)
from typogram.payments.provider import ProviderError, ProviderUnavailable
from typogram.payments.signature import HEADER, sign
from typogram.payments.stripe import StripeProvider
from typogram.platform import Platform, open_platform

pytestmark = pytest.mark.integration
__all__ = ["http", "server", "starter"]  # fixtures
SECRET = "whsec_" + "s" * 32


@pytest.fixture
async def fake() -> AsyncIterator[tuple[FakeStripe, str]]:
    async with running_fake_stripe() as running:
        yield running


def adapter(base: str) -> StripeProvider:
    return StripeProvider(
        api_key=API_KEY, api_base=base, success_url="https://t.test/ok",
        cancel_url="https://t.test/no", timeout_s=5,
    )  # fmt: skip


async def test_the_adapter_speaks_stripe(fake: tuple[FakeStripe, str]) -> None:
    stripe_fake, base = fake
    async with adapter(base) as provider:
        made = await provider.create_payment(
            payment_id="p" * 32, amount=799, currency="USD", description="Premium monthly",
            metadata={"user_id": "u1"},
        )  # fmt: skip
        again = await provider.create_payment(
            payment_id="p" * 32, amount=799, currency="USD", description="Premium monthly",
            metadata={"user_id": "u1"},
        )  # fmt: skip
        assert again == made and made.provider_payment_id.startswith("cs_test_")
        assert made.redirect_url.startswith("https://checkout.stripe.test/")
        method, path, form, key = stripe_fake.requests[0]
        assert (method, path, key) == ("POST", "/v1/checkout/sessions", f"checkout-{'p' * 32}")
        assert form["line_items[0][price_data][unit_amount]"] == "799"
        assert form["line_items[0][price_data][currency]"] == "usd"
        assert form["metadata[payment_id]"] == "p" * 32
        assert form["payment_intent_data[metadata][payment_id]"] == "p" * 32
        assert form["mode"] == "payment"

        assert await provider.cancel(provider_payment_id=made.provider_payment_id) is True
        assert await provider.cancel(provider_payment_id=made.provider_payment_id) is True
        paid = await provider.create_payment(
            payment_id="q" * 32, amount=799, currency="USD", description="x", metadata={}
        )
        stripe_fake.complete(paid.provider_payment_id, "pi_test_1")
        assert await provider.cancel(provider_payment_id=paid.provider_payment_id) is False

        refund = await provider.refund(
            payment_id="q" * 32, provider_payment_id="pi_test_1", amount=799
        )
        assert refund.startswith("re_")
        assert stripe_fake.requests[-1][3] == f"refund-{'q' * 32}"
        with pytest.raises(ProviderError):
            await provider.refund(payment_id="r" * 32, provider_payment_id="cs_x", amount=1)
        stripe_fake.fail_next = 3  # more than the library's two network retries
        with pytest.raises(ProviderUnavailable):
            await provider.create_payment(
                payment_id="s" * 32, amount=1, currency="USD", description="x", metadata={}
            )
    async with adapter("http://127.0.0.1:1") as provider:  # nothing listens there
        with pytest.raises(ProviderUnavailable):
            await provider.refund(payment_id="t" * 32, provider_payment_id="pi_1", amount=1)


@pytest.fixture
async def platform(fake: tuple[FakeStripe, str], tmp_path: Path) -> AsyncIterator[Platform]:
    settings = make_settings(
        data_dir=str(tmp_path), http_port=free_port(), payments_provider="stripe",
        payments_stripe_api_key=API_KEY, payments_stripe_api_base=fake[1],
        payments_webhook_secret=SECRET, log_level="WARNING",
    )  # fmt: skip
    async with open_platform(settings, migrate=True, passwords=cheap_passwords()) as opened:
        yield opened


def event(kind: str, obj: dict[str, object]) -> bytes:
    return orjson.dumps(
        {"id": f"evt_{uuid.uuid4().hex}", "object": "event", "type": kind,
         "created": int(time.time()), "data": {"object": obj}}
    )  # fmt: skip


async def test_checkout_webhook_credit_and_refund_on_stripe(
    http: httpx.AsyncClient, platform: Platform, fake: tuple[FakeStripe, str], starter: None
) -> None:
    stripe_fake, _ = fake
    task = await run_group(platform, payments_group())
    try:
        user_id, auth = await user(http, "erin")
        answer = await checkout(http, auth, key="stripe-checkout-1")
        assert answer.status_code == 201, answer.text
        body = answer.json()
        assert body["provider"] == "stripe" and body["redirect_url"].startswith("https://")
        payment_id = body["payment_id"]
        intent = {
            "id": "pi_test_erin", "object": "payment_intent", "amount": 999, "currency": "usd",
            "metadata": {"payment_id": payment_id},
        }  # fmt: skip
        succeeded = event("payment_intent.succeeded", intent)
        headers = {HEADER: sign(succeeded, SECRET, int(time.time()))}
        sandbox_style = await http.post(
            "/api/v1/payments/webhooks/sandbox", content=succeeded, headers=headers
        )
        assert sandbox_style.status_code == 404  # only the configured provider's endpoint
        taken = await http.post(
            "/api/v1/payments/webhooks/stripe", content=succeeded, headers=headers
        )
        assert taken.status_code == 200 and taken.json()["outcome"] == "accepted"
        await eventually(lambda: settled(platform, payment_id, "succeeded"))
        assert [h.reference for h in await credits(platform, user_id)] == [payment_id]

        root = await admin(http, platform)
        refunded = await http.post(
            f"/api/v1/admin/payments/{payment_id}/refund", json={}, headers=root
        )
        assert refunded.status_code == 202, refunded.text
        refund_call = stripe_fake.requests[-1]
        assert refund_call[1] == "/v1/refunds"
        assert refund_call[2]["payment_intent"] == "pi_test_erin"  # learned from the webhook
        charge = {
            "id": "ch_test_erin", "object": "charge", "amount": 999, "amount_refunded": 999,
            "currency": "usd", "payment_intent": "pi_test_erin", "metadata": {},
        }  # fmt: skip
        refund_event = event("charge.refunded", charge)  # no metadata: found by its intent
        done = await http.post(
            "/api/v1/payments/webhooks/stripe",
            content=refund_event,
            headers={HEADER: sign(refund_event, SECRET, int(time.time()))},
        )
        assert done.status_code == 200, done.text
        await eventually(lambda: settled(platform, payment_id, "refunded"))
        assert [h.action for h in await credits(platform, user_id)] == ["grant", "revoke"]
        await asyncio.sleep(0)
    finally:
        await stop(task)
