"""``gateway.sessions.session``: watermarks and what ``Session.deliver`` numbers and sends."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gateway.sessions.replay import ReplayBuffer
from gateway.sessions.session import Session, SessionRegistry, Watermark
from typogram.protocol import Push, push_payload
from typogram.tokens import Claims, TokenType


@given(
    level=st.integers(-1, 20),
    ahead=st.sets(st.integers(1, 40), max_size=5),
    numbers=st.lists(st.integers(1, 40), max_size=60),
)
def test_take_is_has_then_see(level: int, ahead: set[int], numbers: list[int]) -> None:
    fast, reference = Watermark(level, ahead), Watermark(level, ahead)
    for number in numbers:
        new = not reference.has(number)
        if new:
            reference.see(number)
        assert fast.take(number) is new
        assert (fast.level, fast.ahead) == (reference.level, reference.ahead)


class _Link:
    def __init__(self) -> None:
        self.sent: list[tuple[bytes, str]] = []

    def send(self, frame: bytes, kind: str) -> None:
        self.sent.append((frame, kind))

    def terminate(self, code: int, reason: str, *, flush: bool = False) -> None:
        raise AssertionError("not expected")


def _push(number: int) -> Push:
    push = Push("chat.message", push_payload("chat.message", {"n": number}), number)
    return push


def test_deliver_numbers_remembers_and_sends_each_room_push_once() -> None:
    claims = Claims("alice", TokenType.ACCESS, 1, "alice", "user", "jti", 2_000_000_000)
    session = Session("s-1", claims, ReplayBuffer(8, 10_000))
    session.marks["lobby"] = Watermark(3)
    link = _Link()
    session.link = link
    for number in (4, 3, 6, 5, 6, 7):  # 3: had it already; the second 6: a duplicate
        session.deliver(_push(number), "lobby")
    assert [frame for frame, _ in link.sent] == [
        b'{"t":"chat.message","d":{"n":%d},"s":%d}' % (number, seq)
        for seq, number in enumerate((4, 6, 5, 7), start=1)
    ]
    assert {kind for _, kind in link.sent} == {"chat.message"}
    assert session.replay.origins(8) == [
        (1, ("lobby", 4)),
        (2, ("lobby", 6)),
        (3, ("lobby", 5)),
        (4, ("lobby", 7)),
    ]
    assert (session.marks["lobby"].level, session.marks["lobby"].ahead) == (7, set())


def _claims(user: str) -> Claims:
    return Claims(user, TokenType.ACCESS, 1, user, "user", "jti", 2_000_000_000)


@given(moves=st.lists(st.tuples(st.booleans(), st.sampled_from("abc")), max_size=20))
def test_a_sessions_rooms_follow_its_joins_and_leaves(moves: list[tuple[bool, str]]) -> None:
    session = Session("s-1", _claims("alice"), ReplayBuffer(8, 10_000))
    expected: set[str] = set()
    for joins, room in moves:
        if joins:
            session.add_room(room)
            expected.add(room)
        else:
            session.drop_room(room)
            expected.discard(room)
        assert set(session.rooms) == expected and len(session.rooms) == len(expected)
        assert all(room in session.rooms for room in expected)


def test_the_registry_finds_a_users_sessions_until_each_is_removed() -> None:
    registry = SessionRegistry(window_s=10, max_detached=10, replay_frames=8, replay_bytes=1000)
    first, second = registry.create(_claims("alice")), registry.create(_claims("alice"))
    other = registry.create(_claims("bob"))
    assert set(registry.of_user("alice")) == {first, second} and registry.users == 2
    registry.remove(first)
    registry.remove(first)  # twice: no effect
    assert registry.of_user("alice") == [second] and registry.of_user("bob") == [other]
    registry.remove(second)
    assert registry.of_user("alice") == [] and registry.users == 1 and len(registry) == 1
