"""MariaDB GTID positions and what a replica has applied, as pure functions.

A MariaDB GTID position (``@@gtid_binlog_pos`` on the primary,
``@@gtid_slave_pos`` on a replica) is a comma-separated list of
``domain-server-sequence``, one per replication domain. Sequence numbers
rise within a domain, so a replica has applied everything a primary had
committed at some moment when, for every domain of the primary's position
then, the replica's sequence is at least as high (``covers``).

``LagTracker`` turns periodic samples into a replica's lag without trusting
``Seconds_Behind_Master`` (whole seconds, and 0 while the I/O thread is
behind): it keeps the primary's positions of the last few checks with the
time each was read, and a replica's lag is the age of the newest sample its
position covers. A replica that covers the newest sample has lag 0 and has
applied every write committed before that sample was read
(``applied_through``); an idle primary never makes a replica look behind.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass

Position = Mapping[int, int]  # domain id → highest sequence number seen


def parse(text: str | None) -> dict[int, int]:
    """``"0-1-42,1-2-7"`` → ``{0: 42, 1: 7}``; empty or ``None`` → ``{}``.

    Raises ``ValueError`` on anything that is not a GTID list.
    """
    position: dict[int, int] = {}
    for part in (text or "").replace("\n", "").split(","):
        part = part.strip()
        if not part:
            continue
        pieces = part.split("-")
        if len(pieces) != 3 or not all(p.isdigit() for p in pieces):
            raise ValueError(f"not a GTID: {part!r}")
        domain, _server, sequence = (int(p) for p in pieces)
        position[domain] = max(sequence, position.get(domain, 0))
    return position


def covers(applied: Position, wanted: Position) -> bool:
    """Whether a replica at ``applied`` has every transaction of ``wanted``."""
    return all(applied.get(domain, -1) >= sequence for domain, sequence in wanted.items())


@dataclass(frozen=True, slots=True)
class Sample:
    at: float  # when the primary's position was read (epoch seconds)
    position: Position


class LagTracker:
    """The primary's recent positions, and the lag of a replica position against them.

    ``history`` samples are kept: a replica further behind than the oldest
    has an infinite lag (it is skipped whatever the limit).
    """

    def __init__(self, history: int = 64) -> None:
        if history < 1:
            raise ValueError("history must be at least 1")
        self._samples: deque[Sample] = deque(maxlen=history)

    def record(self, at: float, position: Position) -> None:
        """A primary position read at ``at``; an unchanged position only moves its time."""
        if self._samples and self._samples[-1].position == position:
            self._samples[-1] = Sample(at, position)  # nothing new committed meanwhile
            return
        self._samples.append(Sample(at, dict(position)))

    def applied_through(self, replica: Position) -> float:
        """The newest sample time whose position ``replica`` covers; ``-inf`` if none."""
        for sample in reversed(self._samples):
            if covers(replica, sample.position):
                return sample.at
        return -math.inf

    def lag(self, replica: Position, now: float) -> float:
        """Seconds the replica is behind: 0 when it covers the newest sample."""
        if not self._samples:
            return math.inf
        newest = self._samples[-1]
        if covers(replica, newest.position):
            return 0.0
        return max(0.0, now - self.applied_through(replica))
