"""Resumable sessions: what outlives one socket, and the registry that holds them.

A ``Session`` is the server side of one client's stream: its user, rooms,
sequence counter and replay buffer. A socket (``Link``) attaches to it after
hello; when the socket drops abnormally the session is *detached* but keeps
collecting pushes into its replay buffer, so a hello with ``resume`` inside
the resume window gets exactly what it missed. Detached sessions expire
after the window (the gateway's sweeper ends them) and their number is
bounded: past the limit the oldest detached one expires first.

Frames never leave the node: the replay buffer remembers which of them were
room pushes (room and push number), and the ``SessionStore`` writes only a
small cursor record (last seq, per-room watermarks, that origin index) at a
slow cadence, so another node can resume the session (``gateway.sessions.resume``)
by rebuilding room pushes from the rooms' push logs. Per room the session
keeps a ``Watermark`` of the room push numbers it has received: the resuming
node fills what came after it from the room's push log, or sees a gap.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from collections.abc import Set as AbstractSet
from typing import Any, Final, Protocol

from gateway.sessions.replay import ReplayBuffer
from rooms.chat import User
from typogram.protocol import Push, Resume
from typogram.tokens import Claims


class Link(Protocol):
    """The attached socket, as a session sees it."""

    def send(self, frame: bytes, kind: str) -> None: ...
    def terminate(self, code: int, reason: str, *, flush: bool = False) -> None: ...


# Answers one request of a link's client: a message kind and its data, sent back
# carrying the request's id (``Connection.replier``). The game rules' own answer,
# ``rooms.effects.Reply``, is carried out through one of these.
Respond = Callable[[str, Mapping[str, Any]], None]


MAX_AHEAD: Final = 256  # out-of-order room numbers a watermark holds before giving up


class Watermark:
    """The room push numbers a session has: all up to ``level``, plus those in ``ahead``.

    Pub/sub may deliver two publishers' pushes out of number order, hence ``ahead``.
    ``level == -1`` means unknown (too much disorder): a resume elsewhere resyncs.
    """

    __slots__ = ("ahead", "level")

    def __init__(self, level: int = 0, ahead: Iterable[int] = ()) -> None:
        self.level = level
        self.ahead: set[int] = set(ahead)

    def see(self, number: int) -> None:
        if self.level < 0 or number <= self.level:
            return
        if number != self.level + 1:
            self.ahead.add(number)
            if len(self.ahead) > MAX_AHEAD:
                self.level, self.ahead = -1, set()
            return
        self.level = number
        while self.level + 1 in self.ahead:
            self.level += 1
            self.ahead.discard(self.level)

    def has(self, number: int) -> bool:
        return number <= self.level or number in self.ahead

    def take(self, number: int) -> bool:
        """``see(number)`` unless it ``has`` it already; True if it was new.

        Once per recipient of a room push: the next number in line, the usual
        case, costs one comparison.
        """
        level = self.level
        if number == level + 1 and level >= 0 and not self.ahead:
            self.level = number
            return True
        if self.has(number):
            return False
        self.see(number)
        return True


# Pushes sent without ``s``: snapshots that the next one supersedes (``race.state`` at the
# race tick). They are neither numbered nor kept for replay: after any resume the next tick
# brings the current state, so they never make a resume elsewhere fall back to snapshots.
UNNUMBERED: Final = frozenset({"race.state"})


# The rooms of a session in none (most idle ones): shared, never mutated.
NO_ROOMS: Final[frozenset[str]] = frozenset()


class Session:
    # Fixed fields, no instance dict: one per client, for as long as it stays resumable.
    __slots__ = (
        "address",
        "checked_at",
        "claims",
        "detached_at",
        "ended",
        "held",
        "id",
        "link",
        "marks",
        "numbered",
        "recorded_at",
        "replay",
        "rooms",
        "seq",
        "status",
        "user",
    )

    def __init__(self, session_id: str, claims: Claims, replay: ReplayBuffer) -> None:
        self.id = session_id
        self.claims = claims
        self.user = User(claims.subject, claims.name, claims.is_guest)
        # A set of its own from the first room (``add_room``): an empty set is 216 bytes.
        self.rooms: AbstractSet[str] = NO_ROOMS
        self.address = ""  # the attached socket's client address (guests' mutes bind to it)
        self.status = "online"
        self.replay = replay
        self.seq = 0
        self.link: Link | None = None
        self.detached_at: float | None = None
        self.ended = False
        # Told of every numbered frame, so the cursor record keeps up (``SessionStore.mark``).
        self.numbered: Callable[[Session], None] | None = None
        # The ``at`` of this node's last record of the session (0: none), which marks continue.
        self.recorded_at = 0.0
        self.marks: dict[str, Watermark] = {}
        # While a resume is being prepared, pushes wait here instead of being numbered.
        self.held: list[tuple[Push, str | None]] | None = None
        # When the token (``claims``) was last found good against the shared state.
        self.checked_at = 0.0

    def add_room(self, room: str) -> None:
        rooms = self.rooms
        if isinstance(rooms, set):
            rooms.add(room)
        else:
            self.rooms = {room}

    def drop_room(self, room: str) -> None:
        rooms = self.rooms
        if isinstance(rooms, set):
            rooms.discard(room)
            if not rooms:
                self.rooms = NO_ROOMS

    def deliver(self, push: Push, room: str | None = None) -> None:
        """Number a push for this session, remember it, and send it if attached."""
        if self.ended:
            return
        if push.type in UNNUMBERED:
            if self.held is None and self.link is not None:
                self.link.send(push.bare(), push.type)
            return
        if self.held is not None:
            self.held.append((push, room))
            return
        number = push.number
        origin = None
        if room is not None and number:
            mark = self.marks.get(room)
            if mark is not None and not mark.take(number):
                return  # it has this one already (history, a fill, its own join)
            origin = (room, number)
        self.seq = seq = self.seq + 1
        frame = push.frame(seq)
        self.replay.append(seq, frame, origin)
        if self.numbered is not None:
            self.numbered(self)
        link = self.link
        if link is not None:
            link.send(frame, push.type)

    def release(self, skip: dict[str, int]) -> None:
        """Deliver held pushes, dropping room pushes numbered up to ``skip[room]``."""
        held, self.held = self.held or [], None
        for push, room in held:
            if room is not None and push.number and push.number <= skip.get(room, 0):
                continue
            self.deliver(push, room)

    def revoke(self, code: int, reason: str) -> None:
        """End this session for good (e.g. its token was revoked)."""
        self.ended = True
        if self.link is not None:
            self.link.terminate(code, reason)


class SessionRegistry:
    def __init__(
        self,
        *,
        window_s: float,
        max_detached: int,
        replay_frames: int,
        replay_bytes: int,
        numbered: Callable[[Session], None] | None = None,
    ) -> None:
        """``numbered`` is given to every session: told of each frame it numbers."""
        self._window = window_s
        self._max_detached = max_detached
        self._replay = (replay_frames, replay_bytes)
        self._sessions: dict[str, Session] = {}
        # A list, not a set: a user has a session or two here, and an empty set is 216 bytes.
        self._by_user: dict[str, list[Session]] = {}
        self.numbered = numbered

    def __len__(self) -> int:
        return len(self._sessions)

    def __contains__(self, session: object) -> bool:
        return isinstance(session, Session) and self._sessions.get(session.id) is session

    def __iter__(self) -> Iterator[Session]:
        return iter(list(self._sessions.values()))

    @property
    def detached(self) -> int:
        return sum(1 for s in self._sessions.values() if s.link is None)

    @property
    def users(self) -> int:
        return len(self._by_user)

    def of_user(self, user_id: str) -> list[Session]:
        return list(self._by_user.get(user_id, ()))

    def get(self, session_id: str) -> Session | None:
        return self._sessions.get(session_id)

    def create(self, claims: Claims, session_id: str | None = None) -> Session:
        session = Session(session_id or uuid.uuid4().hex, claims, ReplayBuffer(*self._replay))
        session.numbered = self.numbered
        self._sessions[session.id] = session
        self._by_user.setdefault(claims.subject, []).append(session)
        return session

    def find(self, resume: Resume, claims: Claims, now: float) -> Session | None:
        """The session a resume names, if it is this user's, alive and in its window."""
        session = self._sessions.get(resume.session)
        if session is None or session.ended or session.user.id != claims.subject:
            return None
        if session.detached_at is not None and now - session.detached_at > self._window:
            return None
        return session

    def detach(self, session: Session, now: float) -> None:
        session.link = None
        session.detached_at = now

    def expired(self, now: float) -> list[Session]:
        """Sessions to end now: ended, or detached past the window or the count limit."""
        detached = sorted(
            (s for s in self._sessions.values() if s.link is None and s.detached_at is not None),
            key=lambda s: s.detached_at or 0.0,
        )
        excess = max(0, len(detached) - self._max_detached)
        out = [s for s in self._sessions.values() if s.ended]
        for index, session in enumerate(detached):
            if session.ended:
                continue
            if index < excess or now - (session.detached_at or now) > self._window:
                out.append(session)
        return out

    def remove(self, session: Session) -> None:
        session.ended = True
        self._sessions.pop(session.id, None)
        users = self._by_user.get(session.user.id)
        if users is not None:
            if session in users:
                users.remove(session)
            if not users:
                del self._by_user[session.user.id]
