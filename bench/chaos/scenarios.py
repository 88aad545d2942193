"""Every chaos scenario by name, with its full size (the README's figures) and the
small size the test suite runs (each bounded, all of them in about two minutes)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from bench.chaos.backends import broker_pause, database_restart, redis_failover
from bench.chaos.drain import gateway_drain
from bench.chaos.gateways import gateway_kill
from bench.chaos.outcome import Outcome
from bench.chaos.workers import worker_crash


@dataclass(frozen=True)
class Scenario:
    run: Callable[..., Awaitable[Outcome]]
    full: dict[str, Any]
    small: dict[str, Any]
    limit_s: float  # the most one full-size run may take

    async def __call__(self, *, small: bool = False) -> Outcome:
        return await self.run(**(self.small if small else self.full))


SCENARIOS: dict[str, Scenario] = {
    "gateway_kill": Scenario(gateway_kill, {"races": 200}, {"races": 6}, 240),
    "gateway_drain": Scenario(gateway_drain, {"chatters": 100}, {"chatters": 10}, 120),
    "worker_crash": Scenario(worker_crash, {"crashes": 1000}, {"crashes": 200}, 120),
    "broker_pause": Scenario(broker_pause, {"typists": 8}, {"typists": 4}, 120),
    "redis_failover": Scenario(redis_failover, {"typists": 8}, {"typists": 4}, 120),
    "database_restart": Scenario(database_restart, {"typists": 8}, {"typists": 4}, 120),
}
