"""Which read replica may serve a read: health, lag and read-your-writes.

Rules:

1. Every ``check_s`` the primary's GTID position is read, then each
   replica's (``gtid.LagTracker``). A replica is *usable* while it answers
   and its lag is at most ``max_lag_s``; otherwise reads skip it until a
   later check finds it healthy again.
2. A read that tolerates lag goes to the usable replicas in turn; with none,
   to the primary.
3. A read that must see the writes committed up to a moment (``since``, epoch
   seconds: a session's own writes) goes only to a replica known to have
   applied everything committed before then (``applied_through``), else to
   the primary. Since a used replica is never more than ``max_lag_s`` +
   ``check_s`` behind, a write older than that is visible on every replica
   reads go to.
4. A replica that fails to hand out a connection is marked down at once;
   the read falls back to the primary.

Lag is measured against the primary's position as read at each check, so
it has the check's resolution; an idle primary never makes a replica look
behind. MariaDB only (``@@gtid_binlog_pos`` / ``@@gtid_slave_pos``).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from typogram.db import gtid

log = logging.getLogger(__name__)

PRIMARY_POSITION = text("SELECT @@gtid_binlog_pos")
REPLICA_POSITION = text("SELECT @@gtid_slave_pos")


@dataclass(slots=True)
class Replica:
    """One replica's engine and what the last check found."""

    name: str  # host:port, no credentials: a metric label and a log field
    engine: AsyncEngine
    reachable: bool = False
    lag_s: float = math.inf
    applied_through: float = -math.inf  # every write committed before this time is here
    checks: int = 0
    failures: int = 0
    reads: int = 0
    last_error: str = field(default="", repr=False)

    def usable(self, max_lag_s: float) -> bool:
        return self.reachable and self.lag_s <= max_lag_s


class Replicas:
    """The replica set's health, refreshed by ``run`` (or ``check`` by hand)."""

    def __init__(
        self,
        primary: AsyncEngine,
        replicas: Sequence[Replica],
        *,
        max_lag_s: float,
        check_s: float,
        timeout_s: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if max_lag_s < 0 or check_s <= 0:
            raise ValueError("max_lag_s must be ≥ 0 and check_s > 0")
        self.members = list(replicas)
        self.max_lag_s = max_lag_s
        self.check_s = check_s
        self._primary = primary
        self._timeout_s = timeout_s
        self._clock = clock
        self._tracker = gtid.LagTracker()
        self._turn = 0
        self.fallbacks = 0  # reads that wanted a replica and got the primary

    def choose(self, since: float | None = None) -> Replica | None:
        """The next usable replica (that has applied everything before ``since``), or None."""
        count = len(self.members)
        for step in range(count):
            replica = self.members[(self._turn + step) % count]
            if not replica.usable(self.max_lag_s):
                continue
            if since is not None and replica.applied_through < since:
                continue
            self._turn = (self._turn + step + 1) % count
            replica.reads += 1
            return replica
        if count:
            self.fallbacks += 1
        return None

    def mark_down(self, replica: Replica, exc: BaseException) -> None:
        """A read could not reach ``replica``: skip it until a check finds it again."""
        if replica.reachable:
            log.warning("read replica %s is down: %s", replica.name, _reason(exc))
        replica.reachable = False
        replica.lag_s = math.inf
        replica.failures += 1
        replica.last_error = _reason(exc)

    async def check(self) -> None:
        """Read the primary's position, then every replica's; update lag and health."""
        if not self.members:
            return
        # The time before the query: every write committed before it is in the answer.
        at = self._clock()
        async with asyncio.timeout(self._timeout_s):
            async with self._primary.connect() as conn:
                raw = (await conn.execute(PRIMARY_POSITION)).scalar_one_or_none()
        self._tracker.record(at, gtid.parse(raw))
        await asyncio.gather(*(self._check_one(replica) for replica in self.members))

    async def _check_one(self, replica: Replica) -> None:
        replica.checks += 1
        try:
            async with asyncio.timeout(self._timeout_s):
                async with replica.engine.connect() as conn:
                    raw = (await conn.execute(REPLICA_POSITION)).scalar_one_or_none()
            position = gtid.parse(raw)
        except Exception as exc:  # unreachable, refused, timed out: skip it for now
            self.mark_down(replica, exc)
            return
        was_usable = replica.usable(self.max_lag_s)
        replica.reachable = True
        replica.last_error = ""
        replica.lag_s = self._tracker.lag(position, self._clock())
        replica.applied_through = self._tracker.applied_through(position)
        usable = replica.usable(self.max_lag_s)
        if usable != was_usable and (replica.checks > 1 or not usable):
            state = "back in use" if usable else f"skipped (lag {replica.lag_s:.1f} s)"
            log.warning("read replica %s %s", replica.name, state)

    async def run(self) -> None:
        """Check every ``check_s`` until cancelled; a failed check is logged and retried."""
        while True:
            try:
                await self.check()
            except Exception as exc:  # the primary did not answer: keep the last verdicts
                log.warning("replica check failed: %s", _reason(exc))
            await asyncio.sleep(self.check_s)

    def statistics(self) -> dict[str, float]:
        usable = sum(r.usable(self.max_lag_s) for r in self.members)
        return {"replicas": len(self.members), "usable": usable, "fallbacks": self.fallbacks}


def _reason(exc: BaseException) -> str:
    message = str(exc).strip().splitlines()
    return message[0][:200] if message else type(exc).__name__
