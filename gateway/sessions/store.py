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

Fencing: a record is only ever written through its session's owner lease
(``keys.session_owner``, holding the node id, expiring with the record), in
the same atomic step that checks the lease (``Cache.write_held``). A node
starting or taking over a session ``claim``s it; a node whose write finds
the lease held by another (it was taken over while it was slow, or thought
dead) writes nothing and is told (``fenced``): it hands the session over like
one asked to, and never deletes a record it no longer owns.
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
    # Told the id of a session whose record another node now owns (``Hub`` hands it over);
    # given by the composition root (``gateway.server``).
    fenced: Callable[[str], None] = lambda session_id: None
    fences: int = 0

    async def claim(self, session_id: str) -> None:
        """This node owns ``session_id`` from now on: later writes by any other node are
        refused (the lease is set unconditionally: a takeover fences the previous owner)."""
        await self.cache.set(keys.session_owner(session_id), self.node.encode(), ttl=self.ttl)

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
        writes: dict[str, tuple[str, bytes] | None] = {}
        owners: dict[str, str] = {}
        for session, collected in batch.items():
            if session.ended and collected:
                continue  # forgotten meanwhile
            live = collected and not self.draining
            owner = keys.session_owner(session.id)
            writes[owner] = (keys.session_state(session.id), self._record(session, live))
            owners[owner] = session.id
        if not writes:
            return
        try:
            lost = await self.cache.write_held(
                self.node.encode(), writes, ttl=self.ttl, lease_ttl=self.ttl
            )
            self.flushes += 1
        except Exception:  # a lost batch only makes a later resume fall back to snapshots
            self.failures += 1
            log.exception("writing %d sessions to the cache failed", len(writes))
            return
        for owner in lost:
            self.fences += 1
            log.info("session %s is owned by another node now", owners[owner])
            self.fenced(owners[owner])

    def _record(self, session: Session, live: bool) -> bytes:
        marks = {
            room: (m.level, sorted(m.ahead) if m.ahead else []) for room, m in session.marks.items()
        }
        limit = LIVE_TAIL if live and session.link is not None else len(session.replay)
        seqs, rooms, numbers = session.replay.newest(limit)
        sources = [room for room in dict.fromkeys(rooms) if room is not None]
        index: dict[str | None, int] = {room: i for i, room in enumerate(sources)}
        index[None] = -1
        tail = list(zip(seqs, map(index.__getitem__, rooms), numbers, strict=True))
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
            sources=sources,
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
        """Delete the session's record, unless another node owns it now."""
        self._pending.pop(session, None)
        owner = keys.session_owner(session.id)
        lost = await self.cache.write_held(self.node.encode(), {owner: None}, release=True)
        if not lost or await self.cache.get(owner) is None:
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
        return {
            "pending": len(self._pending),
            "flushes": self.flushes,
            "failures": self.failures,
            "fences": self.fences,
        }
