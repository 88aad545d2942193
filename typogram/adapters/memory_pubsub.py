"""Embedded ``PubSub`` adapter: listeners called in-process on publish.

Not thread-safe: call it from the event loop that entered it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Self

from typogram.adapters.embedded import _Embedded
from typogram.adapters.listeners import deliver
from typogram.ports import Listener
from typogram.settings import Settings

# The name these adapters logged under before the split into modules.
log = logging.getLogger("typogram.adapters.memory")


class MemoryPubSub(_Embedded):
    """The ``PubSub`` port inside one process.

    ``publish`` calls each listener of the channel directly, before it
    returns, in subscription order. A listener that raises is logged and
    counted; the others still run. The same listener subscribed twice counts
    twice and must be unsubscribed twice.
    """

    def __init__(self) -> None:
        self._listeners: dict[str, list[Listener]] = {}
        self._published = self._delivered = self._listener_errors = 0

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        del settings
        return cls()

    def _release(self) -> None:
        self._listeners.clear()

    async def publish(self, channel: str, message: bytes) -> None:
        self._check()
        self._deliver(channel, message)

    async def publish_many(self, messages: Iterable[tuple[str, bytes]]) -> None:
        self._check()
        for channel, message in messages:
            self._deliver(channel, message)

    def _deliver(self, channel: str, message: bytes) -> None:
        self._published += 1
        delivered, failed = deliver(tuple(self._listeners.get(channel, ())), channel, message)
        self._delivered += delivered
        self._listener_errors += failed

    async def subscribe(self, channel: str, listener: Listener) -> None:
        self._check()
        self._listeners.setdefault(channel, []).append(listener)

    async def unsubscribe(self, channel: str, listener: Listener) -> None:
        """Remove one registration of ``listener``; unknown listeners are ignored."""
        self._check()
        listeners = self._listeners.get(channel)
        if listeners and listener in listeners:
            listeners.remove(listener)
            if not listeners:
                del self._listeners[channel]

    def statistics(self) -> dict[str, float]:
        return {
            "channels": len(self._listeners),
            "listeners": sum(len(v) for v in self._listeners.values()),
            "published": self._published,
            "delivered": self._delivered,
            "listener_errors": self._listener_errors,
        }
