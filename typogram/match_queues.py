"""The ``MatchQueues`` port: where matchmaking tickets wait, and where each player is.

One queue per (difficulty, lang) (``keys.race_queue``): tickets by enqueue
time, each stored with who to tell (the player's name and gateway node). A
player is in one place at a time, kept by a marker (``keys.race_player``):
``q:<ticket>`` while queued, ``r:<race>`` while racing. The policy that
groups tickets is pure and lives in ``matchmaking.policy``; this port only
stores them. Adapters: ``typogram.adapters.memory_queues`` (embedded) and
``typogram.adapters.redis_queues`` (Lua scripts, so gateway nodes may match
from the same queues); ``tests/contract/test_match_queues.py`` runs one suite
against both.

Rules (every call that changes more than one key is one atomic step)
-----
1. ``enqueue`` refuses a player who has a marker (queued or racing) and
   returns that marker; otherwise it stores the ticket and marks the player
   ``q:<ticket>`` for ``ttl_s``.
2. ``take`` removes a group's tickets all or none and marks each player
   ``r:<race>``: it refuses (False, nothing changed) when a ticket is gone
   (taken by another matcher, cancelled) or when a player's marker names
   anything but that ticket (the player queued again elsewhere after their
   marker lapsed), so a player is never taken into two races. In the same
   step it keeps, for ``ttl_s``, each taken ticket's player and race.
3. ``cancel`` removes a ticket only for its own user, and clears the
   player's marker only while it still names that ticket.
3a. ``matched`` names the race a ticket was taken into, to that ticket's own
   player only (anyone else, an unknown, cancelled or expired ticket, or one
   whose outcome lapsed: ``None``). A ticket leaves its queue once (take,
   cancel or expiry) and the take keeps its race in that step, so a
   ``cancel`` that found no ticket followed by ``matched`` tells a ticket
   matched first from one that never was (a late ``match.cancel``).
4. ``claim`` marks a player in a private race unless they are elsewhere;
   ``release`` frees them from that race only.
5. Markers expire (``ttl_s``) so a crashed node cannot pin a player forever.
6. ``tickets`` lists a queue oldest first (ties by ticket id): the rating and
   enqueue time come back exactly as stored, the inputs of the policy's
   widening window.
7. Bad input (a TTL that is not a positive number, an empty group or one
   with a ticket or player twice, a ticket of another queue, an empty id, a
   difficulty or lang with ``:``, a rating that is not finite) raises
   ``ValueError`` and changes nothing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol, Self

import orjson

from typogram import keys

QUEUED: Final = "q:"  # marker prefix: waiting in a queue, then the ticket id
RACING: Final = "r:"  # marker prefix: in a race, then the race id


@dataclass(frozen=True, slots=True)
class MatchTicket:
    ticket_id: str
    user_id: str
    rating: float  # guests queue with the default rating
    difficulty: str
    lang: str
    enqueued_at_ms: int
    guest: bool = False


@dataclass(frozen=True, slots=True)
class QueuedTicket:
    """A ticket as stored: the policy's view plus who to tell (name, the player's node)."""

    ticket: MatchTicket
    name: str
    node: str

    @property
    def queue(self) -> str:
        return keys.race_queue(self.ticket.difficulty, self.ticket.lang)

    def encode(self, prefix: str = "") -> bytes:
        t = self.ticket
        return orjson.dumps(
            {
                "id": t.ticket_id,
                "user": t.user_id,
                "rating": t.rating,
                "difficulty": t.difficulty,
                "lang": t.lang,
                "at": t.enqueued_at_ms,
                "guest": t.guest,
                "name": self.name,
                "node": self.node,
                "q": prefix + self.queue,
            }
        )

    @classmethod
    def decode(cls, raw: bytes | str) -> QueuedTicket:
        """Parse a stored ticket; raises ``ValueError`` on anything malformed."""
        try:
            doc: dict[str, Any] = orjson.loads(raw)
            ticket = MatchTicket(
                ticket_id=str(doc["id"]),
                user_id=str(doc["user"]),
                rating=float(doc["rating"]),
                difficulty=str(doc["difficulty"]),
                lang=str(doc["lang"]),
                enqueued_at_ms=int(doc["at"]),
                guest=bool(doc["guest"]),
            )
            return cls(ticket, str(doc["name"]), str(doc["node"]))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"unreadable queued ticket: {exc!r}") from None


class MatchQueues(Protocol):
    """The queues and player markers (rules in this module's docstring)."""

    async def __aenter__(self) -> Self: ...
    async def __aexit__(self, *exc: object) -> None: ...

    async def ping(self) -> None: ...
    async def enqueue(self, entry: QueuedTicket, ttl_s: float) -> str | None:
        """Queue a ticket; ``None`` when queued, else the marker of where the player is."""
        ...

    async def cancel(self, user_id: str, ticket_id: str) -> bool:
        """Remove ``user_id``'s ticket; False when there is none (gone, or not theirs)."""
        ...

    async def matched(self, user_id: str, ticket_id: str) -> str | None:
        """The race ``user_id``'s ticket was taken into while kept (rule 3a), else ``None``."""
        ...

    async def queues(self) -> list[str]:
        """The queues that may hold tickets (``keys.race_queue`` names), sorted."""
        ...

    async def tickets(self, queue: str) -> list[QueuedTicket]:
        """A queue's tickets, oldest first (rule 6)."""
        ...

    async def take(
        self, queue: str, entries: Sequence[QueuedTicket], race_id: str, ttl_s: float
    ) -> bool:
        """Remove every ticket of a group and mark its players in ``race_id``, keeping
        each ticket's race for ``matched``; all or none."""
        ...

    async def claim(self, user_id: str, race_id: str, ttl_s: float) -> str | None:
        """Mark a player in ``race_id``; ``None`` if done, else where they already are."""
        ...

    async def where(self, user_id: str) -> str | None:
        """The player's marker (``q:<ticket>`` or ``r:<race>``), ``None`` when free."""
        ...

    async def release(self, user_id: str, race_id: str) -> None:
        """Clear the player's marker if it is ``r:<race_id>``."""
        ...

    def statistics(self) -> dict[str, float]: ...


# -- argument checks shared by the adapters (rule 7) ------------------------------------


def check_ttl(ttl_s: float) -> None:
    if not (isinstance(ttl_s, int | float) and math.isfinite(ttl_s) and ttl_s > 0):
        raise ValueError(f"ttl_s must be a positive number of seconds, got {ttl_s!r}")


def check_id(what: str, value: str) -> None:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{what} must be a non-empty string, got {value!r}")


def check_entry(entry: QueuedTicket) -> None:
    """A ticket to store: ids present, a queue name that cannot be mistaken for another
    (difficulty and lang without ``:``), a finite rating."""
    t = entry.ticket
    check_id("ticket id", t.ticket_id)
    check_id("user id", t.user_id)
    for what, value in (("difficulty", t.difficulty), ("lang", t.lang)):
        check_id(what, value)
        if ":" in value:
            raise ValueError(f"{what} must not contain ':', got {value!r}")
    if not math.isfinite(t.rating):
        raise ValueError(f"rating must be a finite number, got {t.rating!r}")


def check_group(queue: str, entries: Sequence[QueuedTicket]) -> None:
    """A group to take: not empty, each ticket and user once, all of ``queue``."""
    if not entries:
        raise ValueError("a group has at least one ticket")
    if len({e.ticket.ticket_id for e in entries}) != len(entries):
        raise ValueError("a ticket appears twice in the group")
    if len({e.ticket.user_id for e in entries}) != len(entries):
        raise ValueError("a player appears twice in the group")
    for entry in entries:
        check_entry(entry)
        if entry.queue != queue:
            raise ValueError(f"ticket {entry.ticket.ticket_id!r} is not in queue {queue!r}")
