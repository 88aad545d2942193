"""Running a consumer group: at-least-once, idempotent by event id, DLQ after retries.

Each group is a name, the topics it reads and an async handler per event.
The runtime decodes, skips events the group already processed (a marker in
the cache, kept ``DONE_TTL_S``), retries a failing handler with backoff up to
``worker_max_retries`` times and then sends the original bytes to
``<topic>.dlq``. An undecodable message goes to the DLQ at once. The event
log commits only after this returns, so a crash replays, never loses.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from typogram import keys
from typogram.logs import get_logger
from typogram.ports import Event
from typogram.topics import dead_letter

if TYPE_CHECKING:
    from typogram.platform import Platform

DONE_TTL_S = 7 * 24 * 3600
log = get_logger("typogram.workers")

GroupHandler = Callable[["Platform", str, Event], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Group:
    name: str
    topics: Sequence[str]
    handle: GroupHandler


class GroupRunner:
    def __init__(self, platform: Platform, group: Group) -> None:
        self.platform = platform
        self.group = group
        settings = platform.settings
        self.max_retries = settings.worker_max_retries
        self.backoff = settings.worker_retry_backoff_s

    async def run(self) -> None:
        """Consume until cancelled."""
        await self.platform.events.consume(self.group.name, self.group.topics, self.process)

    async def process(self, topic: str, raw: bytes) -> None:
        metrics = self.platform.metrics
        try:
            event = Event.decode(raw)
        except ValueError as exc:
            log.warning("poison message sent to DLQ", extra={"topic": topic, "reason": str(exc)})
            await self.platform.events.publish_raw(dead_letter(topic), raw)
            metrics.events_processed.labels(self.group.name, topic, "poison").inc()
            return
        done_key = keys.event_done(self.group.name, event.id)
        if await self.platform.cache.get(done_key) is not None:
            metrics.events_processed.labels(self.group.name, topic, "duplicate").inc()
            return
        started = time.perf_counter()
        for attempt in range(self.max_retries + 1):
            try:
                await self.group.handle(self.platform, topic, event)
                break
            except asyncio.CancelledError:
                raise
            except Exception:
                if attempt == self.max_retries:
                    log.exception(
                        "event failed after retries, sent to DLQ",
                        extra={"topic": topic, "event_id": event.id, "group": self.group.name},
                    )
                    await self.platform.events.publish_raw(dead_letter(topic), raw, key=event.key)
                    metrics.events_processed.labels(self.group.name, topic, "dead_letter").inc()
                    return
                await asyncio.sleep(self.backoff * 2**attempt)
        await self.platform.cache.set(done_key, b"1", ttl=DONE_TTL_S)
        metrics.event_latency.labels(self.group.name, topic).observe(time.perf_counter() - started)
        metrics.events_processed.labels(self.group.name, topic, "ok").inc()
