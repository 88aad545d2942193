"""Per-connection message rate limit: a token bucket, with time passed in."""

from __future__ import annotations

from collections import deque


class TokenBucket:
    """``rate`` tokens per second, holding at most ``burst``."""

    __slots__ = ("_at", "_burst", "_rate", "_tokens")

    def __init__(self, rate: float, burst: int, now: float) -> None:
        self._rate = rate
        self._burst = float(burst)
        self._tokens = float(burst)
        self._at = now

    def allow(self, now: float) -> bool:
        self._tokens = min(self._burst, self._tokens + (now - self._at) * self._rate)
        self._at = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False


class Strikes:
    """Counts refusals; ``hit`` says True once ``limit`` fell within ``window`` seconds."""

    __slots__ = ("_limit", "_times", "_window")

    def __init__(self, limit: int, window: float) -> None:
        self._limit = max(1, limit)
        self._times: deque[float] | None = None  # allocated with the first refusal
        self._window = window

    def hit(self, now: float) -> bool:
        if self._times is None:
            self._times = deque(maxlen=self._limit)
        self._times.append(now)
        return len(self._times) == self._limit and now - self._times[0] <= self._window
