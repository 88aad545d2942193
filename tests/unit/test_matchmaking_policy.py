"""The pure matching policy: worked examples and invariants over random queues."""

from __future__ import annotations

from itertools import combinations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from matchmaking.policy import MatchPolicy, MatchRound, MatchTicket, fits, match

NOW = 1_000_000
POLICY = MatchPolicy()  # 5 max, 2 min, window 100 + 25/s up to 1000, 4 s max wait


def ticket(n: int, rating: float, waited_ms: int, user: str | None = None) -> MatchTicket:
    return MatchTicket(f"t{n}", user or f"u{n}", rating, "easy", "en", NOW - waited_ms)


def ids(result: MatchRound) -> list[list[str]]:
    return [[t.ticket_id for t in group] for group in result.groups]


def test_a_full_group_starts_at_once_oldest_first() -> None:
    queue = [ticket(n, 1500 + n, waited_ms=100 * n) for n in range(7)]
    result = match(queue, NOW, POLICY)
    assert ids(result) == [["t6", "t5", "t4", "t3", "t2"]]
    assert [t.ticket_id for t in result.waiting] == ["t1", "t0"]


def test_a_small_group_waits_until_its_oldest_has_waited_long_enough() -> None:
    queue = [ticket(0, 1500, 3_999), ticket(1, 1550, 0)]
    assert match(queue, NOW, POLICY).groups == ()
    assert ids(match(queue, NOW + 1, POLICY)) == [["t0", "t1"]]


def test_nobody_to_race_means_waiting_forever() -> None:
    result = match([ticket(0, 1500, 60_000)], NOW, POLICY)
    assert result.groups == () and len(result.waiting) == 1


def test_the_window_widens_with_waiting() -> None:
    assert POLICY.window(ticket(0, 1500, 0), NOW) == 100
    assert POLICY.window(ticket(0, 1500, 4_000), NOW) == 200
    assert POLICY.window(ticket(0, 1500, 10_000_000), NOW) == 1_000
    queue = [ticket(0, 1500, 5_000), ticket(1, 1740, 0)]  # 240 apart
    assert match(queue, NOW, POLICY).groups == ()  # window 225 at 5 s
    assert match(queue, NOW + 1_000, POLICY).groups != ()  # ... 250 at 6 s


def test_the_fullest_rating_span_wins_over_a_greedy_pick() -> None:
    # t0 (window 175) could take the older-queued t1 170 up; four newcomers 170 down fill a race.
    queue = [ticket(0, 1500, 3_000), ticket(1, 1670, 2_900)] + [
        ticket(n, 1328 + n, 100) for n in range(2, 6)
    ]
    result = match(queue, NOW, POLICY)
    assert ids(result) == [["t0", "t2", "t3", "t4", "t5"]]
    assert [t.ticket_id for t in result.waiting] == ["t1"]


def test_a_user_with_two_tickets_is_matched_once() -> None:
    queue = [ticket(0, 1500, 5_000, "ada"), ticket(1, 1500, 4_500, "ada"), ticket(2, 1500, 4_000)]
    result = match(queue, NOW, POLICY)
    assert ids(result) == [["t0", "t2"]]
    assert [t.ticket_id for t in result.waiting] == ["t1"]


def test_mixed_queues_and_bad_policies_are_refused() -> None:
    other = MatchTicket("x", "y", 1500, "hard", "en", NOW)
    with pytest.raises(ValueError):
        match([ticket(0, 1500, 0), other], NOW, POLICY)
    with pytest.raises(ValueError):
        match([ticket(0, 1500, 0), ticket(0, 1500, 0)], NOW, POLICY)
    with pytest.raises(ValueError):
        MatchPolicy(min_players=1)
    with pytest.raises(ValueError):
        MatchPolicy(widen_per_s=-1)


# -- invariants over random queues --------------------------------------------------------

tickets = st.lists(
    st.tuples(st.integers(0, 11), st.floats(1_000, 2_000), st.integers(0, 8_000)),
    max_size=24,
).map(lambda rows: [ticket(n, r, w, user=f"u{u}") for n, (u, r, w) in enumerate(rows)])
unique_users = st.lists(st.tuples(st.floats(1_000, 2_000), st.integers(0, 8_000)), max_size=12).map(
    lambda rows: [ticket(n, r, w) for n, (r, w) in enumerate(rows)]
)


@settings(max_examples=300, deadline=None)
@given(tickets)
def test_every_ticket_lands_once_and_every_group_is_legal(queue: list[MatchTicket]) -> None:
    result = match(queue, NOW, POLICY)
    placed = [t.ticket_id for g in result.groups for t in g] + [t.ticket_id for t in result.waiting]
    assert sorted(placed) == sorted(t.ticket_id for t in queue)
    users = [t.user_id for g in result.groups for t in g]
    assert len(users) == len(set(users))  # nobody in two races
    for group in result.groups:
        assert POLICY.min_players <= len(group) <= POLICY.max_players
        assert fits(group, NOW, POLICY)
        oldest = group[0]
        assert list(group) == sorted(group, key=lambda t: (t.enqueued_at_ms, t.ticket_id))
        for member in group:  # inside the widened window around the oldest
            assert abs(member.rating - oldest.rating) <= POLICY.window(oldest, NOW)
        full = len(group) == POLICY.max_players
        assert full or NOW - oldest.enqueued_at_ms >= POLICY.max_wait_ms
    assert match(list(reversed(queue)), NOW, POLICY) == result  # deterministic


@settings(max_examples=300, deadline=None)
@given(unique_users)
def test_no_full_group_and_no_overdue_oldest_is_left_waiting(queue: list[MatchTicket]) -> None:
    result = match(queue, NOW, POLICY)
    waiting = result.waiting
    for group in combinations(waiting, POLICY.max_players):
        assert not fits(group, NOW, POLICY)
    if waiting:
        oldest = waiting[0]
        if NOW - oldest.enqueued_at_ms >= POLICY.max_wait_ms:
            window = POLICY.window(oldest, NOW)
            assert all(abs(t.rating - oldest.rating) > window for t in waiting[1:])


def test_a_busy_queue_matches_quickly() -> None:
    queue = [ticket(n, 1000 + (n * 37) % 1000, (n * 13) % 6_000) for n in range(400)]
    result = match(queue, NOW, POLICY)
    assert sum(len(g) for g in result.groups) > 300


def test_a_group_with_one_user_twice_does_not_fit() -> None:
    assert not fits([ticket(0, 1500, 0, "ada"), ticket(1, 1500, 0, "ada")], NOW, POLICY)
