"""Which rooms the platform owns and which users made: decided by the name alone.

* **System rooms** belong to the platform and are moderated only by staff
  (``typogram.roles.STAFF``): ``lobby``, one lobby per language
  (``lobby:<lang>``, e.g. ``lobby:de``) and the rooms of races and
  tournaments (``race:<id>``, ``tournament:<id>``). Nobody owns them.
* **User rooms** are every other name. The first registered user to join
  one that has no owner becomes its owner; the owner appoints moderators.

A pure function of the name, so every node and every client agrees without
asking anyone, and no user can make a system room theirs by joining first.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

SYSTEM_ROOMS: Final = frozenset({"lobby"})
SYSTEM_PREFIXES: Final = ("lobby:", "race:", "tournament:")


class RoomKind(StrEnum):
    SYSTEM = "system"
    USER = "user"


def room_kind(room: str) -> RoomKind:
    if room in SYSTEM_ROOMS or room.startswith(SYSTEM_PREFIXES):
        return RoomKind.SYSTEM
    return RoomKind.USER
