"""The sandbox provider on its own: signed deliveries over HTTP, retries until answered,
duplicates and held events, idempotent creation and refunds, refusal outside development."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator

import orjson
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.conftest import until
from tests.integration.payments_support import free_port
from typogram.payments.sandbox import Sandbox, SandboxError
from typogram.payments.signature import HEADER, verify
from typogram.settings import SettingsError

SECRET = "whsec_sandbox_test"


class Receiver:
    """A webhook endpoint that fails its first ``failures`` requests."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.bodies: list[bytes] = []
        self.attempts = 0
        self.app = Starlette(routes=[Route("/hook", self.hook, methods=["POST"])])

    async def hook(self, request: Request) -> JSONResponse:
        self.attempts += 1
        body = await request.body()
        now = int(time.time())
        verify(body, request.headers.get(HEADER), SECRET, tolerance_s=300, now_s=now)
        if self.failures:
            self.failures -= 1
            return JSONResponse({"error": "down"}, 503)
        self.bodies.append(body)
        return JSONResponse({"received": True})

    def types(self) -> list[str]:
        return [orjson.loads(b)["type"] for b in self.bodies]


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    got = Receiver()
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(got.app, host="127.0.0.1", port=port, log_config=None, lifespan="off")
    )
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    task = asyncio.create_task(server.serve())
    async with asyncio.timeout(10):
        while not server.started:  # noqa: ASYNC110 - uvicorn offers no event
            await asyncio.sleep(0.01)
    try:
        yield got, f"http://127.0.0.1:{port}/hook"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


def sandbox(url: str, **kw: object) -> Sandbox:
    options: dict[str, object] = {"backoff_s": 0.02, "max_attempts": 5} | kw
    return Sandbox(webhook_url=url, secret=SECRET, environment="test", **options)  # type: ignore[arg-type]


async def test_deliveries_are_signed_retried_and_idempotent(
    receiver: tuple[Receiver, str],
) -> None:
    got, url = receiver
    got.failures = 3  # the platform is down for a moment
    async with sandbox(url) as provider:
        made = await provider.create_payment(
            payment_id="a" * 32, amount=999, currency="USD", description="x", metadata={}
        )
        again = await provider.create_payment(
            payment_id="a" * 32, amount=999, currency="USD", description="x", metadata={}
        )
        assert again == made and made.provider_payment_id.startswith("pi_sbx_")
        await until(lambda: got.types() == ["payment_intent.created"])
        assert got.attempts == 4 and provider.statistics()["failed_attempts"] == 3
        await provider.pay("a" * 32, "requires_action")
        await provider.pay("a" * 32, "succeeded")
        with pytest.raises(SandboxError):
            await provider.pay("a" * 32, "succeeded")
        with pytest.raises(SandboxError) as missing:
            await provider.pay("b" * 32, "succeeded")
        assert missing.value.missing
        refund = await provider.refund(
            payment_id="a" * 32, provider_payment_id=made.provider_payment_id, amount=999
        )
        assert refund == await provider.refund(
            payment_id="a" * 32, provider_payment_id=made.provider_payment_id, amount=999
        )
        assert await provider.cancel(provider_payment_id=made.provider_payment_id) is False
        await until(lambda: len(got.bodies) == 4)
        assert sorted(got.types()) == sorted([
            "payment_intent.created", "payment_intent.requires_action",
            "payment_intent.succeeded", "charge.refunded",
        ])  # fmt: skip
        event = orjson.loads(got.bodies[-1])
        assert event["data"]["object"]["metadata"]["payment_id"] == "a" * 32
        assert event["data"]["object"]["amount"] == 999


async def test_held_events_go_out_in_the_order_asked_and_can_be_sent_again(
    receiver: tuple[Receiver, str],
) -> None:
    got, url = receiver
    async with sandbox(url, concurrency=1) as provider:
        provider.hold()
        await provider.create_payment(
            payment_id="c" * 32, amount=500, currency="EUR", description="x", metadata={}
        )
        await provider.pay("c" * 32, "failed")
        assert provider.held_types() == ["payment_intent.created", "payment_intent.payment_failed"]
        await provider.release(order=[1, 0])
        await until(lambda: len(got.bodies) == 2)
        assert got.types() == ["payment_intent.payment_failed", "payment_intent.created"]
        event_id = orjson.loads(got.bodies[0])["id"]
        await provider.redeliver(event_id, times=2)
        await until(lambda: len(got.bodies) == 4)
        assert [orjson.loads(b)["id"] for b in got.bodies[2:]] == [event_id, event_id]
        assert await provider.cancel(provider_payment_id="pi_unknown") is True


async def test_duplicates_on_demand(receiver: tuple[Receiver, str]) -> None:
    got, url = receiver
    async with sandbox(url, duplicate_pct=100.0, rng=random.Random(1)) as provider:
        await provider.create_payment(
            payment_id="d" * 32, amount=500, currency="EUR", description="x", metadata={}
        )
        await until(lambda: len(got.bodies) >= 3)  # sent, and again, and again…
        assert len({orjson.loads(b)["id"] for b in got.bodies}) == 1


def test_the_sandbox_refuses_to_start_outside_development() -> None:
    with pytest.raises(SettingsError, match="refuses"):
        Sandbox(webhook_url="http://x", secret=SECRET, environment="production")
