"""The chaos suite at its small sizes (``bench/chaos``): every invariant must hold.

Each scenario starts what it breaks (a MariaDB primary, Redis with Sentinel,
a broker, an object store for a broker that survives a restart, gateway and
worker processes) and is bounded in time (a minute or less each at these
sizes). ``python -m bench.chaos --runs 3`` runs them at
full size for the README's figures.
"""

from __future__ import annotations

import asyncio

import pytest

from bench.chaos.scenarios import SCENARIOS
from tests.clusters import ObjectStore

pytestmark = [pytest.mark.integration, pytest.mark.chaos]


@pytest.mark.timeout(180)
@pytest.mark.parametrize("name", [name for name, s in SCENARIOS.items() if s.in_ci])
async def test_the_invariants_hold(name: str) -> None:
    if name == "broker_restart" and not ObjectStore.available():
        pytest.skip("the durable broker needs an S3 store: pip install 'moto[server]'")
    scenario = SCENARIOS[name]
    async with asyncio.timeout(scenario.limit_s):
        outcome = await scenario(small=True)
    print(outcome.line())
    assert not outcome.problems, outcome.line()
