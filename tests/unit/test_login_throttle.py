"""``typogram.login_throttle``: the rules on the in-memory cache with one fake clock."""

from __future__ import annotations

import asyncio

from hypothesis import given, settings
from hypothesis import strategies as st

from typogram.adapters.memory_cache import MemoryCache
from typogram.login_throttle import (
    LoginLimits,
    LoginThrottle,
    backoff_seconds,
    over_limit,
    within_hourly_quota,
)

LIMITS = LoginLimits(per_pair=5, per_ip=8, per_account=6, backoff_free=2, backoff_max_s=60)


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_backoff_is_free_then_doubles_up_to_the_cap() -> None:
    waits = [backoff_seconds(n, LIMITS) for n in range(1, 12)]
    assert waits == [0, 0, 1, 2, 4, 8, 16, 32, 60, 60, 60]


@given(st.integers(min_value=0, max_value=10**9))
def test_backoff_never_exceeds_the_cap_and_never_overflows(failures: int) -> None:
    assert 0 <= backoff_seconds(failures, LIMITS) <= LIMITS.backoff_max_s


@given(st.lists(st.tuples(st.integers(0, 20), st.integers(0, 20)), max_size=5))
def test_over_limit_names_the_first_count_past_its_limit(pairs: list[tuple[int, int]]) -> None:
    counts, limits = [c for c, _ in pairs], [limit for _, limit in pairs]
    found = over_limit(counts, limits)
    if found is None:
        assert all(c <= limit for c, limit in pairs)
    else:
        assert counts[found] > limits[found]
        assert all(c <= limit for c, limit in pairs[:found])


async def test_concurrent_attempts_are_admitted_up_to_the_pair_limit() -> None:
    clock = Clock()
    async with MemoryCache(clock=clock) as cache:
        throttle = LoginThrottle(cache, LIMITS, clock=clock)
        decisions = await asyncio.gather(*(throttle.admit("acct", "1.2.3.4") for _ in range(30)))
        assert sum(d.allowed for d in decisions) == LIMITS.per_pair
        assert {d.scope for d in decisions if not d.allowed} == {"pair"}


async def test_the_window_ends_and_the_pair_may_try_again() -> None:
    clock = Clock()
    async with MemoryCache(clock=clock) as cache:
        throttle = LoginThrottle(cache, LIMITS, clock=clock)
        for _ in range(LIMITS.per_pair):
            assert (await throttle.admit("acct", "ip")).allowed
        refused = await throttle.admit("acct", "ip")
        assert not refused.allowed and 0 < refused.retry_after <= LIMITS.window_s
        clock.now += refused.retry_after
        assert (await throttle.admit("acct", "ip")).allowed


async def test_one_ip_spraying_many_accounts_hits_the_ip_limit() -> None:
    clock = Clock()
    async with MemoryCache(clock=clock) as cache:
        throttle = LoginThrottle(cache, LIMITS, clock=clock)
        decisions = [await throttle.admit(f"acct{n}", "ip") for n in range(10)]
        assert [d.allowed for d in decisions] == [True] * LIMITS.per_ip + [False] * 2
        assert decisions[-1].scope == "ip"


async def test_many_ips_on_one_account_hit_the_account_limit_but_a_known_ip_does_not() -> None:
    clock = Clock()
    async with MemoryCache(clock=clock) as cache:
        throttle = LoginThrottle(cache, LIMITS, clock=clock)
        await throttle.succeeded("acct", "home")
        decisions = [await throttle.admit("acct", f"ip{n}") for n in range(8)]
        assert [d.allowed for d in decisions] == [True] * LIMITS.per_account + [False] * 2
        assert decisions[-1].scope == "account"
        assert (await throttle.admit("acct", "home")).allowed


async def test_failures_impose_waits_and_a_success_clears_them() -> None:
    clock = Clock()
    async with MemoryCache(clock=clock) as cache:
        throttle = LoginThrottle(cache, LIMITS, clock=clock)
        assert [await throttle.failed("acct", "ip") for _ in range(4)] == [0, 0, 1, 2]
        waiting = await throttle.admit("acct", "ip")
        assert (waiting.allowed, waiting.scope, waiting.retry_after) == (False, "backoff", 2)
        assert (await throttle.admit("acct", "elsewhere")).allowed  # not the owner's problem
        clock.now += 2.01
        assert (await throttle.admit("acct", "ip")).allowed
        await throttle.succeeded("acct", "ip")
        assert await throttle.failed("acct", "ip") == 0  # the streak starts again


async def test_the_hourly_quota_counts_per_ip_and_names_the_wait() -> None:
    clock = Clock()
    async with MemoryCache(clock=clock) as cache:
        waits = [await within_hourly_quota(cache, "guest", "ip", 2, clock.now) for _ in range(3)]
        assert waits[:2] == [0, 0] and 0 < waits[2] <= 3600
        assert await within_hourly_quota(cache, "guest", "other", 2, clock.now) == 0
        assert await within_hourly_quota(cache, "register", "ip", 2, clock.now) == 0


@settings(max_examples=40, deadline=None)
@given(
    st.integers(0, 60),
    st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=3),
)
async def test_no_burst_is_ever_verified_past_a_limit(attempts: int, ips: list[str]) -> None:
    """Rule 1, however many attempts arrive at once from however many addresses."""
    clock = Clock()
    async with MemoryCache(clock=clock) as cache:
        throttle = LoginThrottle(cache, LIMITS, clock=clock)
        decisions = await asyncio.gather(
            *(throttle.admit("acct", ips[n % len(ips)]) for n in range(attempts))
        )
        admitted = [ips[n % len(ips)] for n, d in enumerate(decisions) if d.allowed]
        for ip in set(ips):
            assert admitted.count(ip) <= LIMITS.per_pair
        assert len(admitted) <= LIMITS.per_account


async def test_one_address_hammering_cannot_use_up_the_accounts_allowance() -> None:
    clock = Clock()
    async with MemoryCache(clock=clock) as cache:
        throttle = LoginThrottle(cache, LIMITS, clock=clock)
        hammer = [await throttle.admit("acct", "attacker") for _ in range(50)]
        assert sum(d.allowed for d in hammer) == LIMITS.per_pair
        # Only its admitted attempts counted toward the account: a stranger still gets in.
        assert LIMITS.per_pair < LIMITS.per_account
        assert (await throttle.admit("acct", "owner-on-holiday")).allowed
