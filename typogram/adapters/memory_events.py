"""Embedded ``EventLog`` adapter: one bounded backlog per consumer group.

Kafka semantics without a broker, bounded by ``queue_size`` per group;
not thread-safe: call it from the event loop that entered it.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Self

from typogram.adapters.embedded import _Embedded
from typogram.ports import Event, Header, LogRecord
from typogram.settings import Settings
from typogram.topics import DLQ_SUFFIX

_Message = tuple[str, bytes, str | None]  # topic, value, key
# The most events one ``consume`` takes from its backlog at a time (as Kafka's
# ``max_poll_records``); they are handled side by side, one lane per key.
MAX_TAKE = 500


class _Group:
    """One consumer group's backlog: a deque bounded by the log's ``queue_size``.

    Two events instead of an ``asyncio.Queue`` so that closing the log can wake
    every waiting publisher and consumer at once.
    """

    __slots__ = ("backlog", "readable", "writable")

    def __init__(self) -> None:
        self.backlog: deque[_Message] = deque()
        self.readable = asyncio.Event()  # backlog not empty, or the log closed
        self.writable = asyncio.Event()  # backlog below its limit, or the log closed
        self.writable.set()


class InProcessEventLog(_Embedded):
    """The ``EventLog`` port inside one process: one bounded backlog per consumer group.

    Choices, since there is no broker:

    * An event goes to every group registered for its topic. A group is
      registered by its first ``consume`` and stays registered after that
      consumer stops, as a Kafka group keeps its offsets: a restarted
      consumer gets what was published meanwhile.
    * Events for a topic that no group has registered yet are dropped and
      counted (``dropped``): start consumers before producers.
    * When a group's backlog holds ``queue_size`` events, ``publish`` waits
      (back-pressure) until a consumer of that group takes one.
    * Consumers of one group share its backlog (competing consumers). A
      consumer takes what is queued (up to ``MAX_TAKE`` events) and hands
      the events of each key to its handler in publication order, the keys
      side by side (as Kafka hands over a poll's partitions), so a handler
      that batches concurrent calls (``workers.runtime``) gets batches here
      too.
    * Dead-letter topics (``<topic>.dlq``) also keep their newest
      ``queue_size`` records, headers included, for ``read_back``; other
      topics keep no history. Their records count as delivered, not dropped.
    * Nothing survives the process: this log is for one-process deployments.
    """

    def __init__(self, queue_size: int = 10_000) -> None:
        if queue_size < 1:
            raise ValueError("queue_size must be at least 1")
        self._queue_size = queue_size
        self._groups: dict[str, _Group] = {}
        self._routes: dict[str, set[str]] = defaultdict(set)  # topic -> groups
        self._published: dict[str, int] = defaultdict(int)
        self._history: dict[str, deque[LogRecord]] = {}
        self._consumed = self._dropped = 0

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        return cls(queue_size=settings.event_queue_size)

    def _release(self) -> None:
        """Waiting ``publish`` and running ``consume`` calls wake up and raise ``RuntimeError``."""
        for group in self._groups.values():
            group.backlog.clear()  # unread events are lost with the process anyway
            group.readable.set()
            group.writable.set()

    async def publish(self, topic: str, event: Event) -> None:
        await self.publish_raw(topic, event.encode(), key=event.key)

    async def publish_raw(
        self, topic: str, value: bytes, key: str | None = None, headers: Sequence[Header] = ()
    ) -> None:
        self._check()
        # One backlog per group keeps every key in publication order; ``consume``
        # keeps each key's events in that order; headers matter only to ``read_back``.
        kept = topic.endswith(DLQ_SUFFIX)
        if kept:
            history = self._history.get(topic)
            if history is None:
                history = self._history[topic] = deque(maxlen=self._queue_size)
            offset = history[-1].offset + 1 if history else 0
            stamp = int(time.time() * 1000)
            history.append(LogRecord(topic, 0, offset, stamp, key, value, tuple(headers)))
        names = self._routes.get(topic)
        self._published[topic] += 1
        if not names:
            self._dropped += 0 if kept else 1
            return
        for name in tuple(names):
            group = self._groups[name]
            while True:
                self._check()  # also after waiting: closed meanwhile, the event is lost
                if len(group.backlog) < self._queue_size:
                    break
                group.writable.clear()
                await group.writable.wait()
            group.backlog.append((topic, value, key))
            group.readable.set()

    async def consume(
        self,
        group: str,
        topics: Sequence[str],
        handler: Callable[[str, bytes], Awaitable[None]],
    ) -> None:
        """Hand each event of ``topics`` to ``handler``; runs until cancelled.

        Takes what is queued (at most ``MAX_TAKE``) and hands it over, each
        key's events one after another in publication order, the keys side by
        side. An event counts as committed once ``handler`` returns for it.
        If ``handler`` raises (or is cancelled), the events still running for
        other keys are cancelled, every event taken and not committed goes
        back to the front of the group's backlog in publication order and the
        error propagates, so the next consumer of the group receives them
        first. Raises ``RuntimeError`` when the log closes.
        """
        self._check()
        state = self._groups.get(group)
        if state is None:
            state = self._groups[group] = _Group()
        for topic in topics:
            self._routes[topic].add(group)
        while True:
            while not state.backlog:
                self._check()
                state.readable.clear()
                await state.readable.wait()
            backlog = state.backlog
            taken = [backlog.popleft() for _ in range(min(len(backlog), MAX_TAKE))]
            state.writable.set()
            await self._hand_over(state, taken, handler)

    async def _hand_over(
        self,
        state: _Group,
        taken: list[_Message],
        handler: Callable[[str, bytes], Awaitable[None]],
    ) -> None:
        done = [False] * len(taken)

        async def lane(positions: list[int]) -> None:
            for i in positions:
                topic, value, _ = taken[i]
                await handler(topic, value)
                done[i] = True
                self._consumed += 1

        lanes: dict[str | None, list[int]] = defaultdict(list)
        for i, (_, _, key) in enumerate(taken):
            lanes[key].append(i)
        try:
            if len(lanes) == 1:
                await lane(next(iter(lanes.values())))
            else:
                async with asyncio.TaskGroup() as handing:
                    for positions in lanes.values():
                        handing.create_task(lane(positions))
        except BaseException as exc:
            left = [
                message for message, committed in zip(taken, done, strict=True) if not committed
            ]
            state.backlog.extendleft(reversed(left))  # not committed: replay them first
            state.readable.set()
            if isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
                raise exc.exceptions[0] from exc  # the handler's own error
            raise

    async def read_back(self, topic: str, limit: int) -> list[LogRecord]:
        """The newest ``limit`` records of a dead-letter topic; any other topic reads empty."""
        self._check()
        history = self._history.get(topic, ())
        return list(history)[-limit:] if limit > 0 else []

    def consumer_lag(self) -> dict[tuple[str, str], int]:
        """Each group's backlog by topic, counted now (at most ``queue_size`` per group)."""
        lag = {(name, topic): 0 for topic, names in self._routes.items() for name in names}
        for name, group in self._groups.items():
            for topic, _, _ in group.backlog:
                lag[name, topic] = lag.get((name, topic), 0) + 1
        return lag

    def statistics(self) -> dict[str, float]:
        stats: dict[str, float] = {
            "published": sum(self._published.values()),
            "consumed": self._consumed,
            "dropped": self._dropped,
            "groups": len(self._groups),
            "queued": sum(len(g.backlog) for g in self._groups.values()),
        }
        for topic, count in self._published.items():
            stats[f"published.{topic}"] = count
        return stats
