"""The frames a session may need again after a reconnect, by sequence number.

Plain data in the manner of an event queue: a deque of ``(seq, frame, origin)``
bounded by count and bytes, where ``origin`` is ``(room, push number)`` for a
room push (another node can rebuild it from the room's push log) and ``None``
for anything else. ``after(seq)`` answers with what the client
missed, or ``None`` when some of it has already been dropped (a gap), in
which case the client gets fresh snapshots instead.
"""

from __future__ import annotations

from collections import deque

Origin = tuple[str, int] | None
# Shared by every buffer that never held a frame (idle sessions); never appended to.
_EMPTY: deque[tuple[int, bytes, Origin]] = deque(maxlen=0)


class ReplayBuffer:
    def __init__(self, max_frames: int, max_bytes: int) -> None:
        self._frames: deque[tuple[int, bytes, Origin]] = _EMPTY  # a real one on first append
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
            frames = self._frames = deque()
        frames.append((seq, frame, origin))
        self._bytes += len(frame)
        if len(frames) > self._max_frames:  # a full buffer: the usual case, one out
            _, dropped, _ = frames.popleft()
            self._bytes -= len(dropped)
        while self._bytes > self._max_bytes and frames:
            _, dropped, _ = frames.popleft()
            self._bytes -= len(dropped)

    def after(self, seq: int) -> list[bytes] | None:
        """Frames after ``seq``, oldest first; ``None`` if any of them is gone."""
        if seq > self.last_seq:
            return None  # the client claims frames this session never sent
        first = self._frames[0][0] if self._frames else self.last_seq + 1
        if seq + 1 < first:
            return None
        return [frame for s, frame, _ in self._frames if s > seq]

    def origins(self, limit: int) -> list[tuple[int, Origin]]:
        """The newest ``limit`` frames' ``(seq, origin)``, oldest first."""
        start = max(0, len(self._frames) - limit)
        return [(s, origin) for s, _, origin in list(self._frames)[start:]]
