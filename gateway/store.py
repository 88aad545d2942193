"""Sessions in the cache, so any node can resume them: records, frames, node leases.

Per session two keys (``keys.session_state``, ``keys.session_replay``), both
expiring ``ttl`` (resume window + three heartbeats) after the last write:

* the record: user, rooms, last seq, status, per-room watermarks, the owner
  node, whether that owner still collects pushes (``live``), and when;
* the frames: ``b"<seq> " + frame``, trimmed to what the node's own bounded
  ``ReplayBuffer`` keeps (``ws_replay_frames`` / ``ws_replay_bytes``).

Hot path: ``note`` only appends to an in-memory batch and wakes ``run``,
which every ``FLUSH_TICK_S`` writes all pending sessions with one
``Cache.write_batch`` (one pipelined round trip): the cost per delivered
frame is a list append, never a round trip.

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

from gateway.sessions import Session, Watermark
from typogram import keys
from typogram.ports import Cache

log = logging.getLogger(__name__)

NODE_LEASE_S: Final = 3.0
# Frames are written at most this often: one pipelined round trip per tick for all
# sessions. A crash loses at most the last tick, which a resume then sees as a gap.
FLUSH_TICK_S: Final = 0.02


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

    def watermark(self, room: str) -> Watermark | None:
        mark = self.marks.get(room)
        return None if mark is None else Watermark(mark[0], mark[1])


_encode = msgspec.json.Encoder().encode
_decode_record = msgspec.json.Decoder(SessionRecord).decode


@dataclass(eq=False)
class SessionStore:
    cache: Cache
    node: str
    ttl: float
    clock: Callable[[], float]
    _frames: dict[Session, list[bytes]] = field(default_factory=dict)
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    flushes: int = 0
    failures: int = 0
    draining: bool = False  # from now on every record is written as not live
    # One batch in flight at a time: two pipelines racing could reorder a session's frames.
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    # -- the hot path ----------------------------------------------------------

    def note(self, session: Session, seq: int, frame: bytes) -> None:
        """A session numbered a frame: write it (and the record) with the next batch."""
        pending = self._frames.get(session)
        if pending is None:
            pending = self._frames[session] = []
            self._wake.set()
        pending.append(b"%d %b" % (seq, frame))

    def touch(self, session: Session) -> None:
        """Rewrite the record (rooms or status changed, detached, keep-alive)."""
        if session not in self._frames:
            self._frames[session] = []
            self._wake.set()

    async def run(self) -> None:
        """Write batches until cancelled."""
        while True:
            await self._wake.wait()
            await asyncio.sleep(FLUSH_TICK_S)
            self._wake.clear()
            await self.flush()

    async def flush(self, stopped: frozenset[Session] = frozenset()) -> None:
        """Write every pending session now; those in ``stopped`` as no longer collected."""
        async with self._lock:
            await self._write(stopped)

    async def _write(self, stopped: frozenset[Session]) -> None:
        batch, self._frames = self._frames, {}
        lists: dict[str, tuple[list[bytes], int]] = {}
        values: dict[str, bytes] = {}
        for session, frames in batch.items():
            if session.ended and session not in stopped:
                continue  # forgotten meanwhile
            keep = max(1, len(session.replay))
            lists[keys.session_replay(session.id)] = (frames[-keep:], keep)
            live = not self.draining and session not in stopped
            values[keys.session_state(session.id)] = self._record(session, live)
        if not values:
            return
        try:
            await self.cache.write_batch(lists, values, self.ttl)
            self.flushes += 1
        except Exception:  # a lost batch only makes a later resume fall back to snapshots
            self.failures += 1
            log.exception("writing %d sessions to the cache failed", len(values))

    def _record(self, session: Session, live: bool) -> bytes:
        marks = {room: (m.level, sorted(m.ahead)) for room, m in session.marks.items()}
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
        )
        return _encode(record)

    # -- ends -------------------------------------------------------------------

    async def stop(self, sessions: list[Session]) -> None:
        """This node stops collecting for ``sessions``: write them (and all pending) now."""
        for session in sessions:
            self._frames.setdefault(session, [])
        await self.flush(frozenset(sessions))

    async def forget(self, session: Session) -> None:
        self._frames.pop(session, None)
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

    async def frames(self, session_id: str) -> list[tuple[int, bytes]]:
        out = []
        for item in await self.cache.list_range(keys.session_replay(session_id)):
            seq, _, frame = item.partition(b" ")
            out.append((int(seq), frame))
        return out

    # -- node leases ----------------------------------------------------------------

    async def renew_lease(self) -> None:
        await self.cache.set(keys.gateway_node(self.node), b"1", ttl=NODE_LEASE_S)

    async def drop_lease(self) -> None:
        await self.cache.delete(keys.gateway_node(self.node))

    async def alive(self, node: str) -> bool:
        return node == self.node or await self.cache.get(keys.gateway_node(node)) is not None

    def statistics(self) -> dict[str, Any]:
        return {"pending": len(self._frames), "flushes": self.flushes, "failures": self.failures}
