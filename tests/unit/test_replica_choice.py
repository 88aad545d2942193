"""Which replica serves a read (``typogram.db.replicas``), without servers."""

from __future__ import annotations

import math
from typing import Any, cast

from sqlalchemy.ext.asyncio import AsyncEngine

from typogram.db.replicas import Replica, Replicas

ENGINE = cast(AsyncEngine, object())


def replica_set(*states: tuple[bool, float, float]) -> Replicas:
    members = [
        Replica(f"r{i}:3306", ENGINE, reachable=up, lag_s=lag, applied_through=through)
        for i, (up, lag, through) in enumerate(states)
    ]
    return Replicas(ENGINE, members, max_lag_s=5.0, check_s=1.0, timeout_s=1.0)


def names(replicas: Replicas, n: int, since: float | None = None) -> list[str | None]:
    out = []
    for _ in range(n):
        chosen = replicas.choose(since)
        out.append(None if chosen is None else chosen.name)
    return out


def test_usable_replicas_take_turns_and_the_others_are_skipped() -> None:
    replicas = replica_set((True, 0.0, 100.0), (False, math.inf, 0.0), (True, 4.9, 95.0))
    assert names(replicas, 4) == ["r0:3306", "r2:3306", "r0:3306", "r2:3306"]
    lagging = replica_set((True, 5.1, 90.0))
    assert names(lagging, 2) == [None, None]
    assert lagging.fallbacks == 2


def test_a_read_since_a_write_goes_only_to_replicas_that_applied_it() -> None:
    replicas = replica_set((True, 0.5, 99.5), (True, 0.0, 101.0))
    assert names(replicas, 2, since=100.0) == ["r1:3306", "r1:3306"]
    assert names(replicas, 1, since=102.0) == [None]  # nobody has it yet: the primary


def test_marking_a_replica_down_takes_it_out_until_a_check() -> None:
    replicas = replica_set((True, 0.0, 100.0))
    (member,) = replicas.members
    replicas.mark_down(member, ConnectionRefusedError("refused"))
    assert replicas.choose() is None
    assert member.failures == 1 and member.last_error == "refused"
    stats: dict[str, Any] = replicas.statistics()
    assert stats == {"replicas": 1, "usable": 0, "fallbacks": 1}
