"""Runs the pure chat room (``rooms.chat``) for this node and carries out its effects.

One ``ChatRoomState`` per room with local members; it is dropped when the
last local member leaves. Members across nodes, moderators, mutes and slow
mode are shared through the cache (``gateway.chat.roomstate``); messages and
presence reach every node through the room channel. History (the last ``gateway_chat_history``
messages, each ``b"<n> " + message`` with its room push number) lives in the cache
under ``keys.room_history`` and every message goes to the ``chat-messages`` topic.

Joining: the node subscribes to the room channel (confirmed) *before* it reads
the push counter and the history, holding the joiner's pushes meanwhile.
Every push published later reaches it; the session's watermark starts at the
counter plus the history's numbers, so a push it already has (in history, or
its own arrival) is dropped on delivery: no gap, no duplicate.

``chat.send`` in order: the ``chat-messages`` event, then history, room log
and PUBLISH in one atomic step (``PushLog.append_numbered``; one script on
Redis, so pushes leave in number order). On a failure the sender gets
``unavailable``. How many sends run at once follows the node's measured
capacity (``Capacity``; the node's is ``gateway.connection.admission.Capacity``:
loop lag, sends in flight); a send it does not admit gets ``unavailable`` at
once.

Who moderates is the room's business (``rooms.chat`` rule 4): a joiner is
staff by its token's role and, if a guest, carries its socket's address, so
its mutes and slow mode bind there too. ``chat.delete`` and ``chat.report``
go to the ``chat-messages`` topic as ``chat.deleted`` and ``chat.report``,
where the ``chat`` worker deletes the stored message or queues the report.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any, Protocol

import orjson

from gateway.chat.control import ModerationNotice
from gateway.chat.fanout import Fanout
from gateway.chat.roomstate import Moderation, SharedRooms
from gateway.sessions.session import Respond, Session, Watermark
from rooms import chat
from typogram import keys
from typogram.codes import ErrorCode
from typogram.errors import AppError
from typogram.ids import RandomIds
from typogram.ports import Cache, Event, EventLog, PubSub
from typogram.protocol import ProtocolError, Push, parse_push, push_payload
from typogram.push_log import PushLog
from typogram.roles import STAFF

log = logging.getLogger(__name__)


class Capacity(Protocol):
    """Whether the node takes one more ``chat.send`` while ``inflight`` run (counts refusals)."""

    def admits(self, inflight: int) -> bool: ...


# Events that read the room's shared moderation first: they decide on (or, for a
# join, may be held by) its owner, appointees and mutes as every node sees them.
FRESH_MODERATION = (chat.Join, chat.Mute, chat.Unmute, chat.SlowMode, chat.Appoint)
# Events whose backend failure the sender hears as ``unavailable``.
DURABLE = (chat.Send, chat.Delete, chat.Report)


class RoomStates(dict[str, chat.ChatRoomState]):
    """The state of every room with members on this node, by room.

    Built before the fan-out and the ``ChatRooms`` that share it: the fan-out
    tells it of every ``room.moderation`` push (it is the fan-out's
    ``ModerationListener``), ``ChatRooms`` runs the rooms on it.
    """

    def moderated(self, room: str, moderation: ModerationNotice) -> None:
        """A ``room.moderation`` push (from any node): apply its mutes and slow mode here."""
        state = self.get(room)
        if state is None:
            return
        muted = moderation.muted
        # Guests' addresses never travel in pushes: keep those known here for the
        # users still muted (a join re-reads the shared copy, which has them all).
        sources = {u: a for u, a in state.muted_sources.items() if u in muted}
        self[room] = replace(
            state,
            owner=moderation.owner,
            appointed=moderation.moderators,
            muted=muted,
            muted_sources=sources,
            slow_mode_s=moderation.slow_mode_s,
        )


class ChatRooms:
    def __init__(
        self,
        *,
        cache: Cache,
        pushes: PushLog,
        pubsub: PubSub,
        events: EventLog,
        fanout: Fanout,
        clock: Callable[[], float],
        history: int,
        max_text: int,
        slow_mode_s: float,
        max_rooms: int,
        push_log: int,
        push_ttl: float,
        shared: SharedRooms,
        states: RoomStates | None = None,
        capacity: Capacity | None = None,
        guests_read_only: bool = False,
    ) -> None:
        self._cache = cache
        self._pushes = pushes  # over ``cache``: numbers, logs and publishes each push
        self._pubsub = pubsub
        self._events = events
        self._fanout = fanout
        self._clock = clock
        self._history = history
        self._max_text = max_text
        self._slow_mode = slow_mode_s
        self._max_rooms = max_rooms
        self._push_log = push_log
        self._push_ttl = push_ttl
        self._shared = shared
        self._guests_read_only = guests_read_only
        self._states = states if states is not None else RoomStates()
        self._capacity = capacity
        self._inflight = 0
        self._ids = RandomIds()

    def __len__(self) -> int:
        return len(self._states)

    def state(self, room: str) -> chat.ChatRoomState | None:
        return self._states.get(room)

    def online(self) -> dict[str, int]:
        """Members per room held on this node (users, not connections)."""
        return {room: len(state.members) for room, state in self._states.items()}

    async def join(self, session: Session, room: str, reply: Respond) -> None:
        if room in session.rooms:
            await self.snapshot(session, room, reply)
            return
        if len(session.rooms) >= self._max_rooms:
            raise chat.RoomError(ErrorCode.CONFLICT, f"at most {self._max_rooms} rooms at once")
        holding = session.held is None
        if holding:
            session.held = []  # live pushes wait until room.joined is queued
        session.add_room(room)
        try:
            await self._fanout.join_room(room, session)  # SUBSCRIBE confirmed
            mark = session.marks[room] = Watermark(await self._push_count(room))
            history, numbers = await self._load_history(room)
            for number in numbers:
                mark.see(number)
            event = _join_event(session)
            for number in await self._run(room, event, _with_history(reply, history)):
                mark.see(number)  # its own arrival: room.joined already lists it
        except BaseException:
            session.drop_room(room)
            session.marks.pop(room, None)
            with contextlib.suppress(Exception):
                await self._fanout.leave_room(room, session)
            raise
        finally:
            if holding:
                session.release({})

    async def roommates(self, session: Session) -> set[str]:
        """Everyone in a room with this session, on every node."""
        users: set[str] = set()
        for room in session.rooms:
            members = await self._shared.members(room, self._states.get(room))
            users.update(str(member["id"]) for member in members)
        return users

    async def restore(self, session: Session, room: str) -> None:
        """Put a session resumed from another node back in a room, without replies."""
        await self._run(room, _join_event(session), _ignore)
        await self._fanout.join_room(room, session)

    async def pushes_after(self, room: str, mark: Watermark) -> list[Push] | None:
        """The room's logged pushes ``mark`` lacks, oldest first; ``None`` if some are gone."""
        if mark.level < 0:
            return None
        entries = await self._read_log(room)
        if not entries:
            return None if await self._push_count(room) > mark.level else []
        if entries[0][0] > mark.level + 1:
            return None
        out: list[Push] = []
        for number, payload in entries:
            if mark.has(number):
                continue
            try:
                push = parse_push(payload)
            except ProtocolError:
                return None
            push.number = number
            out.append(push)
        return out

    async def logged(self, room: str, numbers: set[int]) -> dict[int, Push] | None:
        """The room's logged pushes with these numbers; ``None`` if any is gone."""
        out: dict[int, Push] = {}
        for number, payload in await self._read_log(room):
            if number in numbers:
                try:
                    out[number] = parse_push(payload)
                except ProtocolError:
                    return None
                out[number].number = number
        return out if len(out) == len(numbers) else None

    async def _read_log(self, room: str) -> list[tuple[int, bytes]]:
        entries = []
        for item in await self._cache.list_range(keys.room_pushes(room)):
            head, _, body = item.partition(b" ")
            entries.append((int(head), body))
        return entries

    async def _push_count(self, room: str) -> int:
        raw = await self._cache.get(keys.room_push_seq(room))
        return int(raw) if raw else 0

    async def snapshot(self, session: Session, room: str, reply: Respond) -> None:
        """Send ``room.joined`` for a room the session is already in (resume, re-join)."""
        members = await self._shared.members(room, self._states.get(room))
        history, _ = await self._load_history(room)
        reply("room.joined", {"room": room, "members": members, "history": history})

    async def leave(self, session: Session, room: str, reply: Respond) -> None:
        if room not in session.rooms:
            raise chat.RoomError(ErrorCode.NOT_FOUND, f"not in room {room}")
        session.drop_room(room)
        await self._fanout.leave_room(room, session)  # first: no echo of its own departure
        await self._run(room, chat.Leave(session.user.id), reply)

    async def leave_all(self, session: Session) -> None:
        """A session ends: leave its rooms without replying to it."""
        for room in list(session.rooms):
            await self.leave(session, room, _ignore)

    async def send(self, session: Session, room: str, text: str, reply: Respond) -> str:
        """Send a message; returns its id. ``AppError(unavailable)``: it was not delivered."""
        if self._capacity is not None and not self._capacity.admits(self._inflight):
            raise AppError(ErrorCode.UNAVAILABLE, "chat is overloaded here, try again shortly")
        self._inflight += 1
        try:
            message_id = self._ids()
            await self._run(room, chat.Send(session.user.id, text, message_id), reply)
            return message_id
        finally:
            self._inflight -= 1

    async def mute(
        self, session: Session, room: str, user_id: str, on: bool, reply: Respond
    ) -> None:
        actor = session.user.id
        event: chat.Event = chat.Unmute(actor, user_id)
        if on:
            state = self._states.get(room)
            source = ""
            if state is not None and user_id not in state.members:  # held by another node
                source = await self._shared.source_of(room, user_id)
            event = chat.Mute(actor, user_id, source)
        await self._run(room, event, reply)

    async def appoint(
        self, session: Session, room: str, user_id: str, on: bool, reply: Respond
    ) -> None:
        state, elsewhere = self._states.get(room), None
        if on and state is not None and user_id not in state.members:  # held by another node
            for member in await self._shared.members(room, None):
                if member["id"] == user_id:
                    elsewhere = chat.User(user_id, str(member["name"]), bool(member["guest"]))
        await self._run(room, chat.Appoint(session.user.id, user_id, on, elsewhere), reply)

    async def delete(self, session: Session, room: str, message_id: str, reply: Respond) -> None:
        """Staff only (the room decides): push ``chat.deleted``, drop it from history
        here and, through the ``chat-messages`` topic, from storage."""
        await self._run(room, chat.Delete(session.user.id, message_id), reply)

    async def report(
        self, session: Session, room: str, message_id: str, reason: str, reply: Respond
    ) -> None:
        """Report a message of the room's history to the staff's queue."""
        message = None
        if room in self._states:
            message = await self._find_history(room, message_id)
        await self._run(room, chat.Report(session.user.id, message_id, reason, message), reply)

    async def slow_mode(self, session: Session, room: str, seconds: float, reply: Respond) -> None:
        await self._run(room, chat.SlowMode(session.user.id, seconds), reply)

    async def _run(self, room: str, event: chat.Event, reply: Respond) -> list[int]:
        """Apply ``event`` and carry out its effects; returns the numbers of its pushes."""
        if room not in self._states and not isinstance(event, chat.Join):
            raise chat.RoomError(ErrorCode.NOT_FOUND, f"not in room {room}")
        shared = None
        if room not in self._states or isinstance(event, FRESH_MODERATION):
            shared = await self._shared.moderation(room)  # decide on the freshest copy
        sender, sent = self._slow_sender(room, event), None
        if sender is not None:  # slow mode binds on every node: the sender's last message
            sent = await self._shared.last_sent(room, sender)
        # No await from reading the state to storing the new one: concurrent joins of
        # one room must not overwrite each other's members.
        state = self._states.get(room)
        if state is None:
            if not isinstance(event, chat.Join):
                raise chat.RoomError(ErrorCode.NOT_FOUND, f"not in room {room}")
            state = chat.ChatRoomState(
                room,
                max_text=self._max_text,
                slow_mode_s=self._slow_mode,
                guests_read_only=self._guests_read_only,
            )
        if shared is not None:
            state = _with_moderation(state, shared)
        if sender is not None and sent is not None:
            at = max(sent, state.last_sent.get(sender, sent))
            state = replace(state, last_sent={**state.last_sent, sender: at})
        new, effects = chat.handle(state, event, self._clock())
        if new.is_empty:
            self._states.pop(room, None)
        else:
            self._states[room] = new
        if new is not state:  # a message without slow mode changes nothing shared
            if new.members is not state.members and new.members != state.members:
                await self._shared.write_members(new)
            if _moderation(new) != _moderation(state):
                await self._shared.write_moderation(new)
            if sender is not None and (last := new.last_sent.get(sender)) is not None:
                await self._shared.write_sent(room, sender, last, new.slow_mode_s)
        if isinstance(event, chat.Join):
            reply = _with_members(reply, await self._shared.members(room, new))
        return await self._apply(room, effects, reply, isinstance(event, DURABLE))

    def _slow_sender(self, room: str, event: chat.Event) -> str | None:
        """Whose interval a ``chat.send`` counts against, while the room has slow mode."""
        state = self._states.get(room)
        if not isinstance(event, chat.Send) or state is None or not state.slow_mode_s:
            return None
        member = state.members.get(event.user_id)
        return None if member is None else member.sender

    async def refresh(self) -> None:
        """Heartbeat: keep this node's share of every room it holds from expiring."""
        await self._shared.refresh(list(self._states.values()))

    async def _apply(
        self, room: str, effects: list[chat.Effect], reply: Respond, sending: bool
    ) -> list[int]:
        """Carry out effects: durable event first, then history, log and PUBLISH at once.

        For a ``chat.send`` (``sending``) a backend failure becomes ``unavailable``:
        numbering, logging and publishing are one step, so nobody got the message,
        or (only the reply was lost) it went out whole, in the log as in the stream.
        A deletion leaves history before its push goes out, so a joiner never reads
        a message back after the push that removed it.
        """
        history = b""
        numbers: list[int] = []
        # Plain type tests rather than ``match`` class patterns: once per chat.send.
        try:
            for effect in effects:
                if isinstance(effect, chat.Publish):
                    event = Event(effect.type, effect.data, effect.key, id=self._ids())
                    await self._events.publish(effect.topic, event)
                elif isinstance(effect, chat.StoreHistory):
                    history = orjson.dumps(effect.message)  # appended with its broadcast
                elif isinstance(effect, chat.DropHistory):
                    await self._drop_history(room, effect.message_id)
            for effect in effects:
                if isinstance(effect, chat.Broadcast):
                    numbers.append(await self._broadcast(room, effect.type, effect.data, history))
                    history = b""
                elif isinstance(effect, chat.StoreHistory) and history:  # no broadcast carried it
                    await self._cache.list_push(
                        keys.room_history(room), b"0 " + history, max_len=self._history
                    )
        except Exception as exc:
            if not sending:
                raise
            log.warning("chat.send in %s failed: %r", room, exc)
            raise AppError(ErrorCode.UNAVAILABLE, "chat is unavailable, try again") from exc
        for effect in effects:
            if isinstance(effect, chat.Reply):
                reply(effect.type, effect.data)
        return numbers

    async def _broadcast(
        self, room: str, kind: str, data: Mapping[str, Any], history: bytes
    ) -> int:
        """Number, log and publish a push in one atomic step (one script on Redis)."""
        return await self._pushes.append_numbered(
            keys.room_push_seq(room),
            keys.room_pushes(room),
            push_payload(kind, data),
            self._push_log,
            self._push_ttl,
            also=(keys.room_history(room), history, self._history) if history else None,
            publish=(self._pubsub, keys.channel_room(room)),
        )

    async def _history_entries(self, room: str) -> list[tuple[bytes, dict[str, Any]]]:
        """The room's stored history entries with their decoded messages."""
        out = []
        for item in await self._cache.list_range(keys.room_history(room)):
            head, _, body = item.partition(b" ")
            try:
                message = orjson.loads(body if body and head.isdigit() else item)
            except orjson.JSONDecodeError:
                continue
            if isinstance(message, dict):
                out.append((item, message))
        return out

    async def _find_history(self, room: str, message_id: str) -> dict[str, Any] | None:
        for _, message in await self._history_entries(room):
            if message.get("id") == message_id:
                return message
        return None

    async def _drop_history(self, room: str, message_id: str) -> None:
        for item, message in await self._history_entries(room):
            if message.get("id") == message_id:
                await self._cache.list_remove(keys.room_history(room), item)

    async def _load_history(self, room: str) -> tuple[list[orjson.Fragment], list[int]]:
        """The room's history for ``room.joined``, and the push numbers it holds."""
        raw = await self._cache.list_range(keys.room_history(room), -self._history, -1)
        history, numbers = [], []
        for item in raw:
            head, _, body = item.partition(b" ")
            if not body or not head.isdigit():  # written before entries were numbered
                history.append(orjson.Fragment(item))
                continue
            history.append(orjson.Fragment(body))
            if int(head):
                numbers.append(int(head))
        return history, numbers


def _join_event(session: Session) -> chat.Join:
    staff = session.claims.role in STAFF
    return chat.Join(session.user, staff=staff, source=session.address)


def _with_moderation(state: chat.ChatRoomState, shared: Moderation) -> chat.ChatRoomState:
    return replace(
        state,
        owner=state.owner if shared.owner is None else shared.owner,
        appointed=frozenset(shared.appointed),
        muted=frozenset(shared.muted),
        muted_sources=dict(shared.muted_sources),
        slow_mode_s=state.slow_mode_s if shared.slow_mode_s is None else shared.slow_mode_s,
    )


def _moderation(state: chat.ChatRoomState) -> tuple[Any, ...]:
    return (state.owner, state.appointed, state.muted, state.muted_sources, state.slow_mode_s)


def _with_members(reply: Respond, members: list[dict[str, Any]]) -> Respond:
    def send(kind: str, data: Mapping[str, Any]) -> None:
        reply(kind, {**data, "members": members} if kind == "room.joined" else data)

    return send


def _with_history(reply: Respond, history: list[orjson.Fragment]) -> Respond:
    def send(kind: str, data: Mapping[str, Any]) -> None:
        reply(kind, {**data, "history": history} if kind == "room.joined" else data)

    return send


def _ignore(kind: str, data: Mapping[str, Any]) -> None:
    pass
