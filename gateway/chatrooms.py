"""Runs the pure chat room (``rooms.chat``) for this node and carries out its effects.

One ``ChatRoomState`` per room with local members; it is dropped when the
last local member leaves (mutes and slow mode live as long as the state).
Members lists are this node's view; messages and presence reach every node
through the room channel. History (the last ``gateway_chat_history``
messages) lives in the cache under ``keys.room_history`` and every message
goes to the ``chat-messages`` topic.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from gateway.fanout import Fanout
from gateway.sessions import Session
from rooms import chat
from typogram import keys
from typogram.codes import ErrorCode
from typogram.ports import Cache, Event, EventLog, PubSub
from typogram.protocol import push_payload

Reply = Callable[[str, Mapping[str, Any]], None]
MODERATOR_ROLES = frozenset({"moderator", "admin"})


class ChatRooms:
    def __init__(
        self,
        *,
        cache: Cache,
        pubsub: PubSub,
        events: EventLog,
        fanout: Fanout,
        clock: Callable[[], float],
        history: int,
        max_text: int,
        slow_mode_s: float,
        max_rooms: int,
    ) -> None:
        self._cache = cache
        self._pubsub = pubsub
        self._events = events
        self._fanout = fanout
        self._clock = clock
        self._history = history
        self._max_text = max_text
        self._slow_mode = slow_mode_s
        self._max_rooms = max_rooms
        self._states: dict[str, chat.ChatRoomState] = {}

    def __len__(self) -> int:
        return len(self._states)

    def state(self, room: str) -> chat.ChatRoomState | None:
        return self._states.get(room)

    async def join(self, session: Session, room: str, reply: Reply) -> None:
        if room in session.rooms:
            await self.snapshot(session, room, reply)
            return
        if len(session.rooms) >= self._max_rooms:
            raise chat.RoomError(ErrorCode.CONFLICT, f"at most {self._max_rooms} rooms at once")
        history = await self._load_history(room)
        moderator = session.claims.role in MODERATOR_ROLES
        session.rooms.add(room)
        event = chat.Join(session.user, moderator=moderator)
        try:
            await self._run(room, event, _with_history(reply, history))
        finally:
            # Subscribed after the presence broadcast: the joiner does not hear
            # its own arrival (room.joined already lists it).
            await self._fanout.join_room(room, session)

    async def snapshot(self, session: Session, room: str, reply: Reply) -> None:
        """Send ``room.joined`` for a room the session is already in (resume, re-join)."""
        state = self._states.get(room) or chat.ChatRoomState(room)
        history = await self._load_history(room)
        reply("room.joined", {"room": room, "members": state.member_list(), "history": history})

    async def leave(self, session: Session, room: str, reply: Reply) -> None:
        if room not in session.rooms:
            raise chat.RoomError(ErrorCode.NOT_FOUND, f"not in room {room}")
        session.rooms.discard(room)
        await self._fanout.leave_room(room, session)  # first: no echo of its own departure
        await self._run(room, chat.Leave(session.user.id), reply)

    async def leave_all(self, session: Session) -> None:
        """A session ends: leave its rooms without replying to it."""
        for room in list(session.rooms):
            await self.leave(session, room, _ignore)

    async def send(self, session: Session, room: str, text: str, reply: Reply) -> str:
        """Send a message; returns its id."""
        message_id = uuid.uuid4().hex
        await self._run(room, chat.Send(session.user.id, text, message_id), reply)
        return message_id

    async def mute(self, session: Session, room: str, user_id: str, on: bool, reply: Reply) -> None:
        actor = session.user.id
        event = chat.Mute(actor, user_id) if on else chat.Unmute(actor, user_id)
        await self._run(room, event, reply)

    async def _run(self, room: str, event: chat.Event, reply: Reply) -> None:
        state = self._states.get(room)
        if state is None:
            if not isinstance(event, chat.Join):
                raise chat.RoomError(ErrorCode.NOT_FOUND, f"not in room {room}")
            state = chat.ChatRoomState(room, max_text=self._max_text, slow_mode_s=self._slow_mode)
        new, effects = chat.handle(state, event, self._clock())
        if new.is_empty:
            self._states.pop(room, None)
        else:
            self._states[room] = new
        for effect in effects:
            await self._apply(room, effect, reply)

    async def _apply(self, room: str, effect: chat.Effect, reply: Reply) -> None:
        match effect:
            case chat.Reply(kind, data):
                reply(kind, data)
            case chat.Broadcast(kind, data):
                await self._pubsub.publish(keys.channel_room(room), push_payload(kind, data))
            case chat.StoreHistory(message):
                await self._cache.list_push(
                    keys.room_history(room), orjson.dumps(message), max_len=self._history
                )
            case chat.Publish(topic, kind, data, key):
                await self._events.publish(topic, Event(type=kind, data=data, key=key))

    async def _load_history(self, room: str) -> list[orjson.Fragment]:
        raw = await self._cache.list_range(keys.room_history(room), 0, -1)
        return [orjson.Fragment(item) for item in raw[-self._history :]]


def _with_history(reply: Reply, history: list[orjson.Fragment]) -> Reply:
    def send(kind: str, data: Mapping[str, Any]) -> None:
        reply(kind, {**data, "history": history} if kind == "room.joined" else data)

    return send


def _ignore(kind: str, data: Mapping[str, Any]) -> None:
    pass
