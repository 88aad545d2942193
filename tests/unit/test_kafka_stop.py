"""``KafkaEventLog`` stops a consumer within ``ConsumerTuning.stop_timeout_s``: a
broker that holds a group request (tansu waiting out an un-left member) must not
hold up a shutdown, and the connections are closed either way."""

from __future__ import annotations

import asyncio
from typing import Any

from typogram.adapters.kafka import ConsumerTuning, KafkaEventLog


class Part:
    def __init__(self) -> None:
        self.calls: list[str] = []

    async def _stop_heartbeat_task(self) -> None:
        self.calls.append("heartbeat")

    async def _stop_commit_offsets_refresh_task(self) -> None:
        self.calls.append("refresh")

    async def close(self) -> None:
        self.calls.append("close")


class StuckConsumer:
    """An aiokafka consumer whose ``stop`` waits on a group request that never returns."""

    def __init__(self, *, stuck: bool) -> None:
        self.stuck = stuck
        self.cancelled = False
        self._coordinator, self._fetcher, self._client = Part(), Part(), Part()

    async def stop(self) -> None:
        if not self.stuck:
            await self._client.close()
            return
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled = True
            raise


def _log(stop_timeout_s: float) -> KafkaEventLog:
    return KafkaEventLog("127.0.0.1:1", tuning=ConsumerTuning(stop_timeout_s=stop_timeout_s))


async def test_a_stop_the_broker_holds_up_is_cut_short_and_the_connections_closed() -> None:
    consumer: Any = StuckConsumer(stuck=True)
    async with asyncio.timeout(5):
        await _log(0.05)._stop(consumer, "results")
    assert consumer.cancelled
    assert consumer._coordinator.calls == ["heartbeat", "refresh"]
    assert consumer._fetcher.calls == ["close"] and consumer._client.calls == ["close"]


async def test_a_stop_that_finishes_in_time_is_left_alone() -> None:
    consumer: Any = StuckConsumer(stuck=False)
    await _log(5.0)._stop(consumer, "results")
    assert not consumer.cancelled
    assert consumer._coordinator.calls == [] and consumer._client.calls == ["close"]
