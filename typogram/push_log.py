"""The ``PushLog`` port: a chat room's pushes numbered, logged and published in one step.

Each room counts its pushes (``keys.room_push_seq``) and keeps the newest in
a list (``keys.room_pushes``), every item ``b"<n> " + push``; the room's
history (``keys.room_history``) rides along. Published on the room channel,
a push carries its number (``protocol.numbered_payload``), which is how a
node joining a room or resuming a session finds gaps and duplicates
(``gateway.chat.rooms``, ``gateway.sessions.resume``). It acts on the same
keys as the ``Cache`` it is built over (read back with ``Cache.list_range``).
``tests/contract/test_push_log.py`` runs one suite against both adapters.

What is atomic, adapter by adapter
----------------------------------
Both check their arguments first (``check_append``): bad ones raise
``ValueError`` and change nothing.

* ``typogram.adapters.memory_scripts.MemoryPushLog``: the count, both list
  appends with their trims and the expiries are one step: nothing suspends
  in between, so no other caller sees or changes the keys half-way. The
  publication follows that step (``publish_numbered``) with no suspension
  before it, so publications leave in number order.
* ``typogram.adapters.redis_scripts.RedisPushLog``: one Lua script holds the
  count, both appends with their trims and the expiries; with a
  ``RedisPubSub`` on the same server and key prefix it also holds the
  PUBLISH, so no other command runs between the count and the publication.
  With any other pub/sub the publication follows the script, as in memory.

In neither is the step all or nothing past the argument checks: a key of
the wrong type fails the step where it is met and leaves what came before
it done (Redis does not roll a script back; in memory only the second list
is checked before the count), and a publication that fails after the step
leaves the push logged and numbered.
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
        appends are numbered 1, 2, … in the order they are stored. Bad arguments raise
        ``ValueError`` and store nothing (``check_append``); what one step covers in each
        adapter is in this module's docstring.

        ``publish=(pubsub, channel)``: then also publish ``value`` (a JSON object) numbered
        (``protocol.numbered_payload``, stamped with the time of the call) on ``channel``.
        When cache and pub/sub share a Redis server it is part of the atomic step (one
        script), so publications leave in number order; otherwise it follows the step
        (``publish_numbered``)."""
        ...


def check_append(max_len: int, ttl: float, also: tuple[str, bytes, int] | None) -> None:
    """The arguments of ``append_numbered`` every adapter checks before acting: both
    lists kept to at least one item, a positive TTL. Raises ``ValueError``."""
    if max_len < 1 or (also is not None and also[2] < 1):
        raise ValueError("max_len must be at least 1")
    if not ttl > 0:
        raise ValueError(f"ttl must be a positive number of seconds, got {ttl!r}")


async def publish_numbered(target: tuple[PubSub, str], number: int, value: bytes) -> None:
    """Publish ``value`` as push ``number`` of its room, stamped now (``append_numbered``)."""
    pubsub, channel = target
    await pubsub.publish(channel, numbered_payload(number, value, time.time()))
