"""The ``PushLog`` port: a chat room's pushes numbered, logged and published in one step.

Each room counts its pushes (``keys.room_push_seq``) and keeps the newest in
a list (``keys.room_pushes``), every item ``b"<n> " + push``; the room's
history (``keys.room_history``) rides along. Published on the room channel,
a push carries its number (``protocol.numbered_payload``), which is how a
node joining a room or resuming a session finds gaps and duplicates
(``gateway.chat.rooms``, ``gateway.sessions.resume``). It acts on the same
keys as the ``Cache`` it is built over (read back with ``Cache.list_range``):
``typogram.adapters.memory_scripts.MemoryPushLog`` and
``typogram.adapters.redis_scripts.RedisPushLog`` (one Lua script that also
publishes when cache and pub/sub share a server);
``tests/contract/test_push_log.py`` runs one suite against both.
"""

from __future__ import annotations

import time
from typing import Protocol

from typogram.ports import PubSub
from typogram.protocol import numbered_payload


class PushLog(Protocol):
    async def append_numbered(
        self,
        counter: str,
        key: str,
        value: bytes,
        max_len: int,
        ttl: float,
        *,
        also: tuple[str, bytes, int] | None = None,
        publish: tuple[PubSub, str] | None = None,
    ) -> int:
        """Atomically add 1 to ``counter`` (giving n) and append ``b"<n> " + value`` to list
        ``key`` kept to its newest ``max_len``; both keys expire ``ttl`` after this call.
        ``also=(list, item, max_len)`` appends ``b"<n> " + item`` to a second list, kept
        to its ``max_len``, in the same atomic step (its TTL is left alone). Returns n:
        appends are numbered 1, 2, … in the order they are stored. Raises and stores
        nothing when it fails.

        ``publish=(pubsub, channel)``: then also publish ``value`` (a JSON object) numbered
        (``protocol.numbered_payload``, stamped with the time of the call) on ``channel``.
        When cache and pub/sub share a server it is part of the atomic step (Redis: one
        script), so publications leave in number order; otherwise it follows the step
        (``publish_numbered``)."""
        ...


async def publish_numbered(target: tuple[PubSub, str], number: int, value: bytes) -> None:
    """Publish ``value`` as push ``number`` of its room, stamped now (``append_numbered``)."""
    pubsub, channel = target
    await pubsub.publish(channel, numbered_payload(number, value, time.time()))
