"""The chaos suite at its small sizes (``bench/chaos``): every invariant must hold.

Each scenario starts what it breaks (a MariaDB primary, Redis with Sentinel,
a broker, gateway and worker processes) and is bounded in time; together
they take about two minutes. ``python -m bench.chaos --runs 3`` runs them at
full size for the README's figures.
"""

from __future__ import annotations

import asyncio

import pytest

from bench.chaos.scenarios import SCENARIOS

pytestmark = [pytest.mark.integration, pytest.mark.chaos]


@pytest.mark.timeout(180)
@pytest.mark.parametrize("name", [name for name, s in SCENARIOS.items() if s.in_ci])
async def test_the_invariants_hold(name: str) -> None:
    scenario = SCENARIOS[name]
    async with asyncio.timeout(scenario.limit_s):
        outcome = await scenario(small=True)
    print(outcome.line())
    assert not outcome.problems, outcome.line()
