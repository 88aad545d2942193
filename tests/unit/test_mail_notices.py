"""Which payment and subscription events become mail, with what values."""

from __future__ import annotations

import pytest

from typogram.mail.notices import day, money, notice_for


def test_a_successful_payment_becomes_a_receipt() -> None:
    data = {
        "id": "p1",
        "user_id": "u1",
        "amount": 999,
        "currency": "eur",
        "plan_id": "pro",
        "plan_name": "Pro",
    }
    assert notice_for("payment.succeeded", data) == (
        "payment_receipt",
        "u1",
        {"amount": "9.99 EUR", "plan": "Pro", "payment_id": "p1"},
    )


def test_renewals_and_expiries_become_notices() -> None:
    sub = {"user_id": "u1", "plan_id": "pro", "period_end": 1_767_225_600_000}
    assert notice_for("subscription.renewed", sub) == (
        "subscription_renewed",
        "u1",
        {"plan": "pro", "until": "2026-01-01"},
    )
    assert notice_for("subscription.expired", sub) == (
        "subscription_expired",
        "u1",
        {"plan": "pro"},
    )


def test_other_events_send_nothing_and_malformed_ones_raise() -> None:
    assert notice_for("payment.failed", {}) is None
    assert notice_for("subscription.granted", {}) is None
    with pytest.raises(KeyError):
        notice_for("payment.succeeded", {"user_id": "u1"})


def test_money_and_days() -> None:
    assert money(5, "usd") == "0.05 USD" and money(120000, "jpy") == "1200.00 JPY"
    assert day(0) == "1970-01-01"
