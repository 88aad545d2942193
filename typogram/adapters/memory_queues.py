"""Embedded ``MatchQueues`` adapter (rules in ``typogram.match_queues``).

No ``await`` inside a change, so each call is one atomic step. Not
thread-safe: call it from the event loop that entered it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from typogram.adapters.embedded import _Embedded
from typogram.match_queues import (
    QUEUED,
    RACING,
    QueuedTicket,
    check_entry,
    check_group,
    check_id,
    check_ttl,
)


class MemoryMatchQueues(_Embedded):
    """The ``MatchQueues`` port in dicts, markers expiring on ``clock``."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._queues: dict[str, dict[str, QueuedTicket]] = {}
        self._players: dict[str, tuple[str, float]] = {}  # user -> (marker, expires)
        # Taken tickets, oldest take first: ticket -> (user, race, expires) (rule 3a).
        self._outcomes: dict[str, tuple[str, str, float]] = {}
        self._enqueued = self._taken = self._refused = 0

    def _release(self) -> None:
        self._queues.clear()
        self._players.clear()
        self._outcomes.clear()

    def flush(self) -> None:
        """Forget every ticket and marker, as ``FLUSHDB`` does to Redis
        (``MemoryCache.flush``); the counts in ``statistics`` stay."""
        self._check()
        self._release()

    def _marker(self, user_id: str) -> str | None:
        found = self._players.get(user_id)
        if found is None:
            return None
        if found[1] <= self._clock():
            del self._players[user_id]
            return None
        return found[0]

    def _mark(self, user_id: str, marker: str, ttl_s: float) -> None:
        self._players[user_id] = (marker, self._clock() + ttl_s)

    async def enqueue(self, entry: QueuedTicket, ttl_s: float) -> str | None:
        self._check()
        check_entry(entry)
        check_ttl(ttl_s)
        user = entry.ticket.user_id
        current = self._marker(user)
        if current is not None:
            return current
        self._mark(user, QUEUED + entry.ticket.ticket_id, ttl_s)
        self._queues.setdefault(entry.queue, {})[entry.ticket.ticket_id] = entry
        self._enqueued += 1
        return None

    async def cancel(self, user_id: str, ticket_id: str) -> bool:
        self._check()
        for name, queue in self._queues.items():
            entry = queue.get(ticket_id)
            if entry is not None and entry.ticket.user_id == user_id:
                del queue[ticket_id]
                if not queue:
                    del self._queues[name]
                if self._marker(user_id) == QUEUED + ticket_id:
                    del self._players[user_id]
                return True
        return False

    async def queues(self) -> list[str]:
        self._check()
        return sorted(self._queues)

    async def tickets(self, queue: str) -> list[QueuedTicket]:
        self._check()
        waiting = self._queues.get(queue, {}).values()
        return sorted(waiting, key=lambda e: (e.ticket.enqueued_at_ms, e.ticket.ticket_id))

    async def take(
        self, queue: str, entries: Sequence[QueuedTicket], race_id: str, ttl_s: float
    ) -> bool:
        self._check()
        check_group(queue, entries)
        check_id("race id", race_id)
        check_ttl(ttl_s)
        waiting = self._queues.get(queue, {})
        for entry in entries:
            t = entry.ticket
            marker = self._marker(t.user_id)
            if t.ticket_id not in waiting or marker not in (None, QUEUED + t.ticket_id):
                self._refused += 1
                return False
        self._sweep()
        expires = self._clock() + ttl_s
        for entry in entries:
            t = entry.ticket
            del waiting[t.ticket_id]
            self._mark(t.user_id, RACING + race_id, ttl_s)
            self._outcomes.pop(t.ticket_id, None)  # (re)inserted last: the sweep's order
            self._outcomes[t.ticket_id] = (t.user_id, race_id, expires)
        if not waiting:
            self._queues.pop(queue, None)
        self._taken += 1
        return True

    def _sweep(self) -> None:
        """Forget the outcomes that lapsed, oldest first, so the dict holds about one TTL
        of takes (an outcome kept longer than the ones after it holds the sweep up)."""
        now = self._clock()
        while self._outcomes:
            oldest = next(iter(self._outcomes))
            if self._outcomes[oldest][2] > now:
                return
            del self._outcomes[oldest]

    async def matched(self, user_id: str, ticket_id: str) -> str | None:
        self._check()
        found = self._outcomes.get(ticket_id)
        if found is None or found[0] != user_id or found[2] <= self._clock():
            return None
        return found[1]

    async def claim(self, user_id: str, race_id: str, ttl_s: float) -> str | None:
        self._check()
        check_id("user id", user_id)
        check_id("race id", race_id)
        check_ttl(ttl_s)
        current = self._marker(user_id)
        if current is not None and current != RACING + race_id:
            return current
        self._mark(user_id, RACING + race_id, ttl_s)
        return None

    async def where(self, user_id: str) -> str | None:
        self._check()
        return self._marker(user_id)

    async def release(self, user_id: str, race_id: str) -> None:
        self._check()
        if self._marker(user_id) == RACING + race_id:
            del self._players[user_id]

    def statistics(self) -> dict[str, float]:
        return {
            "enqueued": self._enqueued,
            "taken": self._taken,
            "take_refused": self._refused,
        }
