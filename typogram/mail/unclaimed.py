"""Unclaimed addresses (``addresses`` rule 2): how an account whose address another
account holds keeps a unique ``users.email`` that never receives mail.

``"~<random> <address>"``: the space is in no registered address, so it never
equals one; ``shown`` gives the address back for display. Pure; imported by
``typogram.accounts`` for the owner's view of a user.
"""

from __future__ import annotations

import secrets

UNCLAIMED = "~"
EMAIL_MAX = 254


def unclaimed(address: str) -> str:
    marker = f"{UNCLAIMED}{secrets.token_hex(8)} "
    return marker + address[: EMAIL_MAX - len(marker)]


def is_unclaimed(stored: str) -> bool:
    return stored.startswith(UNCLAIMED) and " " in stored


def shown(stored: str) -> str:
    """The address a user sees for what ``users.email`` holds."""
    return stored.partition(" ")[2] if is_unclaimed(stored) else stored
