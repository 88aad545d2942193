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
replay buffer in the tail). ``touch`` only marks the session; ``run`` writes
all touched ones every ``FLUSH_TICK_S`` in one round trip.

Between two records, every numbered frame ``mark``s the session: with the
same tick, only what a frame changes (seq, watermarks, tail) is written to a
second key (``keys.session_mark``), a ``SessionMark`` that names the record
it continues (``base``: the record's ``at``) and its node. All the tick's
marks are one ``Cache.write_batch`` of plain writes: no lease check, no
script, no record rebuilt. Unfenced, hence read with care: ``load`` lays a
mark over the record only when it continues that very record (same node,
same ``at``) and is ahead of it, so a mark of an older record, of a node
fenced meanwhile or of a failed record write is ignored (the record alone
is then what a resume has, as before marks existed). A node that was only slow
learns it was fenced at its next record write (the heartbeat at the latest);
until then its marks may overwrite the new owner's, whose next resume then
goes by its record alone.

Each node holds a lease (``keys.gateway_node``, ``NODE_LEASE_S``) refreshed
by the gateway's sweeper: a record whose owner's lease is gone is no longer
collected by anyone, however ``live`` it says it is.

Fencing: a record is only ever written through its session's owner lease
(``keys.session_owner``, holding the node id, expiring with the record), in
the same atomic step that checks the lease (``FencedWrites.write_held``). A node
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
from typogram.fencing import FencedWrites
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

    def continue_with(self, mark: SessionMark) -> None:
        """Lay ``mark`` over this record when it continues it (see the module doc)."""
        if self.live and mark.node == self.node and mark.base == self.at and mark.seq > self.seq:
            self.at, self.seq, self.marks = mark.at, mark.seq, mark.marks
            self.sources, self.tail = _indexed(mark.seqs, mark.rooms, mark.numbers)

    def origins(self) -> dict[int, tuple[str, int] | None]:
        """What each frame in the tail was: ``(room, push number)``, or ``None``."""
        return {
            seq: (self.sources[source], number) if 0 <= source < len(self.sources) else None
            for seq, source, number in self.tail
        }


class SessionMark(msgspec.Struct, array_like=True):
    """What numbered frames changed since the record written at ``base`` by ``node``.

    The tail as ``ReplayBuffer.newest`` gives it (seqs, rooms or ``None``, numbers):
    written per numbered frame, so not indexed by room as a record's is."""

    base: float
    node: str
    at: float
    seq: int
    marks: dict[str, tuple[int, list[int]]]
    seqs: list[int]
    rooms: list[str | None]
    numbers: list[int]


_encode = msgspec.json.Encoder().encode
_decode_record = msgspec.json.Decoder(SessionRecord).decode
_decode_mark = msgspec.json.Decoder(SessionMark).decode


@dataclass(eq=False)
class SessionStore:
    cache: Cache
    fencing: FencedWrites  # over ``cache``: records are written under the owner lease
    node: str
    ttl: float
    clock: Callable[[], float]
    # Sessions to write with the next batch -> whether this node still collects for them.
    _pending: dict[Session, bool] = field(default_factory=dict)
    # Sessions whose numbered frames to mark with the next batch (unless in ``_pending``).
    _marked: set[Session] = field(default_factory=set)
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

    def mark(self, session: Session) -> None:
        """A numbered frame: write the session's seq, watermarks and tail with the next
        batch (as a ``SessionMark``; a touched session gets its whole record instead)."""
        marked = self._marked
        if session not in marked:
            marked.add(session)
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
        marked, self._marked = self._marked, set()
        now = self.clock()
        await self._write_records(batch, now)
        marks: dict[str, bytes] = {}
        for session in () if self.draining else marked:  # a draining node's records are exact
            if session in batch or session.ended or not session.recorded_at:
                continue  # written whole above, forgotten, or no record to continue
            marks[keys.session_mark(session.id)] = self._mark(session, now)
        if not marks:
            return
        try:
            await self.cache.write_batch({}, marks, self.ttl)
        except Exception:  # a lost mark only makes a later resume fall back to snapshots
            self.failures += 1
            log.exception("marking %d sessions in the cache failed", len(marks))

    async def _write_records(self, batch: dict[Session, bool], now: float) -> None:
        writes: dict[str, tuple[str, bytes] | None] = {}
        owners: dict[str, Session] = {}
        for session, collected in batch.items():
            if session.ended and collected:
                continue  # forgotten meanwhile
            live = collected and not self.draining
            owner = keys.session_owner(session.id)
            writes[owner] = (keys.session_state(session.id), self._record(session, live, now))
            owners[owner] = session
        if not writes:
            return
        try:
            lost = await self.fencing.write_held(
                self.node.encode(), writes, ttl=self.ttl, lease_ttl=self.ttl
            )
            self.flushes += 1
        except Exception:  # a lost batch only makes a later resume fall back to snapshots
            self.failures += 1
            log.exception("writing %d sessions to the cache failed", len(writes))
            for session in owners.values():
                session.recorded_at = 0.0  # which record is there is unknown: mark none
            return
        for session in owners.values():
            session.recorded_at = now
        for owner in lost:
            self.fences += 1
            session_id = owners[owner].id
            log.info("session %s is owned by another node now", session_id)
            self.fenced(session_id)

    def _record(self, session: Session, live: bool, now: float) -> bytes:
        seqs, rooms, numbers = session.replay.newest(_tail_length(session, live))
        sources, tail = _indexed(seqs, rooms, numbers)
        record = SessionRecord(
            id=session.id,
            user=session.user.id,
            node=self.node,
            live=live,
            at=now,
            seq=session.seq,
            status=session.status,
            rooms=sorted(session.rooms),
            marks=_watermarks(session),
            sources=sources,
            tail=tail,
        )
        return _encode(record)

    def _mark(self, session: Session, now: float) -> bytes:
        seqs, rooms, numbers = session.replay.newest(_tail_length(session, True))
        marks = _watermarks(session)
        mark = SessionMark(
            session.recorded_at, self.node, now, session.seq, marks, seqs, rooms, numbers
        )
        return _encode(mark)

    # -- ends -------------------------------------------------------------------

    async def stop(self, sessions: list[Session]) -> None:
        """This node stops collecting for ``sessions``: write them (and all pending) now."""
        for session in sessions:
            self._pending[session] = False
        await self.flush()

    async def forget(self, session: Session) -> None:
        """Delete the session's record, unless another node owns it now."""
        self._pending.pop(session, None)
        self._marked.discard(session)
        owner = keys.session_owner(session.id)
        lost = await self.fencing.write_held(self.node.encode(), {owner: None}, release=True)
        if not lost or await self.cache.get(owner) is None:
            await self.cache.delete(
                keys.session_state(session.id),
                keys.session_mark(session.id),
                keys.session_replay(session.id),
            )

    # -- reading (another node resumes) ----------------------------------------------

    async def load(self, session_id: str) -> SessionRecord | None:
        """The session's record, continued by its mark when that is newer."""
        raw, raw_mark = await asyncio.gather(
            self.cache.get(keys.session_state(session_id)),
            self.cache.get(keys.session_mark(session_id)),
        )
        if raw is None:
            return None
        try:
            record = _decode_record(raw)
            if raw_mark is not None:
                record.continue_with(_decode_mark(raw_mark))
        except msgspec.DecodeError:
            log.warning("unreadable session record %s", session_id)
            return None
        return record

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
            "marked": len(self._marked),
            "flushes": self.flushes,
            "failures": self.failures,
            "fences": self.fences,
        }


def _watermarks(session: Session) -> dict[str, tuple[int, list[int]]]:
    return {
        room: (m.level, sorted(m.ahead) if m.ahead else []) for room, m in session.marks.items()
    }


def _tail_length(session: Session, live: bool) -> int:
    """The newest ``LIVE_TAIL`` frames while this node collects and the client is
    attached, else the whole replay buffer."""
    return LIVE_TAIL if live and session.link is not None else len(session.replay)


def _indexed(
    seqs: list[int], rooms: list[str | None], numbers: list[int]
) -> tuple[list[str], list[tuple[int, int, int]]]:
    """A record's ``sources`` and ``tail`` (room index, ``-1`` for none) of a tail."""
    sources = [room for room in dict.fromkeys(rooms) if room is not None]
    index: dict[str | None, int] = {room: i for i, room in enumerate(sources)}
    index[None] = -1
    return sources, list(zip(seqs, map(index.__getitem__, rooms), numbers, strict=True))
