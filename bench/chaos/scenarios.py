"""Every chaos scenario by name, with its full size (the README's figures) and the
small size the test suite runs (each bounded, all of them in about two minutes)."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from bench.chaos.backends import broker_pause, database_restart, redis_failover
from bench.chaos.broker_restart import broker_restart
from bench.chaos.chat_failover import chat_failover
from bench.chaos.drain import gateway_drain
from bench.chaos.gateways import gateway_kill
from bench.chaos.network import network_delay
from bench.chaos.outcome import Outcome
from bench.chaos.race_failover import race_failover
from bench.chaos.slow import slow_consumer
from bench.chaos.workers import worker_crash


@dataclass(frozen=True)
class Scenario:
    run: Callable[..., Awaitable[Outcome]]
    full: dict[str, Any]
    small: dict[str, Any]
    limit_s: float  # the most one full-size run may take
    in_ci: bool = True  # run by tests/integration/test_chaos.py at its small size

    def unknown(self, overrides: dict[str, Any]) -> list[str]:
        """The names in ``overrides`` that are no parameter of this scenario."""
        return sorted(set(overrides) - set(inspect.signature(self.run).parameters))

    async def __call__(self, *, small: bool = False, **overrides: Any) -> Outcome:
        """One run at its full or small size, with ``overrides`` (parameters of ``run``)."""
        if unknown := self.unknown(overrides):
            raise ValueError(f"{self.run.__name__} has no parameter {', '.join(unknown)}")
        return await self.run(**((self.small if small else self.full) | overrides))


SCENARIOS: dict[str, Scenario] = {
    "gateway_kill": Scenario(
        gateway_kill, {"races": 200, "members": 300}, {"races": 6, "members": 12}, 240
    ),
    "gateway_drain": Scenario(gateway_drain, {"chatters": 100}, {"chatters": 10}, 120),
    "worker_crash": Scenario(worker_crash, {"crashes": 1000}, {"crashes": 200}, 120),
    "broker_pause": Scenario(broker_pause, {"typists": 8}, {"typists": 4}, 120),
    "broker_restart": Scenario(
        broker_restart,
        # What the worker drains from the object store here (bench/chaos/broker_restart.py);
        # ``--set rate=200`` for the broker's own side at the rate.
        {"rate": 15.0, "writers": 16},
        {"rate": 15.0, "writers": 16, "warmup_s": 5.0, "after_s": 5.0},
        150,
    ),
    "redis_failover": Scenario(redis_failover, {"typists": 8}, {"typists": 4}, 120),
    "chat_failover": Scenario(chat_failover, {"chatters": 20}, {"chatters": 6}, 120),
    "races_redis_sentinel": Scenario(
        race_failover, {"players": 16}, {"players": 6, "after_s": 8.0}, 150
    ),
    "races_redis_restart": Scenario(
        race_failover,
        {"players": 16, "mode": "restart"},
        {"players": 6, "mode": "restart", "after_s": 8.0},
        150,
    ),
    "database_restart": Scenario(database_restart, {"typists": 8}, {"typists": 4}, 120),
    "network_delay": Scenario(network_delay, {"typists": 8}, {"typists": 4}, 120),
    # Half a minute or more of filling kernel buffers first: the bench only (CI checks
    # the 4008 close with a small queue in tests/integration/test_gateway_lifecycle.py).
    "slow_consumer": Scenario(slow_consumer, {}, {}, 180, in_ci=False),
}
