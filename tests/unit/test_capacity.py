"""The capacity model (bench.capacity): the strategy's figures in, plans that scale out."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bench.capacity import Measured, _override, peak_load, plan, render


def test_one_million_users_are_the_strategys_peak() -> None:
    load = peak_load(1_000_000)
    assert (load.daily_active, load.concurrent, load.api_rps) == (200_000, 20_000, 5_000)
    assert load.results_per_s == 1_000  # 2 M tests of 10 M requests a day


def test_a_plan_carries_its_load_within_the_cpu_target() -> None:
    found = plan(1_000_000, cpu_target=0.7)
    roles = {role.role: role for role in found.roles}
    m = Measured()
    rest_ms = 5_000 * (0.983 * m.rest_ms_per_request + 0.017 * m.rest_ms_per_login)
    assert roles["rest"].processes * 0.7 * 1000 >= rest_ms
    assert roles["gateway"].processes * m.gateway_connections_per_process >= 20_000
    assert roles["workers"].processes * 0.7 * 1000 / m.worker_ms_per_result >= 1_000
    assert found.bottleneck and found.monthly_cost > 0
    assert "1,000,000 users" in render(found)


def test_a_faster_process_needs_fewer_of_them() -> None:
    slow = plan(1_000_000, m=_override(Measured(), ["rest_ms_per_request=3"]))
    fast = plan(1_000_000, m=_override(Measured(), ["rest_ms_per_request=0.5"]))
    assert slow.roles[0].processes > fast.roles[0].processes


@given(st.integers(1_000, 50_000_000), st.integers(1_000, 50_000_000))
def test_more_users_never_need_fewer_processes_or_less_money(a: int, b: int) -> None:
    small, large = plan(min(a, b)), plan(max(a, b))
    for before, after in zip(small.roles, large.roles, strict=True):
        assert after.processes >= before.processes >= 2
    assert large.monthly_cost >= small.monthly_cost
    assert all(math.isfinite(r.memory_gib) for r in large.roles)


@pytest.mark.parametrize(("users", "cpu"), [(0, 0.7), (-5, 0.7), (1000, 0.0), (1000, 1.5)])
def test_impossible_targets_are_refused(users: int, cpu: float) -> None:
    with pytest.raises(ValueError, match="must be"):
        plan(users, cpu_target=cpu)


@pytest.mark.parametrize(
    ("pair", "message"),
    [("nope=1", "unknown figure 'nope'"), ("gateway_us_per_frame=fast", "not a number")],
)
def test_a_bad_override_is_a_clear_error(pair: str, message: str) -> None:
    with pytest.raises(SystemExit, match=message):
        _override(Measured(), [pair])
