"""Running a consumer group: at-least-once, idempotent by event id, DLQ after retries.

Each group is a name, the topics it reads and an async handler per event.
The runtime decodes, skips events the group already processed (a marker in
the cache, kept ``DONE_TTL_S``; not for a group whose handler is idempotent
by itself, ``dedupe=False``), retries a failing handler with backoff up to
``worker_max_retries`` times and then sends the original bytes to
``<topic>.dlq`` with headers saying why (group, exception, attempts, when;
``workers.dlq``), counted in ``typogram_dead_letters_total``. An
undecodable message goes to the DLQ at once. The event log commits only
after this returns, so a crash replays, never loses. ``typogram dlq``
lists and replays dead letters.

A group may also give a ``Periodic`` job that every process running the
group runs beside its consumer (so it must be idempotent), every
``every(settings)`` seconds; a failing run is logged and the next one comes
on schedule.

A group may also give ``handle_batch``: events the log hands over side by
side (one per partition of a poll) that arrive within ``BATCH_LINGER_S`` of
each other are then handled in one call (one transaction instead of one
each). Every event still waits for its own batch to finish before it counts
as processed, and a retry handles the event alone, so one poison event
cannot take its batch-mates to the DLQ.
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
from workers import dlq

if TYPE_CHECKING:
    from typogram.platform import Platform
    from typogram.settings import Settings

DONE_TTL_S = 7 * 24 * 3600
log = get_logger("typogram.workers")

BATCH_LINGER_S = 0.002
BATCH_MAX = 500

GroupHandler = Callable[["Platform", str, Event], Awaitable[None]]
BatchHandler = Callable[["Platform", str, Sequence[Event]], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Periodic:
    name: str
    every: Callable[[Settings], float]
    run: Callable[[Platform], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Group:
    name: str
    topics: Sequence[str]
    handle: GroupHandler
    handle_batch: BatchHandler | None = None
    # False for a group whose handler is idempotent by itself: no done-marker round
    # trips (a get and a set per event); a replay runs the handler again.
    dedupe: bool = True
    periodic: Periodic | None = None


class BatchAborted(Exception):
    """The event's batch did not finish (its flushing caller was cancelled)."""


class Batcher:
    """Gathers concurrent ``add`` calls into one ``flush`` call per topic.

    No task of its own: the first caller to find no flush under way waits
    ``linger_s`` and then flushes what has gathered (at most ``max_batch``
    per call) until nothing is left; the others wait for their batch's
    outcome, which they raise if it failed.
    """

    def __init__(
        self,
        flush: Callable[[str, list[Event]], Awaitable[None]],
        *,
        linger_s: float = BATCH_LINGER_S,
        max_batch: int = BATCH_MAX,
    ) -> None:
        self._flush = flush
        self._linger_s = linger_s
        self._max = max_batch
        self._waiting: list[tuple[str, Event, asyncio.Future[None]]] = []
        self._flushing = False
        self.batches = self.events = 0

    async def add(self, topic: str, event: Event) -> None:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((topic, event, done))
        if not self._flushing:
            self._flushing = True
            try:
                await asyncio.sleep(self._linger_s)
                while self._waiting:
                    await self._flush_some()
            except BaseException:  # cancelled: nobody is left to flush the others
                for _, _, other in self._waiting:
                    if not other.done():
                        other.set_exception(BatchAborted("batch cancelled"))
                self._waiting.clear()
                if done.done() and not done.cancelled():
                    done.exception()  # ours is not awaited now: mark it retrieved
                raise
            finally:
                self._flushing = False
        await done

    async def _flush_some(self) -> None:
        topic = self._waiting[0][0]
        batch = [w for w in self._waiting if w[0] == topic][: self._max]
        taken = {id(w) for w in batch}
        self._waiting = [w for w in self._waiting if id(w) not in taken]
        self.batches += 1
        self.events += len(batch)
        try:
            await self._flush(topic, [event for _, event, _ in batch])
        except BaseException as exc:
            error = exc if isinstance(exc, Exception) else BatchAborted("batch cancelled")
            for _, _, done in batch:
                if not done.done():
                    done.set_exception(error)
            if not isinstance(exc, Exception):
                raise
        else:
            for _, _, done in batch:
                if not done.done():
                    done.set_result(None)


class GroupRunner:
    def __init__(self, platform: Platform, group: Group) -> None:
        self.platform = platform
        self.group = group
        settings = platform.settings
        self.max_retries = settings.worker_max_retries
        self.backoff = settings.worker_retry_backoff_s
        self.batcher = None if group.handle_batch is None else Batcher(self._flush)

    async def _flush(self, topic: str, events: list[Event]) -> None:
        assert self.group.handle_batch is not None, "a batcher only for batch groups"
        await self.group.handle_batch(self.platform, topic, events)

    async def _handle(self, topic: str, event: Event, attempt: int) -> None:
        if self.batcher is not None and attempt == 0:
            await self.batcher.add(topic, event)
        elif self.group.handle_batch is not None:
            await self.group.handle_batch(self.platform, topic, [event])  # a retry: alone
        else:
            await self.group.handle(self.platform, topic, event)

    async def _dead_letter(
        self, topic: str, raw: bytes, event: Event | None, exc: Exception, *, attempts: int
    ) -> None:
        error = await dlq.send(
            self.platform.events,
            topic,
            raw,
            event=event,
            group=self.group.name,
            exc=exc,
            attempts=attempts,
            at_ms=int(time.time() * 1000),
        )
        self.platform.metrics.dead_letters.labels(self.group.name, topic, error).inc()

    async def run(self) -> None:
        """Consume (and run the group's periodic job) until cancelled."""
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(
                self.platform.events.consume(self.group.name, self.group.topics, self.process)
            )
            if self.group.periodic is not None:
                tasks.create_task(self._every(self.group.periodic))

    async def _every(self, job: Periodic) -> None:
        interval = max(0.05, job.every(self.platform.settings))
        while True:
            await asyncio.sleep(interval)
            try:
                await job.run(self.platform)
            except Exception:
                log.exception("periodic job failed", extra={"job": job.name})

    async def process(self, topic: str, raw: bytes) -> None:
        metrics = self.platform.metrics
        try:
            event = Event.decode(raw)
        except ValueError as exc:
            log.warning("poison message sent to DLQ", extra={"topic": topic, "reason": str(exc)})
            await self._dead_letter(topic, raw, None, exc, attempts=0)
            metrics.events_processed.labels(self.group.name, topic, "poison").inc()
            return
        done_key = keys.event_done(self.group.name, event.id) if self.group.dedupe else None
        if done_key is not None and await self.platform.cache.get(done_key) is not None:
            metrics.events_processed.labels(self.group.name, topic, "duplicate").inc()
            return
        started = time.perf_counter()
        for attempt in range(self.max_retries + 1):
            try:
                await self._handle(topic, event, attempt)
                break
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if attempt == self.max_retries:
                    log.exception(
                        "event failed after retries, sent to DLQ",
                        extra={"topic": topic, "event_id": event.id, "group": self.group.name},
                    )
                    await self._dead_letter(topic, raw, event, exc, attempts=attempt + 1)
                    metrics.events_processed.labels(self.group.name, topic, "dead_letter").inc()
                    return
                await asyncio.sleep(self.backoff * 2**attempt)
        if done_key is not None:
            await self.platform.cache.set(done_key, b"1", ttl=DONE_TTL_S)
        metrics.event_latency.labels(self.group.name, topic).observe(time.perf_counter() - started)
        metrics.events_processed.labels(self.group.name, topic, "ok").inc()
