"""``gateway.sessions.replay``: bounded replay with gap detection and room-push origins."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.sessions.replay import ReplayBuffer


def test_after_returns_what_was_missed_or_none_for_a_gap() -> None:
    replay = ReplayBuffer(max_frames=2, max_bytes=1_000)
    assert replay.after(0) == [] and len(replay) == 0
    for seq in (1, 2, 3):
        replay.append(seq, b"f%d" % seq, ("lobby", seq * 10) if seq != 2 else None)
    assert replay.after(1) == [b"f2", b"f3"]
    assert replay.after(0) is None  # frame 1 was dropped
    assert replay.after(4) is None  # the client claims more than was sent
    assert replay.origins(5) == [(2, None), (3, ("lobby", 30))]
    assert replay.origins(1) == [(3, ("lobby", 30))]


def test_an_idle_buffer_shares_no_state_with_another() -> None:
    a, b = ReplayBuffer(4, 100), ReplayBuffer(4, 100)
    a.append(1, b"x")
    assert len(a) == 1 and len(b) == 0 and b.after(0) == []


def test_sequence_numbers_must_rise() -> None:
    replay = ReplayBuffer(4, 100)
    replay.append(1, b"x")
    with pytest.raises(ValueError):
        replay.append(1, b"y")


@given(
    max_frames=st.integers(0, 6),
    max_bytes=st.integers(0, 40),
    sizes=st.lists(st.integers(0, 15), max_size=40),
)
def test_bounds_match_a_plain_list(max_frames: int, max_bytes: int, sizes: list[int]) -> None:
    """Whatever the sizes, the buffer keeps the newest frames within both bounds."""
    replay, kept = ReplayBuffer(max_frames, max_bytes), []
    for seq, size in enumerate(sizes, start=1):
        frame = b"x" * size
        replay.append(seq, frame)
        kept.append((seq, frame))
        while kept and (len(kept) > max_frames or sum(len(f) for _, f in kept) > max_bytes):
            kept.pop(0)
        assert replay.origins(100) == [(seq, None) for seq, _ in kept]
        assert replay.size == sum(len(f) for _, f in kept)


@given(
    st.lists(st.one_of(st.none(), st.tuples(st.sampled_from("abc"), st.integers(1, 99)))),
    st.integers(0, 12),
    st.integers(-2, 20),
)
def test_newest_is_the_last_entries_in_order(
    origins: list[tuple[str, int] | None], size: int, limit: int
) -> None:
    replay = ReplayBuffer(max_frames=max(1, size), max_bytes=10_000)
    for seq, origin in enumerate(origins, start=1):
        replay.append(seq, b"f", origin)
    kept = list(enumerate(origins, start=1))[-len(replay) :] if len(replay) else []
    want = kept[len(kept) - min(len(kept), max(0, limit)) :]
    seqs, rooms, numbers = replay.newest(limit)
    assert seqs == [seq for seq, _ in want]
    assert rooms == [None if o is None else o[0] for _, o in want]
    assert numbers == [0 if o is None else o[1] for _, o in want]
    assert replay.origins(limit) == want
