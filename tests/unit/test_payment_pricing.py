"""Coupon rules and prices: integer minor units, the reasons in order, the floor."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from typogram.payments.pricing import Coupon, definition_errors, normalize_code, price, refusal

NOW = 1_800_000_000_000
PCT = Coupon(id="c1", code="SAVE20", kind="percent", percent_off=20)
FIXED = Coupon(id="c2", code="FIVE", kind="fixed", amount_off=500, currency="USD")


def test_percent_rounds_half_up_and_fixed_takes_its_amount() -> None:
    assert price(999, "USD", PCT, min_amount=50).discount == 200  # 199.8
    assert price(1000, "USD", replace(PCT, percent_off=15), min_amount=50).discount == 150
    assert price(999, "USD", replace(PCT, percent_off=5), min_amount=50).discount == 50  # 49.95
    assert price(999, "USD", FIXED, min_amount=50).amount == 499
    assert price(999, "USD", None, min_amount=50).amount == 999


def test_no_discount_goes_below_the_minimum_charge() -> None:
    free = replace(PCT, percent_off=100)
    assert price(999, "USD", free, min_amount=50).amount == 50
    assert price(400, "USD", FIXED, min_amount=50).amount == 50
    assert price(30, "USD", free, min_amount=50).amount == 30  # below the floor already


@given(st.integers(0, 10**9), st.integers(1, 100), st.integers(0, 1000))
def test_prices_are_integers_within_bounds(list_amount: int, pct: int, floor: int) -> None:
    charged = price(list_amount, "EUR", replace(PCT, percent_off=pct), min_amount=floor)
    assert isinstance(charged.amount, int) and isinstance(charged.discount, int)
    assert charged.amount + charged.discount == list_amount
    assert 0 <= charged.discount <= list_amount
    assert charged.amount >= min(list_amount, floor)


def test_reasons_in_order() -> None:
    assert refusal(None, "monthly", "USD", NOW, 0) == "not_found"
    assert refusal(replace(PCT, active=False), "monthly", "USD", NOW, 0) == "not_found"
    assert refusal(replace(PCT, valid_from=NOW + 1), "monthly", "USD", NOW, 0) == "not_started"
    assert refusal(replace(PCT, valid_until=NOW), "monthly", "USD", NOW, 0) == "expired"
    assert refusal(replace(PCT, plans=("yearly",)), "monthly", "USD", NOW, 0) == "not_applicable"
    assert refusal(FIXED, "monthly", "EUR", NOW, 0) == "not_applicable"  # another currency
    used_up = replace(PCT, max_redemptions=3, redeemed=3)
    assert refusal(used_up, "monthly", "USD", NOW, 0) == "exhausted"
    assert refusal(replace(PCT, max_per_user=1), "monthly", "USD", NOW, 1) == "already_used"
    assert refusal(replace(PCT, max_per_user=2), "monthly", "USD", NOW, 1) is None
    assert refusal(PCT, "monthly", "USD", NOW, 0) is None
    # The earlier rule wins: an expired, used-up coupon is "expired".
    assert refusal(replace(used_up, valid_until=NOW - 1), "monthly", "USD", NOW, 0) == "expired"


def test_codes_compare_case_insensitively() -> None:
    assert normalize_code("  save20 ") == "SAVE20"


def test_definitions() -> None:
    assert definition_errors(PCT) == {}
    assert definition_errors(FIXED) == {}
    assert set(definition_errors(replace(PCT, percent_off=0))) == {"percent_off"}
    assert set(definition_errors(replace(PCT, code="a b"))) == {"code"}
    assert set(definition_errors(replace(FIXED, currency=None))) == {"currency"}
    assert set(definition_errors(replace(FIXED, currency="usd"))) == {"currency"}
    window = replace(PCT, valid_from=NOW, valid_until=NOW)
    assert set(definition_errors(window)) == {"valid_until"}
    assert set(definition_errors(replace(PCT, max_per_user=0))) == {"max_per_user"}
