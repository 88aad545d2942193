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
   ``slow_mode_s`` seconds. With ``guests_read_only``, guests only read in
   system rooms.
4. Who moderates depends on the room's kind (``rooms.kinds``): in a system
   room, staff members only (``Join(staff=True)``, from the token's role); in
   a user room, staff, its owner (the first registered user to join it while
   it has none) and whom the owner (or staff) appoints. Guests never
   moderate and are never owners or appointed. Owner, appointments and
   mutes outlive leaving, for as long as the room state exists.
5. Moderators mute, unmute and set slow mode. Nobody mutes a moderator; staff
   are never held back by a mute. Mutes and slow mode bind to the account
   and, for a guest, to its ``source`` (the client address the gateway puts
   in ``Join``): a fresh guest identity from the same address is muted too
   and waits out the same slow-mode interval. Sources never leave the room
   state (``room.moderation`` lists user ids only).
6. Only staff delete a message (pushed to the room, dropped from history,
   deleted from storage). A registered member reports a message it can see
   in the room's history; a report goes to the staff's queue.
7. An illegal event raises ``RoomError`` and changes nothing: states are
   frozen, ``handle`` returns a new one or raises before building it.

Transition table (precondition failing -> RoomError code; "first"/"last" =
the user's first connection in / last connection out; "mod" = moderates by
rule 4)
---------------------------------------------------------------------------
event     precondition                     state change        effects
--------  -------------------------------  ------------------  ----------------------------
Join      -                                connections + 1;    Reply room.joined;
                                           user room without   first: Broadcast room.presence
                                           owner: owner = a
                                           registered joiner
Leave     member (not_found)               connections - 1,    Reply room.left;
                                           removed at 0        last: Broadcast room.presence
Send      member, not muted, not a read-   last_sent[sender]   Broadcast chat.message,
          only guest (forbidden);          = now (slow mode    StoreHistory,
          1..max_text chars (bad_request);   on only)          Publish chat-messages
          slow mode passed (rate_limited)
Mute      actor mod, target not (forbidden) muted + target     Reply chat.muted;
                                           (+ guest source)    Broadcast room.moderation
Unmute    actor mod (forbidden)            muted - target      Reply chat.unmuted;
                                                               Broadcast room.moderation
SlowMode  actor mod (forbidden);           slow_mode_s = s     Broadcast room.moderation
          0 <= s <= 3600 (bad_request)
Appoint   user room, actor owner or staff  appointed +/-       Reply chat.appointed/unappointed;
          (forbidden); on: target a        target (unmuted)    Broadcast room.moderation
          member (not_found), registered
          (forbidden)
Delete    actor a staff member (forbidden) -                   Reply + Broadcast chat.deleted,
                                                               DropHistory, Publish chat-messages
Report    member (forbidden), registered   -                   Reply chat.reported,
          (forbidden); message in history                      Publish chat-messages
          (not_found), not one's own
          (bad_request)
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Final

from rooms.effects import Broadcast as Broadcast  # re-exported: callers match on it
from rooms.effects import Refused
from rooms.effects import Reply as Reply
from rooms.kinds import RoomKind, room_kind
from typogram import topics
from typogram.codes import ErrorCode

MAX_SLOW_MODE_S: Final = 3600.0
MAX_REASON: Final = 200


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
    staff: bool = False
    source: str = ""  # guests only: where mutes and slow mode also bind (rule 5)

    @property
    def sender(self) -> str:
        """Whose slow-mode interval a message counts against."""
        return f"source:{self.source}" if self.source else self.user.id


@dataclass(frozen=True, slots=True)
class ChatRoomState:
    """One room. Treat the mappings as read-only: every transition copies."""

    room: str
    max_text: int = 500
    slow_mode_s: float = 0.0
    guests_read_only: bool = False
    members: Mapping[str, Member] = field(default_factory=dict)
    owner: str | None = None
    appointed: frozenset[str] = frozenset()
    muted: frozenset[str] = frozenset()
    muted_sources: Mapping[str, str] = field(default_factory=dict)  # muted guest -> source
    last_sent: Mapping[str, float] = field(default_factory=dict)  # ``Member.sender`` -> time

    @property
    def kind(self) -> RoomKind:
        return room_kind(self.room)

    @property
    def is_empty(self) -> bool:
        return not self.members

    def member_list(self) -> list[dict[str, Any]]:
        return [member.user.wire() for member in self.members.values()]

    def moderates(self, user_id: str) -> bool:
        """Rule 4: may this member moderate here now?"""
        member = self.members.get(user_id)
        if member is None or member.user.guest:
            return False
        return member.staff or self._owns_or_appointed(user_id)

    def protected(self, user_id: str) -> bool:
        """Nobody mutes this user: a staff member here, the owner or an appointee."""
        member = self.members.get(user_id)
        return (member is not None and member.staff) or self._owns_or_appointed(user_id)

    def is_muted(self, member: Member) -> bool:
        if member.staff:
            return False
        if member.user.id in self.muted:
            return True
        return bool(member.source) and member.source in self.muted_sources.values()

    def _owns_or_appointed(self, user_id: str) -> bool:
        return self.kind is RoomKind.USER and (user_id == self.owner or user_id in self.appointed)


# -- events ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Join:
    user: User
    staff: bool = False  # the token's role is in ``roles.STAFF`` (ignored for guests)
    source: str = ""  # the client's address; kept for guests only


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
    source: str = ""  # a guest target's address when another node holds it


@dataclass(frozen=True, slots=True)
class Unmute:
    actor_id: str
    user_id: str


@dataclass(frozen=True, slots=True)
class SlowMode:
    actor_id: str
    seconds: float


@dataclass(frozen=True, slots=True)
class Appoint:
    actor_id: str
    user_id: str
    on: bool = True  # False: withdraw the appointment
    elsewhere: User | None = None  # the target as another node holds it, if not here


@dataclass(frozen=True, slots=True)
class Delete:
    actor_id: str
    message_id: str


@dataclass(frozen=True, slots=True)
class Report:
    """``message``: the reported ``chat.message`` as the room's history holds it, or
    ``None`` when the history no longer (or never) held ``message_id``."""

    user_id: str
    message_id: str
    reason: str
    message: Mapping[str, Any] | None


Event = Join | Leave | Send | Mute | Unmute | SlowMode | Appoint | Delete | Report


# -- effects ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoreHistory:
    """Append a ``chat.message`` to the room's bounded history."""

    message: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class DropHistory:
    """Remove the message with this id from the room's history."""

    message_id: str


@dataclass(frozen=True, slots=True)
class Publish:
    """Put an event on the durable log."""

    topic: str
    type: str
    data: Mapping[str, Any]
    key: str


Effect = Broadcast | Reply | StoreHistory | DropHistory | Publish


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
        case Appoint():
            return _appoint(state, event)
        case Delete():
            return _delete(state, event, now)
        case Report():
            return _report(state, event, now)
    raise RoomError(ErrorCode.BAD_REQUEST, f"unknown event {event!r}")  # pragma: no cover


def report_id(message_id: str, reporter_id: str) -> str:
    """One report per message and reporter: reporting again changes nothing."""
    return hashlib.sha256(f"report:{message_id}:{reporter_id}".encode()).hexdigest()[:32]


def _join(state: ChatRoomState, event: Join) -> tuple[ChatRoomState, list[Effect]]:
    user = event.user
    current = state.members.get(user.id)
    members = dict(state.members)
    connections = 1 if current is None else current.connections + 1
    members[user.id] = Member(
        user,
        connections,
        staff=event.staff and not user.guest,
        source=event.source if user.guest else "",
    )
    owner = state.owner
    if owner is None and state.kind is RoomKind.USER and not user.guest:
        owner = user.id
    new = replace(state, members=members, owner=owner)
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
        members[event.user_id] = replace(current, connections=current.connections - 1)
        return replace(state, members=members), effects
    del members[event.user_id]
    # last_sent keeps the leaver's time, so leaving and coming back does not
    # dodge slow mode; ``_send`` prunes entries once their interval has passed.
    new = replace(state, members=members)
    effects.append(_presence(state.room, left=(current.user,)))
    return new, effects


def _send(state: ChatRoomState, event: Send, now: float) -> tuple[ChatRoomState, list[Effect]]:
    member = state.members.get(event.user_id)
    if member is None:
        raise RoomError(ErrorCode.FORBIDDEN, f"join {state.room} before sending")
    if state.guests_read_only and member.user.guest and state.kind is RoomKind.SYSTEM:
        raise RoomError(ErrorCode.FORBIDDEN, "guests only read in this room: sign in to chat")
    if state.is_muted(member):
        raise RoomError(ErrorCode.FORBIDDEN, "you are muted in this room")
    text = event.text.strip()
    if not text:
        raise RoomError(ErrorCode.BAD_REQUEST, "text is empty")
    if len(text) > state.max_text:
        raise RoomError(ErrorCode.BAD_REQUEST, f"text is longer than {state.max_text} characters")
    last_sent = state.last_sent
    if state.slow_mode_s:
        sender = member.sender
        previous = last_sent.get(sender)
        if previous is not None and now - previous < state.slow_mode_s:
            wait = state.slow_mode_s - (now - previous)
            raise RoomError(ErrorCode.RATE_LIMITED, f"slow mode: wait {wait:.1f} s")
        # Forget senders whose interval has passed: last_sent stays small.
        last_sent = {u: t for u, t in last_sent.items() if now - t < state.slow_mode_s}
        last_sent[sender] = now
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
        Publish(topics.CHAT_MESSAGES, topics.CHAT_MESSAGE, message, state.room),
    ]
    new = state if last_sent is state.last_sent else replace(state, last_sent=last_sent)
    return new, effects


def _moderate(state: ChatRoomState, event: Mute | Unmute) -> tuple[ChatRoomState, list[Effect]]:
    _require_moderator(state, event.actor_id)
    target = event.user_id
    sources = dict(state.muted_sources)
    if isinstance(event, Mute):
        if state.protected(target):
            raise RoomError(ErrorCode.FORBIDDEN, "moderators cannot be muted")
        member = state.members.get(target)
        source = event.source if member is None else member.source
        if source:
            sources[target] = source
        muted, reply = state.muted | {target}, "chat.muted"
    else:
        sources.pop(target, None)
        muted, reply = state.muted - {target}, "chat.unmuted"
    data = {"room": state.room, "user": target}
    new = replace(state, muted=muted, muted_sources=sources)
    return new, [Reply(reply, data), Broadcast("room.moderation", moderation_view(new))]


def _slow_mode(state: ChatRoomState, event: SlowMode) -> tuple[ChatRoomState, list[Effect]]:
    _require_moderator(state, event.actor_id)
    if not 0 <= event.seconds <= MAX_SLOW_MODE_S:
        raise RoomError(ErrorCode.BAD_REQUEST, f"slow mode must be 0..{MAX_SLOW_MODE_S:g} s")
    new = replace(
        state,
        slow_mode_s=event.seconds,
        last_sent=state.last_sent if event.seconds else {},
    )
    return new, [Broadcast("room.moderation", moderation_view(new))]


def _appoint(state: ChatRoomState, event: Appoint) -> tuple[ChatRoomState, list[Effect]]:
    if state.kind is RoomKind.SYSTEM:
        raise RoomError(ErrorCode.FORBIDDEN, "system rooms are moderated by staff only")
    actor = state.members.get(event.actor_id)
    if actor is None or actor.user.guest or not (actor.staff or actor.user.id == state.owner):
        raise RoomError(ErrorCode.FORBIDDEN, "only the room's owner or staff appoint moderators")
    target = event.user_id
    data = {"room": state.room, "user": target}
    if not event.on:
        new = replace(state, appointed=state.appointed - {target})
        return new, [
            Reply("chat.unappointed", data),
            Broadcast("room.moderation", moderation_view(new)),
        ]
    member = state.members.get(target)
    user = member.user if member is not None else event.elsewhere
    if user is None or user.id != target:
        raise RoomError(ErrorCode.NOT_FOUND, f"{target} is not in {state.room}")
    if user.guest:
        raise RoomError(ErrorCode.FORBIDDEN, "guests never moderate")
    sources = {u: s for u, s in state.muted_sources.items() if u != target}
    new = replace(
        state,
        appointed=state.appointed if target == state.owner else state.appointed | {target},
        muted=state.muted - {target},
        muted_sources=sources,
    )
    return new, [Reply("chat.appointed", data), Broadcast("room.moderation", moderation_view(new))]


def _delete(state: ChatRoomState, event: Delete, now: float) -> tuple[ChatRoomState, list[Effect]]:
    actor = state.members.get(event.actor_id)
    if actor is None or not actor.staff:
        raise RoomError(ErrorCode.FORBIDDEN, "only staff delete messages")
    data = {"room": state.room, "id": event.message_id}
    stored = {**data, "by": event.actor_id, "ts": int(now * 1000)}
    return state, [
        Reply("chat.deleted", data),
        Broadcast("chat.deleted", data),
        DropHistory(event.message_id),
        Publish(topics.CHAT_MESSAGES, topics.CHAT_DELETED, stored, state.room),
    ]


def _report(state: ChatRoomState, event: Report, now: float) -> tuple[ChatRoomState, list[Effect]]:
    member = state.members.get(event.user_id)
    if member is None:
        raise RoomError(ErrorCode.FORBIDDEN, f"join {state.room} before reporting")
    if member.user.guest:
        raise RoomError(ErrorCode.FORBIDDEN, "sign in to report messages")
    message = event.message
    if message is None:
        raise RoomError(ErrorCode.NOT_FOUND, "no such message in this room's recent history")
    author = message.get("user") or {}
    if author.get("id") == event.user_id:
        raise RoomError(ErrorCode.BAD_REQUEST, "you cannot report your own message")
    report = report_id(event.message_id, event.user_id)
    stored = {
        "id": report,
        "room": state.room,
        "message": dict(message),
        "reporter": member.user.wire(),
        "reason": event.reason.strip()[:MAX_REASON],
        "ts": int(now * 1000),
    }
    return state, [
        Reply("chat.reported", {"room": state.room, "id": event.message_id, "report": report}),
        Publish(topics.CHAT_MESSAGES, topics.CHAT_REPORT, stored, state.room),
    ]


def _require_moderator(state: ChatRoomState, actor_id: str) -> None:
    if not state.moderates(actor_id):
        raise RoomError(ErrorCode.FORBIDDEN, "only moderators may do that")


def moderation_view(state: ChatRoomState) -> dict[str, Any]:
    """``room.moderation``: who owns and moderates, who is muted, slow mode. No sources."""
    return {
        "room": state.room,
        "kind": state.kind.value,
        "owner": state.owner,
        "moderators": sorted(state.appointed),
        "muted": sorted(state.muted),
        "slow_mode_s": state.slow_mode_s,
    }


def _presence(
    room: str, *, joined: tuple[User, ...] = (), left: tuple[User, ...] = ()
) -> Broadcast:
    return Broadcast(
        "room.presence",
        {"room": room, "joined": [u.wire() for u in joined], "left": [u.wire() for u in left]},
    )
