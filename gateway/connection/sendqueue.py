"""A connection's bounded outbox: frames wait here while the socket is busy.

``push`` never blocks and never grows the queue past its limit: it reports
overflow and the caller closes the slow consumer (close 4008) instead.
The queue holds no task and no event: the connection starts a writer task
only while frames wait (see ``gateway.connection.connection``), which ``pop``s until the
queue is empty. An idle connection's queue is two attributes; the deque is
allocated with the first queued frame and freed when it empties.
"""

from __future__ import annotations

from collections import deque


class SendQueue:
    __slots__ = ("_closed", "_frames", "_limit")

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("a send queue needs room for at least one frame")
        self._frames: deque[bytes] | None = None
        self._limit = limit
        self._closed = False

    def __len__(self) -> int:
        return 0 if self._frames is None else len(self._frames)

    @property
    def closed(self) -> bool:
        return self._closed

    def push(self, frame: bytes) -> bool:
        """Queue a frame; ``False`` means the queue is full (nothing was queued).

        After ``close`` frames are dropped and ``True`` is returned: the
        connection is on its way out and owes nobody an overflow.
        """
        if self._closed:
            return True
        if self._frames is None:
            self._frames = deque()
        elif len(self._frames) >= self._limit:
            return False
        self._frames.append(frame)
        return True

    def pop(self) -> bytes | None:
        """The oldest waiting frame, or ``None`` when nothing waits."""
        frames = self._frames
        if not frames:
            return None
        frame = frames.popleft()
        if not frames:
            self._frames = None
        return frame

    def close(self, *, flush: bool) -> None:
        """Stop accepting frames; ``flush=False`` also frees what was waiting."""
        self._closed = True
        if not flush:
            self._frames = None
