"""What every room state machine (chat, race, tournament) shares: its two
message effects and the base of its refusal error.

``Broadcast`` goes to every member of the room, race or tournament on every
node; ``Reply`` answers the connection that caused the event. A state machine
raises a ``Refused`` subclass for an illegal event and leaves its state as it
was.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from typogram.codes import ErrorCode


class Refused(Exception):
    """An event a state machine refuses, with the error code the client gets."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class Broadcast:
    """Send to every member, on every node."""

    type: str
    data: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Reply:
    """Answer the connection that caused the event."""

    type: str
    data: Mapping[str, Any]
