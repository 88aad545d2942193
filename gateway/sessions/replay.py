"""The frames a session may need again after a reconnect, by sequence number.

Plain data in the manner of an event queue: frames with their sequence
numbers, bounded by count and bytes, each with an ``origin``: ``(room, push
number)`` for a room push (another node can rebuild it from the room's push
log) and ``None`` for anything else. ``after(seq)`` answers with what the
client missed, or ``None`` when some of it has already been dropped (a gap),
in which case the client gets fresh snapshots instead.

Kept as parallel deques of numbers, bytes and strings, not as one deque of
``(seq, frame, origin)`` tuples: every frame sent to every client lands here
and stays for a while, and each tuple was a new object for the garbage
collector to scan (at 1,000 races, 40,000 of them at every young-generation
collection, most of its pause). Numbers, bytes and strings are not tracked.
"""

from __future__ import annotations

from collections import deque
from itertools import islice
from typing import Any

Origin = tuple[str, int] | None
# Shared by every buffer that never held a frame (idle sessions); never appended to.
_EMPTY: deque[Any] = deque(maxlen=0)


class ReplayBuffer:
    __slots__ = (
        "_bytes",
        "_frames",
        "_max_bytes",
        "_max_frames",
        "_numbers",
        "_rooms",
        "_seqs",
        "last_seq",
    )

    def __init__(self, max_frames: int, max_bytes: int) -> None:
        # Real deques on the first append; until then the shared empty one.
        self._seqs: deque[int] = _EMPTY
        self._frames: deque[bytes] = _EMPTY
        self._rooms: deque[str | None] = _EMPTY
        self._numbers: deque[int] = _EMPTY
        self._max_frames = max_frames
        self._max_bytes = max_bytes
        self._bytes = 0
        self.last_seq = 0

    def __len__(self) -> int:
        return len(self._frames)

    @property
    def size(self) -> int:
        return self._bytes

    def append(self, seq: int, frame: bytes, origin: Origin = None) -> None:
        """Record a frame; ``seq`` must be greater than every earlier one."""
        if seq <= self.last_seq:
            raise ValueError(f"sequence {seq} is not after {self.last_seq}")
        self.last_seq = seq
        frames = self._frames
        if frames is _EMPTY:
            self._seqs, self._rooms, self._numbers = deque(), deque(), deque()
            frames = self._frames = deque()
        self._seqs.append(seq)
        frames.append(frame)
        if origin is None:
            self._rooms.append(None)
            self._numbers.append(0)
        else:
            self._rooms.append(origin[0])
            self._numbers.append(origin[1])
        self._bytes += len(frame)
        if len(frames) > self._max_frames:  # a full buffer: the usual case, one out
            self._drop_oldest()
        while self._bytes > self._max_bytes and frames:
            self._drop_oldest()

    def _drop_oldest(self) -> None:
        self._seqs.popleft()
        self._rooms.popleft()
        self._numbers.popleft()
        self._bytes -= len(self._frames.popleft())

    def after(self, seq: int) -> list[bytes] | None:
        """Frames after ``seq``, oldest first; ``None`` if any of them is gone."""
        if seq > self.last_seq:
            return None  # the client claims frames this session never sent
        seqs = self._seqs
        first = seqs[0] if seqs else self.last_seq + 1
        if seq + 1 < first:
            return None
        return [frame for s, frame in zip(seqs, self._frames, strict=True) if s > seq]

    def newest(self, limit: int) -> tuple[list[int], list[str | None], list[int]]:
        """The newest ``limit`` frames' seqs, rooms (``None``: not a room push) and room
        push numbers (``0`` then), oldest first. From the newest end, in C: a record per
        numbered frame must not cost the whole buffer."""
        n = max(0, limit)
        seqs = list(islice(reversed(self._seqs), n))
        rooms = list(islice(reversed(self._rooms), n))
        numbers = list(islice(reversed(self._numbers), n))
        seqs.reverse()
        rooms.reverse()
        numbers.reverse()
        return seqs, rooms, numbers

    def origins(self, limit: int) -> list[tuple[int, Origin]]:
        """The newest ``limit`` frames' ``(seq, origin)``, oldest first."""
        seqs, rooms, numbers = self.newest(limit)
        return [
            (s, None if room is None else (room, number))
            for s, room, number in zip(seqs, rooms, numbers, strict=True)
        ]
