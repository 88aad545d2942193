"""Resumable sessions: what outlives one socket, and the registry that holds them.

A ``Session`` is the server side of one client's stream: its user, rooms,
sequence counter and replay buffer. A socket (``Link``) attaches to it after
hello; when the socket drops abnormally the session is *detached* but keeps
collecting pushes into its replay buffer, so a hello with ``resume`` inside
the resume window gets exactly what it missed. Detached sessions expire
after the window (the gateway's sweeper ends them) and their number is
bounded: past the limit the oldest detached one expires first.

Resume is per node: a client that reconnects to another node gets a fresh
session (``resumed: false``) and fresh snapshots.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Protocol

from gateway.replay import ReplayBuffer
from rooms.chat import User
from typogram.protocol import Push, Resume
from typogram.tokens import Claims


class Link(Protocol):
    """The attached socket, as a session sees it."""

    def send(self, frame: bytes, kind: str) -> None: ...
    def terminate(self, code: int, reason: str, *, flush: bool = False) -> None: ...


class Session:
    def __init__(self, session_id: str, claims: Claims, replay: ReplayBuffer) -> None:
        self.id = session_id
        self.claims = claims
        self.user = User(claims.subject, claims.name, claims.is_guest)
        self.rooms: set[str] = set()
        self.status = "online"
        self.replay = replay
        self.seq = 0
        self.link: Link | None = None
        self.detached_at: float | None = None
        self.ended = False

    def deliver(self, push: Push) -> None:
        """Number a push for this session, remember it, and send it if attached."""
        if self.ended:
            return
        self.seq += 1
        frame = push.frame(self.seq)
        self.replay.append(self.seq, frame)
        if self.link is not None:
            self.link.send(frame, push.type)

    def revoke(self, code: int, reason: str) -> None:
        """End this session for good (e.g. its token was revoked)."""
        self.ended = True
        if self.link is not None:
            self.link.terminate(code, reason)


class SessionRegistry:
    def __init__(
        self, *, window_s: float, max_detached: int, replay_frames: int, replay_bytes: int
    ) -> None:
        self._window = window_s
        self._max_detached = max_detached
        self._replay = (replay_frames, replay_bytes)
        self._sessions: dict[str, Session] = {}
        self._by_user: dict[str, set[Session]] = {}

    def __len__(self) -> int:
        return len(self._sessions)

    def __contains__(self, session: object) -> bool:
        return isinstance(session, Session) and self._sessions.get(session.id) is session

    def __iter__(self) -> Iterator[Session]:
        return iter(list(self._sessions.values()))

    @property
    def detached(self) -> int:
        return sum(1 for s in self._sessions.values() if s.link is None)

    def of_user(self, user_id: str) -> list[Session]:
        return list(self._by_user.get(user_id, ()))

    def create(self, claims: Claims) -> Session:
        session = Session(uuid.uuid4().hex, claims, ReplayBuffer(*self._replay))
        self._sessions[session.id] = session
        self._by_user.setdefault(claims.subject, set()).add(session)
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
            users.discard(session)
            if not users:
                del self._by_user[session.user.id]
