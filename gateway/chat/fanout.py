"""Local delivery: which sessions on this node are in which room, and for which user.

The node subscribes to ``keys.channel_room(room)`` through the PubSub port
only while at least one local session is in the room, and to
``keys.channel_user(user)`` while the user has a local session. Every push
arrives through pub/sub — also the ones this node published — so all nodes
deliver in the same order. A payload is parsed once per node into a
``Push`` (encoded once); each recipient only gets its sequence number
appended.

User channels also carry control messages between nodes, typed in
``gateway.chat.control`` and decoded by their tag: ``revoke`` ends every
local session whose token the notice covers (close 4001,
``typogram.revocation.RevokeNotice``); ``takeover`` asks the node holding a
session to hand it over to the node a client resumed on.

Room pushes carry their number in the room (``Push.number``): sessions keep
a watermark per room, which a resume on another node starts from.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Protocol

from gateway.chat.control import (
    CONTROL_TYPES,
    ModerationNotice,
    Revoke,
    Takeover,
    decode_control,
    decode_moderation,
    takeover,
)
from gateway.sessions.session import Session, SessionRegistry
from typogram import keys
from typogram.codes import CloseCode
from typogram.ports import Listener, PubSub
from typogram.protocol import ProtocolError, parse_push
from typogram.revocation import RevokeNotice

log = logging.getLogger(__name__)


class Handovers(Protocol):
    """Told the id of a local session another node resumes (``gateway.hub.Handovers``)."""

    def requested(self, session_id: str) -> None: ...


class ModerationListener(Protocol):
    """Told every ``room.moderation`` push of a room, decoded (``RoomStates``)."""

    def moderated(self, room: str, moderation: ModerationNotice) -> None: ...


class LatencyObserver(Protocol):
    """Told the seconds from publish to arrival here, once per push per node."""

    def observe(self, amount: float) -> None: ...


class Fanout:
    def __init__(
        self,
        pubsub: PubSub,
        sessions: SessionRegistry,
        *,
        handovers: Handovers | None = None,
        latency: LatencyObserver | None = None,
        moderation: ModerationListener | None = None,
    ) -> None:
        self._pubsub = pubsub
        self._sessions = sessions
        self._rooms: dict[str, set[Session]] = {}
        self._users: dict[str, int] = {}
        self._channels: dict[str, str] = {}  # subscribed channel -> room or user id
        self._lock = asyncio.Lock()  # serialises (un)subscribe so they never cross
        # One bound listener each, so unsubscribe hands back the very object.
        self._room_listener: Listener = self._on_room
        self._user_listener: Listener = self._on_user
        self._handovers = handovers
        self._latency = latency
        self._moderation = moderation

    @property
    def rooms(self) -> int:
        return len(self._rooms)

    def members(self, room: str) -> int:
        return len(self._rooms.get(room, ()))

    async def join_room(self, room: str, session: Session) -> None:
        self._rooms.setdefault(room, set()).add(session)
        await self._sync(keys.channel_room(room), room, self._room_listener)

    async def leave_room(self, room: str, session: Session) -> None:
        members = self._rooms.get(room)
        if members is not None:
            members.discard(session)
            if not members:
                del self._rooms[room]
        await self._sync(keys.channel_room(room), room, self._room_listener)

    async def watch_user(self, user_id: str) -> None:
        """Count one more local session of ``user_id``; call ``unwatch_user`` once for each."""
        self._users[user_id] = self._users.get(user_id, 0) + 1
        await self._sync(keys.channel_user(user_id), user_id, self._user_listener)

    async def unwatch_user(self, user_id: str) -> None:
        left = self._users.get(user_id, 0) - 1
        if left > 0:
            self._users[user_id] = left
        else:
            self._users.pop(user_id, None)
        await self._sync(keys.channel_user(user_id), user_id, self._user_listener)

    async def _sync(self, channel: str, target: str, listener: Listener) -> None:
        # Reconcile under the lock: whatever interleaving of joins and leaves
        # happened, the subscription ends up matching local membership.
        async with self._lock:
            subscribed = channel in self._channels
            is_user = listener is self._user_listener
            wanted = target in self._users if is_user else target in self._rooms
            if wanted and not subscribed:
                self._channels[channel] = target
                await self._pubsub.subscribe(channel, listener)
            elif not wanted and subscribed:
                del self._channels[channel]
                await self._pubsub.unsubscribe(channel, listener)

    def _on_room(self, channel: str, payload: bytes) -> None:
        room = self._channels.get(channel)
        members = self._rooms.get(room) if room is not None else None
        if not members:
            return
        try:
            push = parse_push(payload)
        except ProtocolError as exc:
            log.warning("dropping malformed push on %s: %s", channel, exc.message)
            return
        if push.sent_at and self._latency is not None:
            self._latency.observe(time.time() - push.sent_at)
        if push.type == "room.moderation" and self._moderation is not None and room:
            try:
                moderation = decode_moderation(payload)
            except ValueError as exc:  # still delivered: the clients read it themselves
                log.warning("not applying a room.moderation push on %s: %s", channel, exc)
            else:
                self._moderation.moderated(room, moderation)
        for session in list(members):
            session.deliver(push, room)

    def _on_user(self, channel: str, payload: bytes) -> None:
        user_id = self._channels.get(channel)
        if user_id is None:
            return
        sessions = self._sessions.of_user(user_id)
        try:
            push = parse_push(payload)
        except ProtocolError as exc:
            log.warning("dropping malformed push on %s: %s", channel, exc.message)
            return
        if push.type in CONTROL_TYPES:
            self._control(sessions, payload)
            return
        for session in sessions:
            session.deliver(push)

    async def request_takeover(self, user_id: str, session_id: str) -> None:
        """Ask whichever node holds ``session_id`` to hand it over
        (see ``gateway.sessions.resume``)."""
        await self._pubsub.publish(keys.channel_user(user_id), takeover(session_id))

    def _control(self, sessions: list[Session], payload: bytes) -> None:
        try:
            message = decode_control(payload)
        except ValueError:
            log.warning("dropping malformed control message: %r", payload[:200])
            return
        match message:
            case Takeover(d=request):
                session_id = request.session
                if self._sessions.get(session_id) is not None and self._handovers is not None:
                    self._handovers.requested(session_id)
            case Revoke(d=notice):
                self._revoke(sessions, notice)

    def _revoke(self, sessions: list[Session], notice: RevokeNotice) -> None:
        reason = f"token revoked: {notice.reason}" if notice.reason else "token revoked"
        for session in sessions:
            if notice.covers(session.claims):
                session.revoke(CloseCode.UNAUTHORIZED, reason[:120])
