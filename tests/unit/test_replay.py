"""``gateway.replay``: bounded replay with gap detection and room-push origins."""

from __future__ import annotations

import pytest

from gateway.replay import ReplayBuffer


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
