"""A connection's bounded outbox: frames wait here for the writer task.

``push`` never blocks and never grows the queue past its limit: it reports
overflow and the caller closes the slow consumer (close 4008) instead.
``idle`` tells the connection that the writer waits on an empty queue, so a
frame may skip the queue and go straight to the socket without overtaking any.
"""

from __future__ import annotations

import asyncio
from collections import deque


class SendQueue:
    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("a send queue needs room for at least one frame")
        self._frames: deque[bytes] = deque()
        self._limit = limit
        self._ready = asyncio.Event()
        self._closed = False
        self._waiting = False

    def __len__(self) -> int:
        return len(self._frames)

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def idle(self) -> bool:
        """The writer waits in ``get`` on an empty, open queue."""
        return self._waiting and not self._frames and not self._closed

    def push(self, frame: bytes) -> bool:
        """Queue a frame; ``False`` means the queue is full (nothing was queued).

        After ``close`` frames are dropped and ``True`` is returned: the
        connection is on its way out and owes nobody an overflow.
        """
        if self._closed:
            return True
        if len(self._frames) >= self._limit:
            return False
        self._frames.append(frame)
        self._ready.set()
        return True

    def close(self, *, flush: bool) -> None:
        """Stop accepting frames; ``flush=False`` also frees what was waiting."""
        self._closed = True
        if not flush:
            self._frames.clear()
        self._ready.set()

    async def get(self) -> bytes | None:
        """The next frame, waiting for one; ``None`` once closed and empty."""
        while not self._frames:
            if self._closed:
                return None
            self._ready.clear()
            self._waiting = True
            try:
                await self._ready.wait()
            finally:
                self._waiting = False
        return self._frames.popleft()
