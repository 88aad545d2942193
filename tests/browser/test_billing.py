"""Buying premium in the web client: plans → checkout with a coupon (the discounted price)
→ the sandbox's pay step → the subscription and the payment on the profile → a premium
course opens. A declined payment says so and changes nothing."""

from __future__ import annotations

import sqlite3
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import Pages, shoot, sign_up
from tests.browser.test_web import unique

pytestmark = pytest.mark.browser


def add_coupon(data_dir: Path, code: str, percent: int) -> None:
    """Staff would use the admin API; the browser server's database is written directly."""
    now = int(time.time() * 1000)
    with sqlite3.connect(data_dir / "typogram.sqlite3", timeout=10) as db:
        db.execute(
            "INSERT INTO coupons (id, code, kind, percent_off, plans, active, redeemed_count,"
            " max_per_user, created_at, updated_at) VALUES (?, ?, 'percent', ?, '', 1, 0, 1, ?, ?)",
            (uuid.uuid4().hex, code, percent, now, now),
        )


async def choose_monthly(page: Any) -> None:
    await page.click("nav a[href='#/plans']")
    await page.wait_for_selector("#plans .plan[data-plan=monthly]")
    await page.click("#plans .plan[data-plan=monthly] a.button")
    await page.wait_for_selector("#checkout #total")


async def test_buy_premium_with_a_coupon(pages: Pages) -> None:
    code = f"WEB{uuid.uuid4().hex[:6].upper()}"
    add_coupon(pages.server.log.parent, code, 20)
    page = await pages.open()
    await sign_up(page, unique("buyer"))
    await choose_monthly(page)
    assert "9.99" in await page.inner_text("#total")
    await page.fill("#coupon", "NOT-A-COUPON")
    await page.click("#coupon-apply")
    await page.wait_for_selector("#coupon-result:has-text('no such coupon')")
    await page.fill("#coupon", code.lower())
    await page.click("#coupon-apply")
    await page.wait_for_selector("#total:has-text('7.99')")
    assert "2.00" in await page.inner_text("#discount")
    await shoot(page, "checkout")
    await page.click("#checkout-pay")
    await page.wait_for_selector("#sandbox-pay")
    await page.wait_for_selector("#sandbox-amount:has-text('7.99')")
    await page.click("#sandbox-pay button[data-outcome=succeeded]")
    await page.wait_for_selector("#payment-state[data-status=succeeded]", timeout=15_000)
    await shoot(page, "sandbox-paid")

    await page.click("nav a[href='#/profile']")
    await page.wait_for_selector("#my-payments tr[data-status=succeeded]")
    assert "active" in await page.inner_text("#subscription-status")
    assert code in await page.inner_text("#my-payments")
    await shoot(page, "profile-billing")
    await page.goto("/#/course?slug=speed-building")
    await page.wait_for_selector("#course-title")
    assert await page.locator("#needs-subscription").count() == 0


async def test_a_declined_payment(pages: Pages) -> None:
    page = await pages.open()
    await sign_up(page, unique("declined"))
    await choose_monthly(page)
    await page.click("#checkout-pay")
    await page.wait_for_selector("#sandbox-pay")
    await page.click("#sandbox-pay button[data-outcome=failed]")
    await page.wait_for_selector("#payment-state[data-status=failed]", timeout=15_000)
    await page.click("nav a[href='#/profile']")
    await page.wait_for_selector("#my-payments tr[data-status=failed]")
    assert "No subscription" in await page.inner_text("#subscription-status")
