"""Who moderates which room (rules 4-6 of ``rooms.chat``; ``rooms.kinds``).

Each test here reproduces a way the old rule ("the first member of an empty
room moderates it", mutes and slow mode keyed by user id only) was abused.
"""

from __future__ import annotations

import pytest

from rooms.chat import (
    Appoint,
    Broadcast,
    ChatRoomState,
    Delete,
    DropHistory,
    Event,
    Join,
    Leave,
    Mute,
    Publish,
    Reply,
    Report,
    RoomError,
    Send,
    SlowMode,
    Unmute,
    User,
    handle,
    report_id,
)
from rooms.kinds import RoomKind, room_kind
from typogram import topics
from typogram.codes import ErrorCode

ADA = User("ada", "Ada")
BOB = User("bob", "Bob")
CY = User("cy", "Cy")
STAFF = User("mod", "Mod")
GUEST = User("guest:1", "Gus", guest=True)
GUEST_AGAIN = User("guest:2", "Gus", guest=True)  # a fresh guest token, same person
IP = "203.0.113.7"


def play(room: str, *events: Event, now: float = 0.0, **fields: object) -> ChatRoomState:
    state = ChatRoomState(room, **fields)  # type: ignore[arg-type]
    for event in events:
        state, _ = handle(state, event, now)
    return state


def refused(state: ChatRoomState, event: Event, code: ErrorCode, now: float = 1.0) -> None:
    with pytest.raises(RoomError) as raised:
        handle(state, event, now)
    assert raised.value.code is code


@pytest.mark.parametrize(
    ("room", "kind"),
    [
        ("lobby", RoomKind.SYSTEM),
        ("lobby:de", RoomKind.SYSTEM),
        ("race:abc", RoomKind.SYSTEM),
        ("tournament:t1", RoomKind.SYSTEM),
        ("lobbyist", RoomKind.USER),
        ("my-lobby", RoomKind.USER),
        ("den", RoomKind.USER),
    ],
)
def test_room_kinds_come_from_the_name(room: str, kind: RoomKind) -> None:
    assert room_kind(room) is kind


@pytest.mark.parametrize("first", [GUEST, ADA])
def test_nobody_takes_a_system_room_by_joining_it_first(first: User) -> None:
    state = play("lobby", Join(first, source=IP), Join(BOB))
    assert state.owner is None
    refused(state, Mute(first.id, "bob"), ErrorCode.FORBIDDEN)
    refused(state, SlowMode(first.id, 3600), ErrorCode.FORBIDDEN)
    refused(state, Appoint(first.id, "bob"), ErrorCode.FORBIDDEN)


def test_staff_moderate_system_rooms_and_cannot_be_muted() -> None:
    state = play("lobby:de", Join(ADA), Join(STAFF, staff=True))
    state, effects = handle(state, Mute("mod", "ada"), 1)
    assert effects[0] == Reply("chat.muted", {"room": "lobby:de", "user": "ada"})
    refused(state, Send("ada", "hi", "m"), ErrorCode.FORBIDDEN)
    state, _ = handle(state, Unmute("mod", "ada"), 2)
    handle(state, Send("ada", "hi", "m"), 3)
    refused(state, Mute("mod", "mod"), ErrorCode.FORBIDDEN)


def test_a_guest_with_a_staff_flag_is_still_a_guest() -> None:
    state = play("lobby", Join(GUEST, staff=True, source=IP), Join(ADA))
    refused(state, Mute(GUEST.id, "ada"), ErrorCode.FORBIDDEN)
    refused(state, Delete(GUEST.id, "m"), ErrorCode.FORBIDDEN)


def test_the_first_registered_user_owns_a_user_room_and_appoints() -> None:
    state = play("den", Join(GUEST, source=IP), Join(ADA), Join(BOB), Join(CY))
    assert state.owner == "ada"  # the guest came first but never owns
    refused(state, Mute(GUEST.id, "bob"), ErrorCode.FORBIDDEN)
    refused(state, Mute("bob", "cy"), ErrorCode.FORBIDDEN)
    state, effects = handle(state, Appoint("ada", "bob"), 1)
    assert effects[0] == Reply("chat.appointed", {"room": "den", "user": "bob"})
    assert effects[1] == Broadcast(
        "room.moderation",
        {
            "room": "den",
            "kind": "user",
            "owner": "ada",
            "moderators": ["bob"],
            "muted": [],
            "slow_mode_s": 0.0,
        },
    )
    state, _ = handle(state, Mute("bob", "cy"), 2)  # an appointee moderates
    refused(state, Mute("bob", "ada"), ErrorCode.FORBIDDEN)  # ... but not the owner
    refused(state, Appoint("bob", "cy"), ErrorCode.FORBIDDEN)  # ... and appoints nobody
    refused(state, Appoint("ada", GUEST.id), ErrorCode.FORBIDDEN)  # guests never moderate
    refused(state, Appoint("ada", "nobody"), ErrorCode.NOT_FOUND)
    state, effects = handle(state, Appoint("ada", "bob", on=False), 3)
    assert effects[0] == Reply("chat.unappointed", {"room": "den", "user": "bob"})
    refused(state, Mute("bob", GUEST.id), ErrorCode.FORBIDDEN)


def test_a_member_another_node_holds_can_be_appointed_and_muted() -> None:
    state = play("den", Join(ADA))
    refused(state, Appoint("ada", "bob", elsewhere=GUEST), ErrorCode.NOT_FOUND)  # not bob
    refused(state, Appoint("ada", GUEST.id, elsewhere=GUEST), ErrorCode.FORBIDDEN)
    state, _ = handle(state, Appoint("ada", "bob", elsewhere=BOB), 1)
    assert state.appointed == {"bob"}
    state, _ = handle(state, Mute("ada", GUEST.id, source=IP), 2)  # a remote guest's address
    state, _ = handle(state, Join(GUEST_AGAIN, source=IP), 3)
    refused(state, Send(GUEST_AGAIN.id, "hi", "m"), ErrorCode.FORBIDDEN)


def test_ownership_outlives_the_owner_leaving() -> None:
    state = play("den", Join(ADA), Leave("ada"), Join(BOB), Join(ADA))
    assert state.owner == "ada"
    refused(state, Mute("bob", "ada"), ErrorCode.FORBIDDEN)
    handle(state, Mute("ada", "bob"), 1)


def test_appointing_a_muted_member_unmutes_them() -> None:
    state = play("den", Join(ADA), Join(BOB), Mute("ada", "bob"), Appoint("ada", "bob"))
    assert "bob" not in state.muted
    handle(state, Send("bob", "free", "m"), 1)


def test_staff_moderate_user_rooms_too() -> None:
    state = play("den", Join(ADA), Join(BOB), Join(STAFF, staff=True))
    assert state.owner == "ada"
    state, _ = handle(state, Appoint("mod", "bob"), 1)
    handle(state, Mute("mod", "cy"), 2)
    refused(state, Mute("ada", "mod"), ErrorCode.FORBIDDEN)


def test_a_muted_guest_stays_muted_with_a_fresh_guest_token() -> None:
    state = play("lobby", Join(STAFF, staff=True), Join(GUEST, source=IP), Mute("mod", GUEST.id))
    state, _ = handle(state, Leave(GUEST.id), 1)
    state, _ = handle(state, Join(GUEST_AGAIN, source=IP), 2)
    refused(state, Send(GUEST_AGAIN.id, "I'm back", "m"), ErrorCode.FORBIDDEN)
    # A registered user behind the same address is not a guest: not held by the guest's mute.
    state, _ = handle(state, Join(ADA, source=IP), 3)
    handle(state, Send("ada", "hello", "m"), 4)
    state, _ = handle(state, Unmute("mod", GUEST.id), 5)
    handle(state, Send(GUEST_AGAIN.id, "thanks", "m"), 6)


def test_moderation_pushes_never_carry_addresses() -> None:
    state = play("lobby", Join(STAFF, staff=True), Join(GUEST, source=IP))
    _, effects = handle(state, Mute("mod", GUEST.id), 1)
    assert IP not in repr([e for e in effects if isinstance(e, Broadcast | Reply)])


def test_fresh_guest_tokens_do_not_dodge_slow_mode() -> None:
    state = play("lobby", Join(STAFF, staff=True), SlowMode("mod", 60), Join(GUEST, source=IP))
    state, _ = handle(state, Send(GUEST.id, "one", "1"), 100)
    state, _ = handle(state, Join(GUEST_AGAIN, source=IP), 101)
    refused(state, Send(GUEST_AGAIN.id, "two", "2"), ErrorCode.RATE_LIMITED, now=102)
    state, _ = handle(state, Join(ADA, source=IP), 103)
    handle(state, Send("ada", "mine", "3"), 104)  # registered: its own interval


def test_guests_read_only_in_system_rooms_when_set() -> None:
    lobby = play("lobby", Join(GUEST, source=IP), guests_read_only=True)
    refused(lobby, Send(GUEST.id, "hi", "m"), ErrorCode.FORBIDDEN)
    den = play("den", Join(GUEST, source=IP), guests_read_only=True)
    handle(den, Send(GUEST.id, "hi", "m"), 1)
    open_lobby = play("lobby", Join(GUEST, source=IP))
    handle(open_lobby, Send(GUEST.id, "hi", "m"), 1)


def test_staff_delete_a_message_everywhere() -> None:
    state = play("den", Join(ADA), Join(STAFF, staff=True))
    refused(state, Delete("ada", "m1"), ErrorCode.FORBIDDEN)  # owners do not delete
    same, effects = handle(state, Delete("mod", "m1"), 12.5)
    assert same is state
    data = {"room": "den", "id": "m1"}
    assert effects == [
        Reply("chat.deleted", data),
        Broadcast("chat.deleted", data),
        DropHistory("m1"),
        Publish(topics.CHAT_MESSAGES, "chat.deleted", {**data, "by": "mod", "ts": 12500}, "den"),
    ]


def test_registered_members_report_a_message_in_history() -> None:
    message = {"room": "lobby", "id": "m1", "user": BOB.wire(), "text": "spam", "ts": 5}
    state = play("lobby", Join(ADA), Join(BOB), Join(GUEST, source=IP))
    refused(state, Report(GUEST.id, "m1", "spam", message), ErrorCode.FORBIDDEN)
    refused(state, Report("cy", "m1", "spam", message), ErrorCode.FORBIDDEN)  # not a member
    refused(state, Report("ada", "m9", "spam", None), ErrorCode.NOT_FOUND)
    refused(state, Report("bob", "m1", "spam", message), ErrorCode.BAD_REQUEST)  # own
    same, effects = handle(state, Report("ada", "m1", "  spam " + "x" * 300, message), 7)
    assert same is state
    report = report_id("m1", "ada")
    assert effects[0] == Reply("chat.reported", {"room": "lobby", "id": "m1", "report": report})
    published = effects[1]
    assert isinstance(published, Publish) and published.type == "chat.report"
    assert published.data["id"] == report and published.data["message"] == message
    assert published.data["reporter"] == ADA.wire() and len(published.data["reason"]) == 200
    assert report_id("m1", "ada") == report != report_id("m1", "cy")
