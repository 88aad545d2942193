"""Connection caps: sockets per client address (before hello, and in all) and per user.

Rules (all per node; limits from settings):

1. At the handshake, a socket from an address that already has
   ``per_ip_before_hello`` sockets waiting for their hello, or ``per_ip``
   sockets in all, is refused with HTTP 429 (``admit`` says which cap).
2. A socket counts from its admission until its TCP connection is gone
   (``release``), whatever happened in between: a failed handshake, a hello
   never sent, a normal close. It stops counting as "before hello" once its
   hello is accepted (``greeted``).
3. After hello, a user with ``per_user`` attached sockets already gets no
   more: the new one is closed with 4029 (``user_over``). Resuming one's
   own session replaces a socket, it does not add one.
4. Every refusal is counted per cap; labels are the caps' names, never a
   value a client chose.

Work, once connected (``Capacity``, asked by ``chat.send``):

5. The node takes new work while its event loop keeps time: a sampler
   (``Capacity.sample``) sleeps ``SAMPLE_S`` and records how late it woke.
   ``lag_s`` is the worst recent lateness, halving with every later sample.
6. While ``lag_s`` is over ``max_lag_s``, only ``floor`` units of work run at
   once (the queue keeps moving and the lag keeps being measured); past
   them new work is refused (``unavailable``, nothing done). Whatever the
   lag, at most ``max_inflight`` run at once (a bound on memory, not on
   throughput).
"""

from __future__ import annotations

import asyncio
import math
from collections import Counter
from collections.abc import Callable, Hashable, Iterable
from enum import StrEnum
from typing import Final, Protocol

SAMPLE_S: Final = 0.025  # how often the loop's lateness is sampled (rule 5)
FLOOR: Final = 16  # work admitted at once while the loop lags (rule 6)


class Cap(StrEnum):
    IP_BEFORE_HELLO = "ip_before_hello"
    IP = "ip"
    USER = "user"


SETTING: dict[Cap, str] = {
    Cap.IP_BEFORE_HELLO: "ws_max_connections_per_ip_before_hello",
    Cap.IP: "ws_max_connections_per_ip",
    Cap.USER: "ws_max_connections_per_user",
}


class Attached(Protocol):
    """A session as the per-user cap sees it."""

    @property
    def id(self) -> str: ...
    @property
    def link(self) -> object | None: ...


class Admission:
    def __init__(
        self,
        *,
        per_ip_before_hello: int,
        per_ip: int,
        per_user: int,
        refused: dict[str, int] | None = None,
    ) -> None:
        """``refused``: where refusals are counted per cap (the metrics' dict)."""
        self.limits = {Cap.IP_BEFORE_HELLO: per_ip_before_hello, Cap.IP: per_ip, Cap.USER: per_user}
        self._open: Counter[str] = Counter()  # address -> admitted sockets
        self._waiting: Counter[str] = Counter()  # address -> admitted, no hello yet
        # Admitted sockets: their address, and which have not said hello. Kept here,
        # not on the socket objects: an attribute more there costs ~1 KiB each
        # (their instance dicts are at CPython's key-sharing limit).
        self._addresses: dict[Hashable, str] = {}
        self._unhello: set[Hashable] = set()
        self.refused = {} if refused is None else refused
        self.refused.update({cap.value: 0 for cap in Cap})

    def admit(self, socket: Hashable, address: str) -> Cap | None:
        """Rule 1: count a new socket, or return the cap that refuses it (not counted)."""
        if self._waiting[address] >= self.limits[Cap.IP_BEFORE_HELLO]:
            return self._refuse(Cap.IP_BEFORE_HELLO)
        if self._open[address] >= self.limits[Cap.IP]:
            return self._refuse(Cap.IP)
        self._open[address] += 1
        self._waiting[address] += 1
        self._addresses[socket] = address
        self._unhello.add(socket)
        return None

    def address_of(self, socket: Hashable) -> str | None:
        """The address an admitted socket was counted under (None: not admitted)."""
        return self._addresses.get(socket)

    def greeted(self, socket: Hashable) -> None:
        """Rule 2: an admitted socket's hello was accepted (again: no effect)."""
        if socket in self._unhello:
            self._unhello.discard(socket)
            _drop(self._waiting, self._addresses[socket])

    def release(self, socket: Hashable) -> None:
        """Rule 2: a socket is gone (one never admitted, or released already: no effect)."""
        address = self._addresses.pop(socket, None)
        if address is None:
            return
        _drop(self._open, address)
        if socket in self._unhello:
            self._unhello.discard(socket)
            _drop(self._waiting, address)

    def user_over(self, sessions: Iterable[Attached], resuming: str | None) -> bool:
        """Rule 3: True (and counted) if the user's ``sessions`` have ``per_user``
        attached sockets besides the session being resumed (its id), if any."""
        attached = sum(1 for s in sessions if s.link is not None and s.id != resuming)
        if attached < self.limits[Cap.USER]:
            return False
        self._refuse(Cap.USER)
        return True

    def message(self, cap: Cap) -> str:
        """What a refused client reads: the cap, by its setting's name and value."""
        return f"too many connections: {SETTING[cap]} = {self.limits[cap]}"

    def statistics(self) -> dict[str, float]:
        return {
            "addresses": len(self._open),
            "sockets": sum(self._open.values()),
            "before_hello": sum(self._waiting.values()),
            **{f"refused_{cap}": count for cap, count in self.refused.items()},
        }

    def _refuse(self, cap: Cap) -> Cap:
        self.refused[cap.value] += 1
        return cap


def _drop(counts: Counter[str], key: str) -> None:
    left = counts[key] - 1
    if left > 0:
        counts[key] = left
    else:
        del counts[key]


class Capacity:
    """Rules 5 and 6: whether this node takes one more unit of work, from its loop lag
    and how much work is in flight."""

    def __init__(
        self, *, max_lag_s: float = math.inf, max_inflight: int = 4096, floor: int = FLOOR
    ) -> None:
        if not max_lag_s > 0 or max_inflight < 1 or floor < 1:
            raise ValueError("max_lag_s, max_inflight and floor must be positive")
        self.max_lag_s = max_lag_s
        self.max_inflight = max_inflight
        self.floor = min(floor, max_inflight)
        self.lag_s = 0.0
        self.refused = 0

    def observe(self, late_s: float) -> None:
        """One sample: a timer fired ``late_s`` after it was due."""
        self.lag_s = max(late_s, self.lag_s / 2)

    def admits(self, inflight: int) -> bool:
        """May one more unit start while ``inflight`` run? Counts a refusal."""
        limit = self.max_inflight if self.lag_s <= self.max_lag_s else self.floor
        if inflight < limit:
            return True
        self.refused += 1
        return False

    async def sample(
        self, interval: float = SAMPLE_S, clock: Callable[[], float] | None = None
    ) -> None:
        """Measure the loop's lateness until cancelled (``clock``: the loop's, by default)."""
        clock = clock or asyncio.get_running_loop().time
        while True:
            due = clock() + interval
            await asyncio.sleep(interval)
            self.observe(max(0.0, clock() - due))
