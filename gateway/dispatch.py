"""Turns one decoded client frame into calls on the chat rooms and presence.

No rules live here: the rooms decide, this only routes and replies. Replies
go to the asking connection with ``re`` set to the frame's ``id``; a few
messages (``chat.send``, ``presence.set``) are acknowledged only when the
client asked with an ``id``.
"""

from __future__ import annotations

from typing import Protocol

from gateway.hub import Hub
from gateway.sessions.session import Respond, Session
from typogram.codes import ErrorCode
from typogram.errors import AppError
from typogram.protocol import (
    Auth,
    ChatAppoint,
    ChatDelete,
    ChatMute,
    ChatReport,
    ChatSend,
    ChatSlowMode,
    ChatUnappoint,
    ChatUnmute,
    Hello,
    Inbound,
    Ping,
    PresenceQuery,
    PresenceSet,
    RaceMessage,
    RoomJoin,
    RoomLeave,
)


class Asker(Protocol):
    """The connection a frame came in on (``gateway.connection.connection.Connection``)."""

    def replier(self, re: int | None) -> Respond: ...

    async def renew(self, token: str, re: int | None) -> None: ...


async def dispatch(hub: Hub, conn: Asker, session: Session, inbound: Inbound) -> None:
    """Carry out one request; raises ``RoomError``/``AppError`` for the caller to reply."""
    reply = conn.replier(inbound.id)
    if isinstance(inbound.body, RaceMessage):  # race.*, match.*, tournament.*
        if hub.races is None:
            raise AppError(ErrorCode.UNAVAILABLE, "races are not served on this node")
        await hub.races.dispatch(session, inbound.body, reply)
        return
    match inbound.body:
        case RoomJoin(room=room):
            await hub.chat.join(session, room, reply)
            hub.store.touch(session)
        case RoomLeave(room=room):
            await hub.chat.leave(session, room, reply)
            hub.store.touch(session)
        case ChatSend(room=room, text=text):
            message_id = await hub.chat.send(session, room, text, reply)
            if inbound.id is not None:
                reply("chat.sent", {"room": room, "id": message_id})
        case ChatMute(room=room, user=user):
            await hub.chat.mute(session, room, user, True, reply)
        case ChatUnmute(room=room, user=user):
            await hub.chat.mute(session, room, user, False, reply)
        case ChatSlowMode(room=room, seconds=seconds):
            await hub.chat.slow_mode(session, room, seconds, reply)
            if inbound.id is not None:
                reply("chat.slowmode_set", {"room": room, "seconds": seconds})
        case ChatAppoint(room=room, user=user):
            await hub.chat.appoint(session, room, user, True, reply)
        case ChatUnappoint(room=room, user=user):
            await hub.chat.appoint(session, room, user, False, reply)
        case ChatDelete(room=room, id=message_id):
            await hub.chat.delete(session, room, message_id, reply)
        case ChatReport(room=room, id=message_id, reason=reason):
            await hub.chat.report(session, room, message_id, reason, reply)
        case PresenceSet(status=status):
            session.status = status
            hub.store.touch(session)
            await hub.presence.set(session.user.id, status)
            if inbound.id is not None:
                reply("presence.updated", {"status": status})
        case PresenceQuery(users=users):
            sharing = await hub.chat.roommates(session)
            found = await hub.presence.query(users, asker=session.user.id, sharing=sharing)
            reply("presence.state", {"users": found})
        case Ping():
            reply("pong", {"ts": int(hub.clock() * 1000)})
        case Hello():
            raise AppError(ErrorCode.CONFLICT, "this connection already said hello")
        case Auth(token=token):
            await conn.renew(token, inbound.id)
