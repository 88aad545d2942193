"""The pure chat room: event lists replayed with fake times, and its invariants."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rooms.chat import (
    Appoint,
    Broadcast,
    ChatRoomState,
    Delete,
    Effect,
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
    StoreHistory,
    Unmute,
    User,
    handle,
)
from rooms.kinds import RoomKind
from typogram import topics
from typogram.codes import ErrorCode

ADA = User("ada", "Ada")
BOB = User("bob", "Bob")
MOD = User("mod", "Mod")


def replay(
    events: list[tuple[float, Event]], state: ChatRoomState | None = None
) -> tuple[ChatRoomState, list[list[Effect]]]:
    state = state or ChatRoomState("lobby")
    out = []
    for now, event in events:
        state, effects = handle(state, event, now)
        out.append(effects)
    return state, out


def test_first_join_announces_presence_and_replies_with_members() -> None:
    state, [ada, bob] = replay([(0, Join(ADA)), (1, Join(BOB))])
    assert ada == [
        Reply("room.joined", {"room": "lobby", "members": [ADA.wire()]}),
        Broadcast("room.presence", {"room": "lobby", "joined": [ADA.wire()], "left": []}),
    ]
    assert bob[0] == Reply("room.joined", {"room": "lobby", "members": [ADA.wire(), BOB.wire()]})
    assert set(state.members) == {"ada", "bob"}


def test_a_second_connection_is_counted_but_not_announced() -> None:
    state, [_, second, leave_one, leave_two] = replay(
        [(0, Join(ADA)), (1, Join(ADA)), (2, Leave("ada")), (3, Leave("ada"))]
    )
    assert not any(isinstance(e, Broadcast) for e in second + leave_one)
    assert leave_two[-1] == Broadcast(
        "room.presence", {"room": "lobby", "joined": [], "left": [ADA.wire()]}
    )
    assert state.is_empty


def test_send_broadcasts_stores_and_publishes() -> None:
    _, [_, effects] = replay([(0, Join(ADA)), (12.5, Send("ada", "  hello ", "m1"))])
    message = {"room": "lobby", "id": "m1", "user": ADA.wire(), "text": "hello", "ts": 12500}
    assert effects == [
        Broadcast("chat.message", message),
        StoreHistory(message),
        Publish(topics.CHAT_MESSAGES, "chat.message", message, "lobby"),
    ]


@pytest.mark.parametrize(
    ("event", "code"),
    [
        (Send("bob", "hi", "m"), ErrorCode.FORBIDDEN),  # not a member
        (Send("ada", "   ", "m"), ErrorCode.BAD_REQUEST),
        (Send("ada", "x" * 11, "m"), ErrorCode.BAD_REQUEST),
        (Leave("bob"), ErrorCode.NOT_FOUND),
        (Mute("ada", "bob"), ErrorCode.FORBIDDEN),  # not a moderator
        (Unmute("ada", "bob"), ErrorCode.FORBIDDEN),
        (SlowMode("ada", 5), ErrorCode.FORBIDDEN),
        (Mute("mod", "mod"), ErrorCode.FORBIDDEN),  # moderators are not muted
        (SlowMode("mod", -1), ErrorCode.BAD_REQUEST),
        (SlowMode("mod", 10_000), ErrorCode.BAD_REQUEST),
    ],
)
def test_illegal_events_raise_and_change_nothing(event: Event, code: ErrorCode) -> None:
    state, _ = replay([(0, Join(ADA)), (0, Join(MOD, staff=True))], ChatRoomState("lobby", 10))
    with pytest.raises(RoomError) as raised:
        handle(state, event, 1)
    assert raised.value.code is code
    assert state == replay([(0, Join(ADA)), (0, Join(MOD, True))], ChatRoomState("lobby", 10))[0]


def test_muted_users_cannot_send_until_unmuted() -> None:
    state, [_, _, mute] = replay([(0, Join(ADA)), (0, Join(MOD, True)), (1, Mute("mod", "ada"))])
    assert mute[0] == Reply("chat.muted", {"room": "lobby", "user": "ada"})
    assert mute[1] == Broadcast(
        "room.moderation",
        {
            "room": "lobby",
            "kind": "system",
            "owner": None,
            "moderators": [],
            "muted": ["ada"],
            "slow_mode_s": 0.0,
        },
    )
    with pytest.raises(RoomError, match="muted"):
        handle(state, Send("ada", "hi", "m"), 2)
    state, _ = handle(state, Unmute("mod", "ada"), 3)
    handle(state, Send("ada", "hi", "m"), 4)


def test_a_mute_outlives_leaving_and_rejoining() -> None:
    state, _ = replay(
        [
            (0, Join(ADA)),
            (0, Join(MOD, True)),
            (1, Mute("mod", "ada")),
            (2, Leave("ada")),
            (3, Join(ADA)),
        ]
    )
    with pytest.raises(RoomError):
        handle(state, Send("ada", "back", "m"), 4)


def test_slow_mode_spaces_out_messages_per_user() -> None:
    state, _ = replay(
        [(0, Join(ADA)), (0, Join(BOB)), (0, Join(MOD, True)), (0, SlowMode("mod", 10))]
    )
    state, _ = handle(state, Send("ada", "one", "1"), 100)
    state, _ = handle(state, Send("bob", "one", "2"), 101)  # per user, not per room
    with pytest.raises(RoomError) as raised:
        handle(state, Send("ada", "two", "3"), 105)
    assert raised.value.code is ErrorCode.RATE_LIMITED
    state, _ = handle(state, Leave("ada"), 106)
    state, _ = handle(state, Join(ADA), 107)
    with pytest.raises(RoomError):  # leaving does not reset the clock
        handle(state, Send("ada", "two", "3"), 108)
    state, _ = handle(state, Send("ada", "two", "3"), 111)
    assert set(state.last_sent) == {"ada"}  # bob's interval passed: pruned
    state, _ = handle(state, SlowMode("mod", 0), 112)
    assert state.last_sent == {}


def test_a_staff_member_who_leaves_stops_moderating_here() -> None:
    state, _ = replay([(0, Join(MOD, True)), (1, Leave("mod"))])
    assert not state.moderates("mod")


# -- invariants under random event sequences ---------------------------------------------

USERS = [ADA, BOB, MOD, User("cy", "Cy", guest=True)]
ids = st.sampled_from([u.id for u in USERS])
events = st.one_of(
    st.builds(Join, st.sampled_from(USERS), st.booleans(), st.sampled_from(["", "10.0.0.1"])),
    st.builds(Leave, ids),
    st.builds(Send, ids, st.text(max_size=12), st.just("m")),
    st.builds(Mute, ids, ids),
    st.builds(Unmute, ids, ids),
    st.builds(SlowMode, ids, st.sampled_from([0.0, 1.0, 5.0, -1.0])),
    st.builds(Appoint, ids, ids, st.booleans()),
    st.builds(Delete, ids, st.just("m")),
    st.builds(Report, ids, st.just("m"), st.just("spam"), st.just({"user": {"id": "bob"}})),
)


def check_invariants(state: ChatRoomState) -> None:
    assert all(member.connections >= 1 for member in state.members.values())
    assert all(key == member.user.id for key, member in state.members.items())
    guests = {u.id for u in USERS if u.guest}
    assert all(not state.moderates(g) for g in guests)  # guests never moderate
    assert state.owner not in guests and not state.appointed & guests
    if state.kind is RoomKind.SYSTEM:
        assert state.owner is None and not state.appointed
    assert not state.muted & ({state.owner} | state.appointed)
    assert set(state.muted_sources) <= state.muted
    assert state.slow_mode_s >= 0
    if not state.slow_mode_s:
        assert not state.last_sent
    assert len(state.last_sent) <= len(USERS)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 2, allow_nan=False), events), max_size=40))
@pytest.mark.parametrize("room", ["lobby", "den"])
def test_random_event_sequences_keep_the_invariants(
    room: str, steps: list[tuple[float, Event]]
) -> None:
    state, now = ChatRoomState(room, max_text=8), 0.0
    for delta, event in steps:
        now += delta
        try:
            new, effects = handle(state, event, now)
        except RoomError:
            continue  # refused: ``state`` is untouched by construction (frozen)
        check_invariants(new)
        presence = [e for e in effects if isinstance(e, Broadcast) and e.type == "room.presence"]
        was_member = isinstance(event, Join | Leave) and (
            (event.user.id if isinstance(event, Join) else event.user_id) in state.members
        )
        if isinstance(event, Join):
            assert len(presence) == (0 if was_member else 1)
        state = new
    check_invariants(state)
