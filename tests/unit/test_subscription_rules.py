"""Subscription states, transitions and access (typogram/subscriptions/rules.py)."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from typogram.subscriptions import rules
from typogram.subscriptions.rules import Plan, Subscription, SubscriptionError

MONTHLY = Plan("monthly", "Monthly", "", 999, "USD", "month", 1)
YEARLY = Plan("yearly", "Yearly", "", 9990, "USD", "year", 1)
DAY = 86_400_000
GRACE = 3 * DAY


def ms(*parts: int) -> int:
    return int(dt.datetime(*parts, tzinfo=dt.UTC).timestamp() * 1000)


def running(start: int = ms(2026, 1, 31), **changes: object) -> Subscription:
    sub = rules.grant(None, MONTHLY, start, user_id="u1", new_id="s1")
    return replace(sub, **changes)  # type: ignore[arg-type]


def test_periods_are_calendar_months_and_years() -> None:
    assert rules.add_period(ms(2026, 1, 31), "month", 1) == ms(2026, 2, 28)
    assert rules.add_period(ms(2028, 1, 31), "month", 1) == ms(2028, 2, 29)
    assert rules.add_period(ms(2026, 11, 15, 10), "month", 3) == ms(2027, 2, 15, 10)
    assert rules.add_period(ms(2028, 2, 29), "year", 1) == ms(2029, 2, 28)


@given(st.integers(ms(2000, 1, 1), ms(2100, 1, 1)), st.integers(1, 24))
def test_a_period_is_never_empty_and_grows_with_its_count(start: int, months: int) -> None:
    end = rules.add_period(start, "month", months)
    assert end > start and rules.add_period(start, "month", months + 1) > end


def test_access_follows_the_period_not_the_status_alone() -> None:
    sub = running()
    assert rules.has_access(sub, sub.period_end - 1, GRACE)
    assert not rules.has_access(sub, sub.period_end, GRACE)  # the moment it ends
    late = rules.past_due(sub)
    assert rules.has_access(late, sub.period_end + GRACE - 1, GRACE)
    assert not rules.has_access(late, sub.period_end + GRACE, GRACE)
    for status in ("cancelled", "expired"):
        assert not rules.has_access(replace(sub, status=status), sub.period_start, GRACE)
    assert not rules.has_access(None, 0, GRACE)


def test_renewal_extends_from_the_end_and_a_lapsed_one_from_now() -> None:
    sub = running()
    renewed = rules.renew(rules.cancel(sub, sub.period_start + DAY), MONTHLY, sub.period_start)
    assert renewed.period_start == sub.period_end and not renewed.cancel_at_period_end
    later = sub.period_end + 10 * DAY
    assert rules.renew(sub, MONTHLY, later).period_start == later


def test_a_payment_grants_or_renews_and_never_shortens() -> None:
    action, sub = rules.for_payment(None, MONTHLY, ms(2026, 3, 1), GRACE, user_id="u", new_id="n")
    assert action == "grant" and sub.status == "active" and sub.id == "n"
    action, again = rules.for_payment(sub, YEARLY, ms(2026, 3, 5), GRACE, user_id="u", new_id="x")
    assert action == "renew" and again.period_start == sub.period_end and again.id == "n"
    lapsed = sub.period_end + 30 * DAY
    action, fresh = rules.for_payment(sub, MONTHLY, lapsed, GRACE, user_id="u", new_id="x")
    assert action == "grant" and fresh.period_start == lapsed and fresh.id == "n"


def test_cancel_resume_expire() -> None:
    sub = running()
    cancelled = rules.cancel(sub, sub.period_start + DAY)
    assert cancelled.status == "active" and cancelled.cancel_at_period_end
    with pytest.raises(SubscriptionError):
        rules.cancel(cancelled, sub.period_start + DAY)
    assert rules.resume(cancelled, sub.period_start + 2 * DAY) == replace(
        sub, cancel_at_period_end=False
    )
    with pytest.raises(SubscriptionError):
        rules.resume(sub, sub.period_start)
    assert rules.expire(cancelled, sub.period_end - 1, GRACE) is None
    ended = rules.expire(cancelled, sub.period_end, GRACE)
    assert ended is not None and ended.status == "cancelled"
    expired = rules.expire(sub, sub.period_end, GRACE)
    assert expired is not None and expired.status == "expired"
    assert rules.expire(expired, sub.period_end + DAY, GRACE) is None
    late = rules.past_due(sub)
    assert rules.expire(late, sub.period_end, GRACE) is None  # in its grace
    lost = rules.expire(late, sub.period_end + GRACE, GRACE)
    assert lost is not None and lost.status == "expired"


def test_revoke_ends_now_and_illegal_transitions_change_nothing() -> None:
    sub = running()
    revoked = rules.revoke(sub, sub.period_start + DAY)
    assert revoked.status == "cancelled" and revoked.period_end == sub.period_start + DAY
    assert not rules.has_access(revoked, sub.period_start + DAY, GRACE)
    for refused in (
        lambda: rules.renew(revoked, MONTHLY, 0),
        lambda: rules.cancel(None, 0),
        lambda: rules.past_due(revoked),
        lambda: rules.revoke(revoked, 0),
        lambda: rules.grant(sub, MONTHLY, sub.period_start + DAY, user_id="u1", new_id="z"),
    ):
        with pytest.raises(SubscriptionError):
            refused()
    assert sub == running()
