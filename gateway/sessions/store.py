"""Sessions in the cache, so any node can resume them: cursor records and node leases.

Per session one key (``keys.session_state``), expiring ``ttl`` (resume window
+ three heartbeats) after the last write: a small *cursor* record with the
user, rooms, last seq, status, per-room watermarks, the owner node, whether
that owner still collects pushes (``live``), when, and the ``tail``: for the
newest frames, which room push each one was (room index, push number; ``-1``
for a frame that is not a room push). Frames themselves are never written:
another node rebuilds room pushes from the rooms' push logs
(``gateway.sessions.resume``).

Cadence: a record is written when something about the session changes that
a resume needs (start, rooms, status, detach), every heartbeat while
attached (the gateway's node-wide heartbeat), and when this node stops
collecting for it (drain, handover: ``stop``, with the whole
replay buffer in the tail). A delivered frame costs nothing here. ``touch``
only marks the session; ``run`` writes all marked ones every
``FLUSH_TICK_S`` with one ``Cache.write_batch``.

Each node holds a lease (``keys.gateway_node``, ``NODE_LEASE_S``) refreshed
by the gateway's sweeper: a record whose owner's lease is gone is no longer
collected by anyone, however ``live`` it says it is.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

import msgspec

from gateway.sessions.session import Session, Watermark
from typogram import keys
from typogram.ports import Cache

log = logging.getLogger(__name__)

NODE_LEASE_S: Final = 3.0
# Marked records are written at most this often: one round trip per tick for all.
FLUSH_TICK_S: Final = 0.02
# Tail entries in a record written while this node still collects and the client is
# attached (heartbeat, room change): only frames possibly still in flight matter.
LIVE_TAIL: Final = 16


class SessionRecord(msgspec.Struct):
    id: str
    user: str
    node: str
    live: bool
    at: float
    seq: int = 0
    status: str = "online"
    rooms: list[str] = msgspec.field(default_factory=list)
    marks: dict[str, tuple[int, list[int]]] = msgspec.field(default_factory=dict)
    sources: list[str] = msgspec.field(default_factory=list)  # rooms the tail names
    tail: list[tuple[int, int, int]] = msgspec.field(default_factory=list)  # seq, source, n

    def watermark(self, room: str) -> Watermark | None:
        mark = self.marks.get(room)
        return None if mark is None else Watermark(mark[0], mark[1])

    def origins(self) -> dict[int, tuple[str, int] | None]:
        """What each frame in the tail was: ``(room, push number)``, or ``None``."""
        return {
            seq: (self.sources[source], number) if 0 <= source < len(self.sources) else None
            for seq, source, number in self.tail
        }


_encode = msgspec.json.Encoder().encode
_decode_record = msgspec.json.Decoder(SessionRecord).decode


@dataclass(eq=False)
class SessionStore:
    cache: Cache
    node: str
    ttl: float
    clock: Callable[[], float]
    # Sessions to write with the next batch -> whether this node still collects for them.
    _pending: dict[Session, bool] = field(default_factory=dict)
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    flushes: int = 0
    failures: int = 0
    draining: bool = False  # from now on every record is written as not live
    # One batch in flight at a time: two pipelines racing could reorder a session's records.
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def touch(self, session: Session) -> None:
        """Rewrite the record with the next batch (start, rooms, status, detach, heartbeat)."""
        if session not in self._pending:
            self._pending[session] = True
            self._wake.set()

    async def run(self) -> None:
        """Write batches until cancelled."""
        while True:
            await self._wake.wait()
            await asyncio.sleep(FLUSH_TICK_S)
            self._wake.clear()
            await self.flush()

    async def flush(self) -> None:
        """Write every pending session now."""
        async with self._lock:
            await self._write()

    async def _write(self) -> None:
        batch, self._pending = self._pending, {}
        values: dict[str, bytes] = {}
        for session, collected in batch.items():
            if session.ended and collected:
                continue  # forgotten meanwhile
            live = collected and not self.draining
            values[keys.session_state(session.id)] = self._record(session, live)
        if not values:
            return
        try:
            await self.cache.write_batch({}, values, self.ttl)
            self.flushes += 1
        except Exception:  # a lost batch only makes a later resume fall back to snapshots
            self.failures += 1
            log.exception("writing %d sessions to the cache failed", len(values))

    def _record(self, session: Session, live: bool) -> bytes:
        marks = {room: (m.level, sorted(m.ahead)) for room, m in session.marks.items()}
        limit = LIVE_TAIL if live and session.link is not None else len(session.replay)
        sources: dict[str, int] = {}
        tail = []
        for seq, origin in session.replay.origins(limit):
            if origin is None:
                tail.append((seq, -1, 0))
            else:
                tail.append((seq, sources.setdefault(origin[0], len(sources)), origin[1]))
        record = SessionRecord(
            id=session.id,
            user=session.user.id,
            node=self.node,
            live=live,
            at=self.clock(),
            seq=session.seq,
            status=session.status,
            rooms=sorted(session.rooms),
            marks=marks,
            sources=list(sources),
            tail=tail,
        )
        return _encode(record)

    # -- ends -------------------------------------------------------------------

    async def stop(self, sessions: list[Session]) -> None:
        """This node stops collecting for ``sessions``: write them (and all pending) now."""
        for session in sessions:
            self._pending[session] = False
        await self.flush()

    async def forget(self, session: Session) -> None:
        self._pending.pop(session, None)
        await self.cache.delete(keys.session_state(session.id), keys.session_replay(session.id))

    # -- reading (another node resumes) ----------------------------------------------

    async def load(self, session_id: str) -> SessionRecord | None:
        raw = await self.cache.get(keys.session_state(session_id))
        if raw is None:
            return None
        try:
            return _decode_record(raw)
        except msgspec.DecodeError:
            log.warning("unreadable session record %s", session_id)
            return None

    # -- node leases ----------------------------------------------------------------

    async def renew_lease(self) -> None:
        await self.cache.set(keys.gateway_node(self.node), b"1", ttl=NODE_LEASE_S)

    async def drop_lease(self) -> None:
        await self.cache.delete(keys.gateway_node(self.node))

    async def alive(self, node: str) -> bool:
        return node == self.node or await self.cache.get(keys.gateway_node(node)) is not None

    def statistics(self) -> dict[str, Any]:
        return {"pending": len(self._pending), "flushes": self.flushes, "failures": self.failures}
