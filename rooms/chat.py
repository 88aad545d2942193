"""Chat rooms as a pure state machine: ``handle(state, event, now) -> (state, effects)``.

No I/O, no clock, no randomness: ``now`` (epoch seconds) and message ids come
in with the call; the gateway carries out the effects.

Rules
-----
1. A member is a user with at least one joined connection. ``Join`` adds a
   connection, ``Leave`` removes one; the user stops being a member at zero.
2. ``room.presence`` is broadcast only when a user's first connection joins
   or their last one leaves; extra tabs are invisible to the room.
3. Only members send. Text is 1..``max_text`` characters once stripped.
   Muted users cannot send. With slow mode on, a user sends at most once per
   ``slow_mode_s`` seconds.
4. Moderators (members who joined with ``moderator=True``) mute, unmute and
   set slow mode. Nobody mutes a moderator. A mute outlives a leave, for as
   long as the room state exists.
5. An illegal event raises ``RoomError`` and changes nothing: states are
   frozen, ``handle`` returns a new one or raises before building it.

Transition table (precondition failing -> RoomError code; "first"/"last" =
the user's first connection in / last connection out)
---------------------------------------------------------------------------
event     precondition                     state change        effects
--------  -------------------------------  ------------------  ----------------------------
Join      -                                connections + 1     Reply room.joined;
                                                               first: Broadcast room.presence
Leave     member (not_found)               connections - 1,    Reply room.left;
                                           removed at 0        last: Broadcast room.presence
Send      member, not muted (forbidden);   last_sent[user]     Broadcast chat.message,
          1..max_text chars (bad_request);   = now (slow mode  StoreHistory,
          slow mode passed (rate_limited)    on only)          Publish chat-messages
Mute      actor moderator, target not one  muted + target      Reply chat.muted;
          (forbidden)                                          Broadcast room.moderation
Unmute    actor moderator (forbidden)      muted - target      Reply chat.unmuted;
                                                               Broadcast room.moderation
SlowMode  actor moderator (forbidden);     slow_mode_s = s     Broadcast room.moderation
          0 <= s <= 3600 (bad_request)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Final

from rooms.effects import Broadcast as Broadcast  # re-exported: callers match on it
from rooms.effects import Refused
from rooms.effects import Reply as Reply
from typogram import topics
from typogram.codes import ErrorCode

MAX_SLOW_MODE_S: Final = 3600.0


class RoomError(Refused):
    """An event the room refuses; the state it was given is unchanged."""


@dataclass(frozen=True, slots=True)
class User:
    id: str
    name: str
    guest: bool = False

    def wire(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "guest": self.guest}


@dataclass(frozen=True, slots=True)
class Member:
    user: User
    connections: int


@dataclass(frozen=True, slots=True)
class ChatRoomState:
    """One room. Treat the mappings as read-only: every transition copies."""

    room: str
    max_text: int = 500
    slow_mode_s: float = 0.0
    members: Mapping[str, Member] = field(default_factory=dict)
    moderators: frozenset[str] = frozenset()
    muted: frozenset[str] = frozenset()
    last_sent: Mapping[str, float] = field(default_factory=dict)

    @property
    def is_empty(self) -> bool:
        return not self.members

    def member_list(self) -> list[dict[str, Any]]:
        return [member.user.wire() for member in self.members.values()]


# -- events ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Join:
    user: User
    moderator: bool = False


@dataclass(frozen=True, slots=True)
class Leave:
    user_id: str


@dataclass(frozen=True, slots=True)
class Send:
    user_id: str
    text: str
    message_id: str


@dataclass(frozen=True, slots=True)
class Mute:
    actor_id: str
    user_id: str


@dataclass(frozen=True, slots=True)
class Unmute:
    actor_id: str
    user_id: str


@dataclass(frozen=True, slots=True)
class SlowMode:
    actor_id: str
    seconds: float


Event = Join | Leave | Send | Mute | Unmute | SlowMode


# -- effects ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoreHistory:
    """Append a ``chat.message`` to the room's bounded history."""

    message: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Publish:
    """Put an event on the durable log."""

    topic: str
    type: str
    data: Mapping[str, Any]
    key: str


Effect = Broadcast | Reply | StoreHistory | Publish


def handle(state: ChatRoomState, event: Event, now: float) -> tuple[ChatRoomState, list[Effect]]:
    """Apply one event; raises ``RoomError`` (state unchanged) when the rules forbid it."""
    match event:
        case Join():
            return _join(state, event)
        case Leave():
            return _leave(state, event)
        case Send():
            return _send(state, event, now)
        case Mute() | Unmute():
            return _moderate(state, event)
        case SlowMode():
            return _slow_mode(state, event)
    raise RoomError(ErrorCode.BAD_REQUEST, f"unknown event {event!r}")  # pragma: no cover


def _join(state: ChatRoomState, event: Join) -> tuple[ChatRoomState, list[Effect]]:
    user = event.user
    current = state.members.get(user.id)
    members = dict(state.members)
    members[user.id] = Member(user, 1 if current is None else current.connections + 1)
    moderators = state.moderators | {user.id} if event.moderator else state.moderators
    new = replace(state, members=members, moderators=moderators)
    effects: list[Effect] = [
        Reply("room.joined", {"room": state.room, "members": new.member_list()})
    ]
    if current is None:
        effects.append(_presence(state.room, joined=(user,)))
    return new, effects


def _leave(state: ChatRoomState, event: Leave) -> tuple[ChatRoomState, list[Effect]]:
    current = state.members.get(event.user_id)
    if current is None:
        raise RoomError(ErrorCode.NOT_FOUND, f"not in room {state.room}")
    members = dict(state.members)
    effects: list[Effect] = [Reply("room.left", {"room": state.room})]
    if current.connections > 1:
        members[event.user_id] = Member(current.user, current.connections - 1)
        return replace(state, members=members), effects
    del members[event.user_id]
    # last_sent keeps the leaver's time, so leaving and coming back does not
    # dodge slow mode; ``_send`` prunes entries once their interval has passed.
    new = replace(state, members=members, moderators=state.moderators - {event.user_id})
    effects.append(_presence(state.room, left=(current.user,)))
    return new, effects


def _send(state: ChatRoomState, event: Send, now: float) -> tuple[ChatRoomState, list[Effect]]:
    member = state.members.get(event.user_id)
    if member is None:
        raise RoomError(ErrorCode.FORBIDDEN, f"join {state.room} before sending")
    if event.user_id in state.muted:
        raise RoomError(ErrorCode.FORBIDDEN, "you are muted in this room")
    text = event.text.strip()
    if not text:
        raise RoomError(ErrorCode.BAD_REQUEST, "text is empty")
    if len(text) > state.max_text:
        raise RoomError(ErrorCode.BAD_REQUEST, f"text is longer than {state.max_text} characters")
    last_sent = state.last_sent
    if state.slow_mode_s:
        previous = last_sent.get(event.user_id)
        if previous is not None and now - previous < state.slow_mode_s:
            wait = state.slow_mode_s - (now - previous)
            raise RoomError(ErrorCode.RATE_LIMITED, f"slow mode: wait {wait:.1f} s")
        # Forget senders whose interval has passed: last_sent stays small.
        last_sent = {u: t for u, t in last_sent.items() if now - t < state.slow_mode_s}
        last_sent[event.user_id] = now
    message = {
        "room": state.room,
        "id": event.message_id,
        "user": member.user.wire(),
        "text": text,
        "ts": int(now * 1000),
    }
    effects: list[Effect] = [
        Broadcast("chat.message", message),
        StoreHistory(message),
        Publish(topics.CHAT_MESSAGES, "chat.message", message, state.room),
    ]
    new = state if last_sent is state.last_sent else replace(state, last_sent=last_sent)
    return new, effects


def _moderate(state: ChatRoomState, event: Mute | Unmute) -> tuple[ChatRoomState, list[Effect]]:
    _require_moderator(state, event.actor_id)
    if isinstance(event, Mute):
        if event.user_id in state.moderators:
            raise RoomError(ErrorCode.FORBIDDEN, "moderators cannot be muted")
        muted, reply = state.muted | {event.user_id}, "chat.muted"
    else:
        muted, reply = state.muted - {event.user_id}, "chat.unmuted"
    data = {"room": state.room, "user": event.user_id}
    new = replace(state, muted=muted)
    return new, [Reply(reply, data), Broadcast("room.moderation", _moderation(new))]


def _slow_mode(state: ChatRoomState, event: SlowMode) -> tuple[ChatRoomState, list[Effect]]:
    _require_moderator(state, event.actor_id)
    if not 0 <= event.seconds <= MAX_SLOW_MODE_S:
        raise RoomError(ErrorCode.BAD_REQUEST, f"slow mode must be 0..{MAX_SLOW_MODE_S:g} s")
    new = replace(
        state,
        slow_mode_s=event.seconds,
        last_sent=state.last_sent if event.seconds else {},
    )
    return new, [Broadcast("room.moderation", _moderation(new))]


def _require_moderator(state: ChatRoomState, actor_id: str) -> None:
    if actor_id not in state.moderators:
        raise RoomError(ErrorCode.FORBIDDEN, "only moderators may do that")


def _moderation(state: ChatRoomState) -> dict[str, Any]:
    return {"room": state.room, "muted": sorted(state.muted), "slow_mode_s": state.slow_mode_s}


def _presence(
    room: str, *, joined: tuple[User, ...] = (), left: tuple[User, ...] = ()
) -> Broadcast:
    return Broadcast(
        "room.presence",
        {"room": room, "joined": [u.wire() for u in joined], "left": [u.wire() for u in left]},
    )
