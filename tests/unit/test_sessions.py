"""``gateway.sessions.session``: watermarks and what ``Session.deliver`` numbers and sends."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gateway.sessions.replay import ReplayBuffer
from gateway.sessions.session import Session, Watermark
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
