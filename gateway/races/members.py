"""Local delivery of race and tournament pushes: which local sessions watch which channel.

The node subscribes to a channel (``keys.channel_race`` /
``keys.channel_tournament``) through the PubSub port while a local session
watches it (``add`` returns once subscribed: a caller that then forwards a
command to the race's owner is subscribed before the owner hears of it).
A race's pushes reach the watchers in one of three ways:

* **from this node** -- the node owns the race: ``gateway.races.pushes`` encodes
  each push once and hands it to ``deliver`` (no Redis round trip, no
  re-parse). The engine says which races it owns (``own`` / ``disown``); what
  still arrives from Redis for them (the owner's own countdown or result,
  every push of a race it adopted, a deposed owner's) is dropped in
  ``receive``: the owner's copy is authoritative and already delivered;
* **in a ``pushes`` message** on this node's race inbox -- an owner elsewhere
  that knows this node watches sends it each tick slice's snapshots in one
  message (``gateway.races.pushes``), handed to ``receive``;
* **on the race channel** -- everything else from an owner elsewhere, parsed
  once per node into a ``Push``.

Every watcher gets its own sequence number appended (``Session.deliver``),
as for chat rooms, so resume works the same. Sessions that ended are
dropped on ``prune``; a race channel whose ``race.result`` went out here
``FINISHED_LINGER_S`` ago is dropped whole on ``drop_finished`` (the gateway's
housekeeping): its sessions leave it and the node unsubscribes, so a
long-lived session that plays race after race does not pile up channels.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Final

from gateway.sessions.session import Session
from typogram.ports import Listener, PubSub
from typogram.protocol import ProtocolError, Push, parse_push

log = logging.getLogger(__name__)

RESULT: Final = "race.result"  # a race's last push
# How long a finished race's channel stays after its result (late duplicates, the
# result of a race that was taken over, reach its watchers meanwhile).
FINISHED_LINGER_S: Final = 5.0


class Watchers:
    def __init__(self, pubsub: PubSub, clock: Callable[[], float] = time.monotonic) -> None:
        self._pubsub = pubsub
        self._clock = clock
        self._finished: dict[str, float] = {}  # race channel -> when its result went out
        self._by_channel: dict[str, set[Session]] = {}
        self._subscribed: set[str] = set()
        self._local: set[str] = set()  # channels of races this node owns: delivered here
        self._lock = asyncio.Lock()  # (un)subscribes never cross
        self._listener: Listener = self._on_push
        self.echoes = 0  # pushes from Redis dropped because this node owns the race

    def __len__(self) -> int:
        return len(self._by_channel)

    def statistics(self) -> dict[str, int]:
        return {
            "race_channels": len(self._by_channel),
            "race_channels_subscribed": len(self._subscribed),
            "race_channels_local": len(self._local),
            "race_pushes_echoed": self.echoes,
        }

    def watching(self, channel: str, session: Session) -> bool:
        return session in self._by_channel.get(channel, ())

    def channels_of(self, session: Session) -> list[str]:
        return [c for c, members in self._by_channel.items() if session in members]

    def sessions(self) -> list[tuple[str, Session]]:
        return [(c, s) for c, members in self._by_channel.items() for s in members]

    def subscribed(self, channel: str) -> bool:
        return channel in self._subscribed

    async def add(self, channel: str, session: Session) -> None:
        self._by_channel.setdefault(channel, set()).add(session)
        await self._sync(channel)

    async def remove(self, channel: str, session: Session) -> None:
        members = self._by_channel.get(channel)
        if members is not None:
            members.discard(session)
            if not members:
                del self._by_channel[channel]
        await self._sync(channel)

    async def drop(self, channel: str) -> None:
        self._by_channel.pop(channel, None)
        await self._sync(channel)

    async def prune(self) -> None:
        """Forget ended sessions and unsubscribe channels nobody here watches any more."""
        for channel, members in list(self._by_channel.items()):
            gone = {s for s in members if s.ended}
            if gone:
                members -= gone
                if not members:
                    del self._by_channel[channel]
                await self._sync(channel)

    async def close(self) -> None:
        self._by_channel.clear()
        self._local.clear()
        self._finished.clear()
        for channel in list(self._subscribed):
            await self._sync(channel)

    # -- races owned here ------------------------------------------------------------------

    def own(self, channel: str) -> None:
        """This node now produces the pushes of ``channel``'s race: local watchers get
        them from ``deliver``; copies from Redis are dropped."""
        self._local.add(channel)

    def disown(self, channel: str) -> None:
        """Another node (or nobody) produces them now: take them from Redis again."""
        self._local.discard(channel)

    def deliver(self, channel: str, push: Push) -> None:
        """A push of a race this node owns, to its local watchers (encoded once)."""
        members = self._by_channel.get(channel)
        if members:
            for session in list(members):
                session.deliver(push)
            if push.type == RESULT:
                self._finished.setdefault(channel, self._clock())

    def receive(self, channel: str, push: Push) -> None:
        """A push from another node (the owner), to the local watchers."""
        members = self._by_channel.get(channel)
        if not members:
            return
        if channel in self._local:
            self.echoes += 1
            return
        for session in list(members):
            session.deliver(push)
        if push.type == RESULT:
            self._finished.setdefault(channel, self._clock())

    async def drop_finished(self, linger_s: float = FINISHED_LINGER_S) -> list[str]:
        """Drop the channels of races whose result went out ``linger_s`` ago; returns them."""
        cutoff = self._clock() - linger_s
        done = [channel for channel, at in self._finished.items() if at <= cutoff]
        for channel in done:
            del self._finished[channel]
            await self.drop(channel)
        return done

    # -- pub/sub -----------------------------------------------------------------------------

    async def _sync(self, channel: str) -> None:
        async with self._lock:
            wanted = channel in self._by_channel
            if wanted and channel not in self._subscribed:
                self._subscribed.add(channel)
                try:
                    await self._pubsub.subscribe(channel, self._listener)
                except BaseException:
                    self._subscribed.discard(channel)
                    raise
            elif not wanted and channel in self._subscribed:
                self._subscribed.discard(channel)
                await self._pubsub.unsubscribe(channel, self._listener)

    def _on_push(self, channel: str, payload: bytes) -> None:
        if not self._by_channel.get(channel):
            return
        if channel in self._local:  # checked before parsing: the echo costs no more
            self.echoes += 1
            return
        try:
            push = parse_push(payload)
        except ProtocolError as exc:
            log.warning("dropping malformed push on %s: %s", channel, exc.message)
            return
        self.receive(channel, push)
