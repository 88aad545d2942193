"""The payment state machine: its table, that stale events change nothing, and follow-ups."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from typogram.payments.machine import (
    SIGNALS,
    STATUSES,
    PaymentError,
    Progress,
    follow_ups,
    refundable,
    step,
)

statuses = st.sampled_from(STATUSES)


def test_the_table() -> None:
    assert step("pending", "succeeded") == "succeeded"
    assert step("pending", "failed") == "failed"
    assert step("pending", "refunded") == "refunded"  # the refund overtook the success
    assert step("failed", "succeeded") == "succeeded"  # money moved after all
    assert step("succeeded", "refunded") == "refunded"
    # Late or repeated events change nothing.
    assert step("succeeded", "pending") is None
    assert step("succeeded", "failed") is None
    assert step("succeeded", "succeeded") is None
    assert step("refunded", "succeeded") is None
    assert step("refunded", "pending") is None
    assert step("pending", "pending") is None


@given(st.lists(st.sampled_from(("pending", "succeeded", "failed", "refunded")), max_size=12))
def test_any_order_of_events_ends_in_the_same_state_as_the_sorted_order(signals: list) -> None:
    """Out of order delivery: the final state depends on which events came, not their order,
    as long as a provider only says 'failed' for a payment that never succeeded."""
    if "failed" in signals and ("succeeded" in signals or "refunded" in signals):
        signals = [s for s in signals if s != "failed"]

    def run(order: list) -> str:
        status = "pending"
        for signal in order:
            status = step(status, signal) or status  # type: ignore[arg-type]
        return status

    expected = run(sorted(signals, key=("pending", "failed", "succeeded", "refunded").index))
    for permutation in itertools.islice(itertools.permutations(signals), 50):
        assert run(list(permutation)) == expected


def test_refunded_is_final() -> None:
    for signal in ("pending", "succeeded", "failed", "refunded"):
        assert step("refunded", signal) is None  # type: ignore[arg-type]


def test_only_succeeded_is_refundable() -> None:
    refundable("succeeded")
    for status in ("pending", "failed", "refunded"):
        with pytest.raises(PaymentError):
            refundable(status)  # type: ignore[arg-type]


def test_provider_event_types() -> None:
    assert SIGNALS["payment_intent.succeeded"] == "succeeded"
    assert SIGNALS["payment_intent.payment_failed"] == "failed"
    assert SIGNALS["charge.refunded"] == "refunded"
    assert SIGNALS["payment_intent.created"] == "pending"


def progress(**kw: object) -> Progress:
    base: dict[str, object] = {
        "status": "pending", "credited": False, "coupon": None, "refund_settled": False,
        "announced": None,
    }  # fmt: skip
    return Progress(**(base | kw))  # type: ignore[arg-type]


def test_follow_ups() -> None:
    assert follow_ups(progress()) == []
    assert follow_ups(progress(status="succeeded", coupon="held")) == [
        "redeem", "credit", "announce",
    ]  # fmt: skip
    assert (
        follow_ups(
            progress(status="succeeded", credited=True, coupon="redeemed", announced="succeeded")
        )
        == []
    )
    assert follow_ups(progress(status="failed", coupon="held")) == [
        "cancel_and_release", "announce",
    ]  # fmt: skip
    assert follow_ups(progress(status="failed", coupon="released", announced="failed")) == []
    # A refund never credits; it revokes what was credited, once.
    assert follow_ups(progress(status="refunded")) == ["announce"]
    assert follow_ups(progress(status="refunded", credited=True, announced="succeeded")) == [
        "revoke", "announce",
    ]  # fmt: skip
    assert (
        follow_ups(
            progress(status="refunded", credited=True, refund_settled=True, announced="refunded")
        )
        == []
    )
    assert follow_ups(progress(status="succeeded", coupon="released", credited=True)) == [
        "retake", "announce",
    ]  # fmt: skip


@given(statuses, st.booleans(), st.sampled_from((None, "held", "redeemed", "released")))
def test_follow_ups_never_credit_anything_but_a_success(
    status: str, credited: bool, coupon: str | None
) -> None:
    todo = follow_ups(progress(status=status, credited=credited, coupon=coupon))
    assert ("credit" in todo) == (status == "succeeded" and not credited)
    assert ("revoke" in todo) == (status == "refunded" and credited)
