"""The matching policy, pure: one queue's tickets and the time in, groups to start out.

No I/O, no clock: the queue adapter reads the tickets of one (difficulty,
lang) queue, calls ``match``, then removes each group's tickets atomically
(all or none) and starts its race.

Rules
-----
1. A ticket's rating window starts at ``initial_window`` and widens by
   ``widen_per_s`` for every second it has waited, up to ``max_window``.
2. A group is 2..``max_players`` tickets of distinct users whose ratings all
   fit in one span no wider than the window of its oldest member: a player
   who has waited accepts more distant opponents, and newcomers join them.
3. A group starts now when it is full, or when its oldest member has waited
   ``max_wait_ms`` and it has at least ``min_players``.
4. Oldest tickets first: each waiting ticket in turn, oldest first, anchors
   the search; among the rating spans holding the anchor the fullest wins
   (ties: the lower span), and its oldest members make the group.
5. A ticket is in at most one group, a user in at most one group per round;
   a user's later duplicate tickets wait.
6. Deterministic: the same tickets and time give the same answer.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

# The ticket is the match queues' (``typogram.match_queues``): the policy reads it.
from typogram.match_queues import MatchTicket as MatchTicket


@dataclass(frozen=True, slots=True)
class MatchPolicy:
    max_players: int = 5
    min_players: int = 2
    initial_window: float = 100.0
    widen_per_s: float = 25.0
    max_window: float = 1_000.0
    max_wait_ms: int = 4_000

    def __post_init__(self) -> None:
        if not 2 <= self.min_players <= self.max_players:
            raise ValueError("need 2 <= min_players <= max_players")
        if self.initial_window < 0 or self.widen_per_s < 0 or self.max_wait_ms < 0:
            raise ValueError("windows, widening and waits are not negative")

    def window(self, ticket: MatchTicket, now_ms: int) -> float:
        """The rating distance ``ticket`` accepts at ``now_ms`` (rule 1)."""
        waited_s = max(now_ms - ticket.enqueued_at_ms, 0) / 1000
        return min(self.initial_window + self.widen_per_s * waited_s, self.max_window)


@dataclass(frozen=True, slots=True)
class MatchRound:
    """The groups to start now (each oldest first) and the tickets left waiting."""

    groups: tuple[tuple[MatchTicket, ...], ...]
    waiting: tuple[MatchTicket, ...]


def match(queue: Sequence[MatchTicket], now_ms: int, policy: MatchPolicy) -> MatchRound:
    """Form the groups that may start at ``now_ms`` from one queue's tickets.

    Every ticket must share one (difficulty, lang); ticket ids must be unique.
    """
    if len({(t.difficulty, t.lang) for t in queue}) > 1:
        raise ValueError("one queue at a time: tickets of several (difficulty, lang)")
    if len({t.ticket_id for t in queue}) != len(queue):
        raise ValueError("duplicate ticket ids")
    by_age = sorted(queue, key=_age_key)
    free = _one_per_user(by_age)  # a user's later tickets wait (rule 5)
    taken: set[str] = set()
    groups: list[tuple[MatchTicket, ...]] = []
    for anchor in list(free):
        if anchor.ticket_id in taken:
            continue
        group = _best_group(anchor, free, now_ms, policy)
        if not _ready(group, now_ms, policy):
            continue
        groups.append(group)
        taken.update(t.ticket_id for t in group)
        free = [t for t in free if t.ticket_id not in taken]
    waiting = tuple(t for t in by_age if t.ticket_id not in taken)
    return MatchRound(tuple(groups), waiting)


def fits(group: Sequence[MatchTicket], now_ms: int, policy: MatchPolicy) -> bool:
    """Rule 2: distinct users, and the rating span within the oldest member's window."""
    if len({t.user_id for t in group}) != len(group):
        return False
    oldest = min(group, key=_age_key)
    span = max(t.rating for t in group) - min(t.rating for t in group)
    return span <= policy.window(oldest, now_ms)


def _ready(group: Sequence[MatchTicket], now_ms: int, policy: MatchPolicy) -> bool:
    if len(group) >= policy.max_players:
        return True
    waited = now_ms - min(t.enqueued_at_ms for t in group)
    return len(group) >= policy.min_players and waited >= policy.max_wait_ms


def _best_group(
    anchor: MatchTicket, free: list[MatchTicket], now_ms: int, policy: MatchPolicy
) -> tuple[MatchTicket, ...]:
    """The fullest group under rule 2 whose rating span holds ``anchor``'s rating.

    ``free`` is oldest first and holds ``anchor``; tickets older than it there
    could not start, and their windows are at least ``anchor``'s, so a span no
    wider than ``anchor``'s window keeps rule 2 whoever ends up oldest.
    """
    width = policy.window(anchor, now_ms)
    near = sorted(
        (t for t in free if abs(t.rating - anchor.rating) <= width),
        key=lambda t: (t.rating, _age_key(t)),
    )
    best: list[MatchTicket] = []
    end = 0
    for start, low in enumerate(near):
        if low.rating > anchor.rating:
            break
        end = max(end, start)
        while end < len(near) and near[end].rating - low.rating <= width:
            end += 1
        span = near[start:end]
        if min(len(span), policy.max_players) > min(len(best), policy.max_players):
            best = span
    chosen = sorted(best, key=_age_key)[: policy.max_players]
    return tuple(chosen)


def _one_per_user(tickets: Iterable[MatchTicket]) -> list[MatchTicket]:
    seen: set[str] = set()
    out: list[MatchTicket] = []
    for ticket in tickets:
        if ticket.user_id not in seen:
            seen.add(ticket.user_id)
            out.append(ticket)
    return out


def _age_key(ticket: MatchTicket) -> tuple[int, str]:
    return (ticket.enqueued_at_ms, ticket.ticket_id)
