"""``gateway.connection.sendqueue``: bounded, lazily allocated, closes with or without a flush."""

from __future__ import annotations

import pytest

from gateway.connection.sendqueue import SendQueue


def test_frames_come_out_in_order_and_the_limit_refuses_overflow() -> None:
    queue = SendQueue(2)
    assert queue.pop() is None and len(queue) == 0
    assert queue.push(b"a") and queue.push(b"b")
    assert not queue.push(b"c")
    assert [queue.pop(), queue.pop(), queue.pop()] == [b"a", b"b", None]


def test_close_with_flush_keeps_what_waits_and_drops_what_comes_later() -> None:
    queue = SendQueue(4)
    queue.push(b"a")
    queue.close(flush=True)
    assert queue.closed and queue.push(b"late")
    assert [queue.pop(), queue.pop()] == [b"a", None]


def test_close_without_flush_frees_what_waits() -> None:
    queue = SendQueue(4)
    queue.push(b"a")
    queue.close(flush=False)
    assert len(queue) == 0 and queue.pop() is None


def test_a_queue_needs_room() -> None:
    with pytest.raises(ValueError):
        SendQueue(0)
