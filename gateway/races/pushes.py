"""Where the pushes of the races a node owns go: its own watchers at once, Redis only if needed.

The owner encodes each ``Broadcast`` once (``push_payload``) and

1. hands it to this node's watchers (``gateway.races.members.Watchers.deliver``):
   no Redis round trip and no second parse for them -- local sessions get it
   before the owner even writes to Redis (what comes back from Redis for a
   race the node owns is dropped there);
2. sends it to the other nodes that watch the race. A ``race.state`` goes to
   each such node's race inbox (``keys.channel_race_node``), the snapshots of
   one tick slice together in ONE ``pushes`` message per node
   (``gateway.races.inbox.pushes_message``): one PUBLISH and one pub/sub
   delivery per node and slice instead of one per race. It goes nowhere
   when no other node watches. Other pushes (the countdown, the result:
   rare) are PUBLISHed on the race's channel ``ch:race:{id}``, which every
   node watching the race subscribes to.

Which other nodes watch (``watched_from``): a node subscribes to the channel
of a race it does not own only in two ways (``gateway.races.service``): before it
forwards a command for the race to the owner, or when the owner's matchmaker
sends it a ``match.found`` for the race. So the owner learns of every
watching node before that node needs a push: from the sender of each
forwarded command (``RaceInbox.on_forwarded``) and from the nodes it sends
matches to. A node that stops watching is not forgotten (what it is sent
is dropped there). A race this node adopted (failover) may have watchers it
never heard of: all of its pushes go on its channel, as before this module.

Order: every push of a race comes from its owner, in the order the core
emitted it. Local watchers get them in that order, synchronously. Other
nodes get them in PUBLISH order: every publish joins one queue that one
sender task empties in order through one connection (what queued up while
a round trip was out goes in the next single call), and Redis hands one
publisher's messages to one subscriber connection in order, across channels
too; within a slice the channel messages (a ``race.result``) are queued
before the node batches (the snapshot that follows it). The ticker queues
without waiting (``publish_soon``): a slow round trip delays what it carries,
never the next slice. Each watcher numbers what it gets
(``Session.deliver``), so resume is unchanged.

Without local watchers (``local=None``, as in unit tests of the ticker and
engine) every push is PUBLISHed on its race channel.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any, Final

from gateway.races.inbox import pushes_message
from gateway.races.members import Watchers
from typogram import keys
from typogram.ports import PubSub
from typogram.protocol import Push, push_payload
from typogram.tasks import Supervisor

STATE: Final = "race.state"  # the push sent per node (or kept here); the others go on the channel
PUSHES_PER_MESSAGE: Final = 128  # bounds one ``pushes`` message (~60 KB of snapshots)
CLOSE_WAIT_S: Final = 2.0  # ``aclose`` waits this long for the queued pushes to go out
log = logging.getLogger(__name__)


class RacePushes:
    def __init__(
        self,
        pubsub: PubSub,
        *,
        node_id: str,
        local: Watchers | None = None,
        tasks: Supervisor | None = None,
    ) -> None:
        self._pubsub = pubsub
        self._tasks = tasks if tasks is not None else Supervisor()
        self._node = node_id
        self._local = local
        # race -> other nodes known to watch it; None: unknown (adopted), use its channel
        self._remote: dict[str, set[str] | None] = {}
        self._outbox: dict[str, list[tuple[str, str, bytes]]] = {}  # node -> this slice's
        self.published = 0  # PUBLISH commands sent
        self.batched = 0  # race.state pushes sent inside ``pushes`` messages
        self.kept = 0  # race.state pushes no other node needed
        self.backlog = 0  # PUBLISH commands queued and not yet answered by Redis
        self._queued: deque[tuple[list[tuple[str, bytes]], asyncio.Future[None]]] = deque()
        self._sender: asyncio.Task[None] | None = None

    def __len__(self) -> int:
        return len(self._remote)

    def track(self, race_id: str, *, adopted: bool = False) -> None:
        """This node owns ``race_id`` now; ``adopted``: others may watch it unannounced."""
        if race_id not in self._remote or adopted:
            self._remote[race_id] = None if adopted else set()
        if self._local is not None:
            self._local.own(keys.channel_race(race_id))

    def forget(self, race_id: str) -> None:
        """This node no longer owns ``race_id`` (finished, handed back, or lost)."""
        self._remote.pop(race_id, None)
        if self._local is not None:
            self._local.disown(keys.channel_race(race_id))

    def watched_from(self, race_id: str, node: str) -> None:
        """``node`` watches ``race_id`` (it forwarded a command for it, or got its match)."""
        nodes = self._remote.get(race_id)
        if nodes is not None and node != self._node:
            nodes.add(node)

    def remote(self, race_id: str) -> frozenset[str] | None:
        """The other nodes known to watch ``race_id``; ``None`` when unknown (adopted)."""
        nodes = self._remote.get(race_id, None)
        return None if nodes is None else frozenset(nodes)

    def prepare(self, race_id: str, kind: str, data: Mapping[str, Any]) -> tuple[str, bytes] | None:
        """Deliver a push to local watchers now and queue it for the nodes that watch;
        returns the ``(channel, payload)`` to PUBLISH on the race channel, if any.
        ``publish`` sends both."""
        payload = push_payload(kind, data)
        channel = keys.channel_race(race_id)
        local = self._local
        if local is None:
            return channel, payload
        local.deliver(channel, Push(kind, payload))
        nodes = self._remote.get(race_id)  # None: adopted or not tracked -- the channel
        if kind != STATE or nodes is None:
            return channel, payload
        if not nodes:
            self.kept += 1
        for node in nodes:
            self._outbox.setdefault(node, []).append((race_id, kind, payload))
        return None

    async def send(self, race_id: str, kind: str, data: Mapping[str, Any]) -> None:
        """One push: local watchers now, then whatever other nodes need (awaited)."""
        out = self.prepare(race_id, kind, data)
        await self.publish([out] if out is not None else [])

    async def publish(self, messages: Iterable[tuple[str, bytes]]) -> None:
        """``publish_soon``, then wait until Redis took it (and everything queued before)."""
        sent = self.publish_soon(messages)
        if sent is not None:
            await sent

    def publish_soon(self, messages: Iterable[tuple[str, bytes]]) -> asyncio.Future[None] | None:
        """Queue ``messages`` (from ``prepare``), then one ``pushes`` message per node with
        what ``prepare`` queued for it, behind what is already queued; the sender
        task PUBLISHes them in that order. Returns a future done once they are
        published (None: nothing to publish). The ticker does not wait: a slow round
        trip never holds the next slice back."""
        batch = list(messages)
        outbox, self._outbox = self._outbox, {}
        for node, entries in outbox.items():
            inbox = keys.channel_race_node(node)
            for start in range(0, len(entries), PUSHES_PER_MESSAGE):
                part = entries[start : start + PUSHES_PER_MESSAGE]
                batch.append((inbox, pushes_message(part)))
                self.batched += len(part)
        if not batch:
            return None
        sent: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queued.append((batch, sent))
        self.backlog += len(batch)
        if self._sender is None or self._sender.done():
            self._sender = self._tasks.start("race-pushes", self._send_queued())
        return sent

    async def _send_queued(self) -> None:
        """PUBLISH what is queued, in order; what queued up meanwhile goes in one call."""
        queued = self._queued
        while queued:
            batch: list[tuple[str, bytes]] = []
            waiting: list[asyncio.Future[None]] = []
            while queued:
                part, sent = queued.popleft()
                batch += part
                waiting.append(sent)
            try:
                await self._pubsub.publish_many(batch)
            except Exception as exc:
                for sent in waiting:
                    if not sent.done():
                        sent.set_exception(exc)
                        sent.exception()  # marked retrieved: the ticker does not wait
                log.warning("race pushes not published: %r", exc)
            else:
                self.published += len(batch)
                for sent in waiting:
                    if not sent.done():
                        sent.set_result(None)
            finally:
                self.backlog -= len(batch)

    async def drained(self) -> None:
        """Wait until everything queued so far is published (or failed)."""
        sender = self._sender
        if sender is not None and not sender.done():
            await asyncio.wait([sender])

    async def aclose(self) -> None:
        """Publish what is queued (waiting at most ``CLOSE_WAIT_S``), then stop the sender."""
        sender = self._sender
        if sender is None or sender.done():
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(sender), CLOSE_WAIT_S)
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sender

    def received(self, race_id: str, kind: str, payload: bytes) -> None:
        """A push another node's owner sent this node in a ``pushes`` message."""
        if self._local is not None:
            self._local.receive(keys.channel_race(race_id), Push(kind, payload))
