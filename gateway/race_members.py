"""Local delivery of race and tournament pushes: which local sessions watch which channel.

The node subscribes to a channel (``keys.channel_race`` / ``keys.channel_tournament``)
through the PubSub port only while a local session watches it. Each payload
is parsed once per node into a ``Push`` and every watcher gets its own
sequence number appended (``Session.deliver``), as for chat rooms.
Sessions that ended are dropped on the next delivery or ``prune``.
"""

from __future__ import annotations

import asyncio
import logging

from gateway.sessions import Session
from typogram.ports import Listener, PubSub
from typogram.protocol import ProtocolError, parse_push

log = logging.getLogger(__name__)


class Watchers:
    def __init__(self, pubsub: PubSub) -> None:
        self._pubsub = pubsub
        self._by_channel: dict[str, set[Session]] = {}
        self._subscribed: set[str] = set()
        self._lock = asyncio.Lock()  # (un)subscribes never cross
        self._listener: Listener = self._on_push

    def __len__(self) -> int:
        return len(self._by_channel)

    def watching(self, channel: str, session: Session) -> bool:
        return session in self._by_channel.get(channel, ())

    def channels_of(self, session: Session) -> list[str]:
        return [c for c, members in self._by_channel.items() if session in members]

    def sessions(self) -> list[tuple[str, Session]]:
        return [(c, s) for c, members in self._by_channel.items() for s in members]

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
        for channel in list(self._subscribed):
            await self._sync(channel)

    async def _sync(self, channel: str) -> None:
        async with self._lock:
            wanted = channel in self._by_channel
            if wanted and channel not in self._subscribed:
                self._subscribed.add(channel)
                await self._pubsub.subscribe(channel, self._listener)
            elif not wanted and channel in self._subscribed:
                self._subscribed.discard(channel)
                await self._pubsub.unsubscribe(channel, self._listener)

    def _on_push(self, channel: str, payload: bytes) -> None:
        members = self._by_channel.get(channel)
        if not members:
            return
        try:
            push = parse_push(payload)
        except ProtocolError as exc:
            log.warning("dropping malformed push on %s: %s", channel, exc.message)
            return
        for session in list(members):
            session.deliver(push)
