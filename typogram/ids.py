"""Random ids for things made often (chat messages, their events).

``uuid.uuid4().hex`` costs an ``os.urandom`` call (a ``getrandom`` system
call) and a ``UUID`` object per id; ``RandomIds`` draws random bytes for
``POOL`` ids at once and hands them out 16 at a time: the same 128-bit,
32-hex-digit ids from the same source, without the version bits.
"""

from __future__ import annotations

import os
from typing import Final


class RandomIds:
    """Call it for a new id. One per event loop (it is not thread-safe)."""

    POOL: Final = 256

    def __init__(self) -> None:
        self._pool = b""
        self._at = 0

    def __call__(self) -> str:
        at = self._at
        if at >= len(self._pool):
            self._pool, at = os.urandom(16 * self.POOL), 0
        self._at = at + 16
        return self._pool[at : at + 16].hex()
