"""GTID positions and replica lag from samples (``typogram.db.gtid``)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from typogram.db import gtid

positions = st.dictionaries(st.integers(0, 3), st.integers(0, 10_000), max_size=4)


def test_parse_reads_every_domain_and_keeps_the_highest_sequence() -> None:
    assert gtid.parse("0-1-42,1-2-7") == {0: 42, 1: 7}
    assert gtid.parse(" 0-1-42,\n0-3-50 ") == {0: 50}
    assert gtid.parse("") == {} and gtid.parse(None) == {}


@pytest.mark.parametrize("bad", ["0-1", "a-b-c", "0-1-2-3", "0--1-2"])
def test_parse_refuses_what_is_not_a_gtid(bad: str) -> None:
    with pytest.raises(ValueError, match="not a GTID"):
        gtid.parse(bad)


@given(positions, positions)
def test_covers_is_per_domain_at_least(applied: dict[int, int], wanted: dict[int, int]) -> None:
    expected = all(d in applied and applied[d] >= s for d, s in wanted.items())
    assert gtid.covers(applied, wanted) is expected
    assert gtid.covers(applied, applied)
    assert gtid.covers(applied, {})


def test_lag_is_the_age_of_the_newest_sample_the_replica_has() -> None:
    tracker = gtid.LagTracker()
    tracker.record(100.0, {0: 10})
    tracker.record(101.0, {0: 20})
    tracker.record(102.0, {0: 30})
    assert tracker.lag({0: 30}, now=102.5) == 0.0
    assert tracker.lag({0: 25}, now=102.5) == pytest.approx(1.5)  # has everything up to 101
    assert tracker.applied_through({0: 25}) == 101.0
    assert tracker.lag({0: 5}, now=102.5) == math.inf  # older than the whole history


def test_an_idle_primary_only_moves_the_time_of_its_last_sample() -> None:
    tracker = gtid.LagTracker()
    tracker.record(100.0, {0: 10})
    tracker.record(160.0, {0: 10})
    assert tracker.lag({0: 10}, now=170.0) == 0.0
    assert tracker.applied_through({0: 10}) == 160.0


def test_a_new_domain_on_the_primary_is_missing_until_applied() -> None:
    tracker = gtid.LagTracker()
    tracker.record(100.0, {0: 10})
    tracker.record(101.0, {0: 10, 1: 1})
    assert tracker.lag({0: 10}, now=103.0) == pytest.approx(3.0)
    assert tracker.lag({0: 10, 1: 1}, now=103.0) == 0.0


def test_no_sample_yet_means_unknown_lag() -> None:
    assert gtid.LagTracker().lag({0: 1}, now=1.0) == math.inf
    with pytest.raises(ValueError):
        gtid.LagTracker(history=0)


@given(st.lists(st.integers(0, 50), min_size=1, max_size=30), st.integers(0, 60))
def test_lag_never_negative_and_zero_exactly_when_caught_up(steps: list[int], seq: int) -> None:
    tracker, total = gtid.LagTracker(history=8), 0
    for i, step in enumerate(steps):
        total += step
        tracker.record(float(i), {0: total})
    lag = tracker.lag({0: seq}, now=float(len(steps)))
    assert lag >= 0.0
    assert (lag == 0.0) == (seq >= total)
