"""Fixtures for the payments tests: a platform whose REST API listens on a real port (the
sandbox delivers its webhooks there over HTTP), a client for it, the payments worker,
and helpers (users, admins, coupons, checkouts, counts)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import func, select

from rest.app import create_app
from roles.serve import http_config
from tests.conftest import cheap_passwords, empty_tables
from tests.integration.courses_support import eventually, staff, user
from tests.ports import free_port
from typogram.db.schema import payments, subscription_history, subscriptions
from typogram.payments.sandbox import Sandbox
from typogram.platform import Platform, open_platform
from typogram.settings import Settings
from workers.groups import GROUPS
from workers.runtime import Group, GroupRunner

__all__ = ["eventually", "staff", "user"]
Auth = dict[str, str]


@pytest.fixture
async def platform(backend_settings: Settings) -> AsyncIterator[Platform]:
    """The shared ``platform`` fixture with a port of its own for the REST API."""
    settings = backend_settings.replace(
        http_port=free_port(),
        payments_sandbox_retry_backoff_s=0.05,
        payments_sweep_interval_s=0.5,
        log_level="WARNING",
    )
    async with open_platform(settings, migrate=True, passwords=cheap_passwords()) as opened:
        try:
            yield opened
        finally:
            await empty_tables(opened)


class _Server(uvicorn.Server):
    def install_signal_handlers(self) -> None:  # the test runner owns the signals
        return None


@pytest.fixture
async def server(platform: Platform) -> AsyncIterator[str]:
    """The REST API on the platform's HTTP port, over real HTTP."""
    settings = platform.settings
    config = http_config(create_app(platform), "127.0.0.1", settings.http_port)
    running = _Server(config)
    task = asyncio.create_task(running.serve())
    try:
        async with asyncio.timeout(10):
            while not running.started:  # noqa: ASYNC110 - uvicorn offers no event
                await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{settings.http_port}"
    finally:
        running.should_exit = True
        await asyncio.wait_for(task, 10)


@pytest.fixture
async def http(server: str) -> AsyncIterator[httpx.AsyncClient]:
    limits = httpx.Limits(max_connections=200)
    async with httpx.AsyncClient(base_url=server, timeout=30, limits=limits) as client:
        yield client


def payments_group(**changes: Any) -> Group:
    """The payments group under a name of its own (each test reads the topic afresh)."""
    return replace(GROUPS["payments"], name=f"payments-{uuid.uuid4().hex[:8]}", **changes)


async def run_group(platform: Platform, group: Group) -> asyncio.Task[None]:
    task = asyncio.create_task(GroupRunner(platform, group).run())
    await asyncio.sleep(0.1)  # the in-process log registers a group on its first consume
    return task


async def stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


@pytest.fixture
async def worker(platform: Platform) -> AsyncIterator[None]:
    task = await run_group(platform, payments_group())
    try:
        yield
    finally:
        await stop(task)


def sandbox_of(platform: Platform) -> Sandbox:
    assert isinstance(platform.payments, Sandbox)
    return platform.payments


async def admin(http: httpx.AsyncClient, platform: Platform, name: str = "root") -> Auth:
    return await staff(http, platform, name, "admin")


async def make_coupon(http: httpx.AsyncClient, auth: Auth, **fields: Any) -> dict[str, Any]:
    body = {"code": f"C{uuid.uuid4().hex[:10].upper()}", "kind": "percent", "percent_off": 20}
    response = await http.post("/api/v1/admin/coupons", json=body | fields, headers=auth)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def checkout(
    http: httpx.AsyncClient, auth: Auth, plan: str = "monthly", coupon: str | None = None,
    key: str | None = None,
) -> httpx.Response:  # fmt: skip
    body: dict[str, Any] = {"plan": plan} if coupon is None else {"plan": plan, "coupon": coupon}
    headers = {**auth, "Idempotency-Key": key or uuid.uuid4().hex}
    return await http.post("/api/v1/checkout", json=body, headers=headers)


async def payment_row(platform: Platform, payment_id: str) -> Any:
    async with platform.db.read(primary=True) as conn:
        return (await conn.execute(select(payments).where(payments.c.id == payment_id))).first()


async def status_is(platform: Platform, payment_id: str, *wanted: str) -> bool | None:
    row = await payment_row(platform, payment_id)
    return True if row is not None and row.status in wanted else None


async def settled(platform: Platform, payment_id: str, status: str) -> bool | None:
    """The payment has ``status`` and every follow-up ran (announced last)."""
    row = await payment_row(platform, payment_id)
    return True if row is not None and row.announced == status else None


async def credits(platform: Platform, user_id: str) -> list[Any]:
    """The subscription history rows made by payments for the user."""
    h = subscription_history.c
    async with platform.db.read(primary=True) as conn:
        return list(
            await conn.execute(
                select(subscription_history)
                .where(h.user_id == user_id, h.actor == "payments")
                .order_by(h.id)
            )
        )


async def subscription(platform: Platform, user_id: str) -> Any:
    async with platform.db.read(primary=True) as conn:
        return (
            await conn.execute(select(subscriptions).where(subscriptions.c.user_id == user_id))
        ).first()


async def count(platform: Platform, table: Any, *where: Any) -> int:
    async with platform.db.read(primary=True) as conn:
        return int(await conn.scalar(select(func.count()).select_from(table).where(*where)) or 0)
