"""Resuming, on this node, a session another node owned (``SessionStore`` has its record).

Steps, all before the ``welcome`` so that ``resumed`` tells the truth:

1. Load the record. If its owner is alive and still collecting, ask it to
   hand over (a ``takeover`` control message on the user's channel: the
   owner writes the session as stopped and closes its socket with 4002) and
   wait up to ``ws_takeover_wait_s`` for that. An owner that does not answer
   in time (it crashed and its node lease has not lapsed yet, or it is only
   slow) is treated as gone for this session: this node ``claim``s the
   session's owner lease, which fences the old owner's later writes
   (``gateway.sessions.store``), and resumes from the record as it is. The
   session is kept whenever its record exists and is within the resume
   window; only how much can be replayed depends on the crash.
2. Rebuild the session under its id, *holding* pushes, and subscribe to its
   user channel and rooms, so nothing published from now on is lost.
3. Frames after the client's ``seq`` up to the record's are rebuilt from the
   rooms' push logs, by the record's ``tail`` (which room push each was). A
   gap when the client is ahead of the record (it saw frames written after
   the last cursor, e.g. before a crash), when one of them was not a room
   push (a reply, a user-channel or race push), or when a log was trimmed.
4. Per room, pushes the session missed while nobody collected for it come
   from the room's push log after the session's watermark (a gap when the
   log no longer reaches back that far).

``Plan.finish`` then numbers the fills after the replayed frames and
releases the held pushes, dropping those a fill already delivered. Any gap
makes it ``resumed: false`` with fresh ``room.joined`` snapshots instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final, Protocol

from gateway.sessions.session import Session, SessionRegistry, Watermark
from gateway.sessions.store import SessionRecord, SessionStore
from typogram.protocol import Push, Resume
from typogram.settings import Settings
from typogram.tokens import Claims

TAKEOVER_POLL_S: Final = 0.02


class UserChannels(Protocol):
    """The user channels on pub/sub (``gateway.chat.fanout.Fanout``)."""

    async def request_takeover(self, user_id: str, session_id: str) -> None: ...

    async def watch_user(self, user_id: str) -> None: ...


class RoomLogs(Protocol):
    """The chat rooms' push logs (``gateway.chat.rooms.ChatRooms``)."""

    async def restore(self, session: Session, room: str) -> None: ...

    async def pushes_after(self, room: str, mark: Watermark) -> list[Push] | None: ...

    async def logged(self, room: str, numbers: set[int]) -> dict[int, Push] | None: ...


class Node(Protocol):
    """What resuming needs of this node (the ``gateway.hub.Hub`` is one)."""

    @property
    def settings(self) -> Settings: ...

    @property
    def sessions(self) -> SessionRegistry: ...

    @property
    def store(self) -> SessionStore: ...

    @property
    def fanout(self) -> UserChannels: ...

    @property
    def chat(self) -> RoomLogs: ...

    @property
    def clock(self) -> Callable[[], float]: ...


@dataclass
class Plan:
    session: Session
    replay: list[bytes] | None  # None: a gap, send snapshots
    fills: list[tuple[str, Push]] = field(default_factory=list)
    skip: dict[str, int] = field(default_factory=dict)

    def finish(self) -> None:
        """After welcome and replay: deliver the fills, then what was held."""
        session = self.session
        if self.replay is not None:
            held, session.held = session.held, None
            for room, push in self.fills:
                session.deliver(push, room)
            session.held = held
        session.release(self.skip)


async def take_over(hub: Node, resume: Resume, claims: Claims, *, address: str = "") -> Plan | None:
    """A plan to resume a session this node does not hold; ``None``: start a new one.
    ``address``: the resuming socket's client address (a guest's mutes bind to it)."""
    store = hub.store
    record = await store.load(resume.session)
    if record is None or record.user != claims.subject or record.node == store.node:
        return None
    if record.live and await store.alive(record.node):
        await hub.fanout.request_takeover(record.user, record.id)
        stopped = await _stopped(hub, record)
        if stopped is None:
            return None
        record = stopped
    if hub.clock() - record.at > hub.settings.ws_resume_window_s:
        return None
    await store.claim(record.id)  # from here on the previous owner cannot write for it
    frames = await _rebuilt_frames(hub, record, resume.seq)
    session = _rebuild(hub, record, claims, frames or [], resume.seq)
    session.address = address
    await hub.fanout.watch_user(session.user.id)
    for room in record.rooms:
        await hub.chat.restore(session, room)
    plan = Plan(session, None if frames is None else [frame for _, frame, _ in frames])
    for room in sorted(record.rooms):
        mark = session.marks[room]
        pushes = await hub.chat.pushes_after(room, mark)
        if pushes is None:
            plan.replay = None
            continue
        plan.fills.extend((room, push) for push in pushes)
        plan.skip[room] = max([mark.level, *(p.number for p in pushes)])
    if plan.replay is None:
        plan.fills, plan.skip = [], {}
    hub.store.touch(session)
    return plan


async def _stopped(hub: Node, record: SessionRecord) -> SessionRecord | None:
    """Wait for the owner to write the session as stopped, to die, or to stay silent
    for ``ws_takeover_wait_s`` (then it is treated as crashed: the newest record)."""
    store, deadline = hub.store, hub.clock() + hub.settings.ws_takeover_wait_s
    current = record
    while hub.clock() < deadline:
        await asyncio.sleep(TAKEOVER_POLL_S)
        loaded = await store.load(record.id)
        if loaded is None or loaded.node != record.node:
            return None  # gone, or somebody else took it first
        current = loaded
        if not current.live or not await store.alive(current.node):
            return current
    return current


def _rebuild(
    hub: Node, record: SessionRecord, claims: Claims, frames: list[Frame], seen: int
) -> Session:
    session = hub.sessions.create(claims, record.id)
    session.held = []
    # A client ahead of a crashed node's record (it saw ``s`` values the record
    # never held) resumes with snapshots; numbering goes on after what it saw,
    # so no ``s`` is ever used twice and a later resume cannot skip a push.
    top = max(record.seq, seen)
    session.seq, session.status = top, record.status
    for seq, frame, origin in frames:
        session.replay.append(seq, frame, origin)
    session.replay.last_seq = max(session.replay.last_seq, top)
    for room in record.rooms:
        session.add_room(room)
        session.marks[room] = record.watermark(room) or Watermark(-1)
    return session


Frame = tuple[int, bytes, tuple[str, int]]


async def _rebuilt_frames(hub: Node, record: SessionRecord, seen: int) -> list[Frame] | None:
    """Frames after ``seen`` up to the record's seq, from the room logs; ``None``: a gap."""
    if seen > record.seq:
        return None  # the client saw frames written after the last cursor
    origins = record.origins()
    wanted: dict[str, set[int]] = {}
    for seq in range(seen + 1, record.seq + 1):
        origin = origins.get(seq)
        if origin is None:
            return None  # not described, or not a room push: only its node had it
        wanted.setdefault(origin[0], set()).add(origin[1])
    logged = {}
    for room, numbers in wanted.items():
        pushes = await hub.chat.logged(room, numbers)
        if pushes is None:
            return None
        logged[room] = pushes
    out: list[Frame] = []
    for seq in range(seen + 1, record.seq + 1):
        room, number = origins[seq] or ("", 0)
        out.append((seq, logged[room][number].frame(seq), (room, number)))
    return out
