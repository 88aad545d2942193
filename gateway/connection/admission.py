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
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Iterable
from enum import StrEnum
from typing import Protocol


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
