"""Lifecycle shared by the embedded adapters in ``typogram.adapters.memory``.

Those adapters keep the contracts of ``typogram.ports`` inside one process
and are not thread-safe: call them from the event loop that entered them.
"""

from __future__ import annotations

from typing import Self


class _Embedded:
    """Lifecycle shared by the embedded adapters: enter once, refuse use after exit."""

    _state = "new"

    async def __aenter__(self) -> Self:
        if self._state != "new":
            raise RuntimeError(f"{type(self).__name__} can be entered once")
        self._state = "open"
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._state = "closed"
        self._release()

    def _release(self) -> None:
        """Drop what the adapter holds; called once on exit."""

    def _check(self) -> None:
        if self._state != "open":
            what = "closed" if self._state == "closed" else "not entered yet"
            raise RuntimeError(f"{type(self).__name__} is {what}")

    async def ping(self) -> None:
        self._check()
