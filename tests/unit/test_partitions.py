from __future__ import annotations

import datetime as dt

import pytest

from typogram.db.partitions import (
    DAY_MS,
    MAXVALUE,
    Partition,
    Plan,
    initial,
    month_start_ms,
    monthly,
    partition_clause,
    plan,
    statements,
)


def ms(year: int, month: int, day: int = 1) -> int:
    return int(dt.datetime(year, month, day, tzinfo=dt.UTC).timestamp() * 1000)


def test_monthly_bounds_roll_over_the_year() -> None:
    assert monthly(2025, 12) == Partition("p202512", ms(2026, 1))
    assert month_start_ms(2025, 3) == ms(2025, 3)


def test_initial_partitions() -> None:
    names = [p.name for p in initial(ms(2025, 11, 15), ahead=3)]
    assert names == ["p202511", "p202512", "p202601", "p202602", MAXVALUE]


def test_plan_adds_missing_months_and_drops_expired_ones() -> None:
    existing = [*initial(ms(2025, 1, 10), ahead=3)]  # Jan..Apr 2025 + pmax
    now = ms(2025, 6, 15)
    todo = plan(existing, now, ahead=2, retention_days=90)
    # May was missed while the job was down: it gets its own partition too.
    assert [p.name for p in todo.add] == ["p202505", "p202506", "p202507", "p202508"]
    # Cutoff is 17 March: January and February end before it, March does not.
    assert todo.drop == ("p202501", "p202502")


def test_plan_is_idempotent_once_applied() -> None:
    now = ms(2025, 6, 15)
    current = initial(now, ahead=3)
    assert plan(current, now, ahead=3) == Plan()
    assert plan(current, now + 20 * DAY_MS, ahead=3).add == (monthly(2025, 10),)


def test_plan_keeps_the_current_month_and_obeys_drop_false() -> None:
    old = [monthly(2024, 1), monthly(2024, 2)]
    todo = plan(old, ms(2024, 12, 5), ahead=0)
    assert todo.drop == ("p202401", "p202402")
    assert todo.add[-1] == monthly(2024, 12) and todo.add[0] == monthly(2024, 3)
    assert plan(old, ms(2025, 1), ahead=0, drop=False).drop == ()


def test_statements_reorganize_pmax_and_drop() -> None:
    existing = initial(ms(2025, 1, 10), ahead=0)
    todo = Plan(add=(monthly(2025, 2),), drop=("p202501",))
    sql = statements("test_results", todo, existing)
    assert sql == [
        "ALTER TABLE test_results REORGANIZE PARTITION pmax INTO ("
        f"PARTITION p202502 VALUES LESS THAN ({ms(2025, 3)}), "
        "PARTITION pmax VALUES LESS THAN MAXVALUE)",
        "ALTER TABLE test_results DROP PARTITION p202501",
    ]
    without_max = statements("test_results", Plan(add=(monthly(2025, 2),)), [monthly(2025, 1)])
    assert without_max[0].startswith("ALTER TABLE test_results ADD PARTITION (")
    assert statements("test_results", Plan(), existing) == []
    with pytest.raises(ValueError):
        statements("users; DROP TABLE users", todo, existing)


def test_partition_clause() -> None:
    clause = partition_clause(initial(ms(2025, 1), ahead=0))
    assert clause == (
        f"PARTITION BY RANGE (created_at) (PARTITION p202501 VALUES LESS THAN ({ms(2025, 2)}), "
        "PARTITION pmax VALUES LESS THAN MAXVALUE)"
    )
