"""Ratings after a race: direction, guests, ties, and properties over random races."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from matchmaking.rating import MU, SIGMA, Rating, update


def row(user: str, place: int, guest: bool = False) -> dict[str, Any]:
    return {"user": user, "place": place, "guest": guest, "wpm": 80.0}


def test_winners_gain_losers_lose_and_everyone_grows_surer() -> None:
    new = update({}, [row("ada", 1), row("bob", 2), row("cy", 3)])
    assert new["ada"].mu > MU > new["cy"].mu
    assert new["ada"].mu > new["bob"].mu > new["cy"].mu
    assert all(r.sigma < SIGMA and r.races == 1 for r in new.values())
    assert new["ada"].display > Rating().display == 0.0


def test_beating_a_stronger_player_is_worth_more() -> None:
    strong = Rating(1900, 200, 40)
    upset = update({"ada": Rating(1500, 200, 40), "bob": strong}, [row("ada", 1), row("bob", 2)])
    expected = update({"ada": Rating(1500, 200, 40), "bob": Rating(1100, 200, 40)},
                      [row("ada", 1), row("bob", 2)])  # fmt: skip
    assert upset["ada"].mu - 1500 > expected["ada"].mu - 1500 > 0
    assert upset["ada"].races == 41


def test_guests_are_unrated_and_do_not_count() -> None:
    with_guest = update({}, [row("ada", 1), row("gst", 2, guest=True), row("bob", 3)])
    without = update({}, [row("ada", 1), row("bob", 2)])
    assert set(with_guest) == {"ada", "bob"}
    assert with_guest == without


def test_a_race_with_one_rated_player_changes_nobody() -> None:
    assert update({}, [row("ada", 1), row("gst", 2, guest=True)]) == {}
    assert update({}, []) == {}


def test_equal_places_are_a_tie() -> None:
    new = update({}, [row("ada", 1), row("bob", 1)])
    assert new["ada"].mu == pytest.approx(new["bob"].mu) == pytest.approx(MU)


def test_a_user_twice_is_refused() -> None:
    with pytest.raises(ValueError):
        update({}, [row("ada", 1), row("ada", 2)])


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(900, 2100), min_size=2, max_size=5), st.randoms(use_true_random=False))
def test_the_winner_never_loses_and_the_last_never_gains(mus: list[float], rnd: Any) -> None:
    users = [f"u{n}" for n in range(len(mus))]
    places = list(range(1, len(users) + 1))
    rnd.shuffle(places)
    ratings = {u: Rating(mu, 150.0, 10) for u, mu in zip(users, mus, strict=True)}
    table = [row(u, p) for u, p in zip(users, places, strict=True)]
    new = update(ratings, table)
    for entry in table:
        old, now = ratings[entry["user"]], new[entry["user"]]
        if entry["place"] == 1:
            assert now.mu >= old.mu
        if entry["place"] == len(users):
            assert now.mu <= old.mu
        assert now.sigma <= (old.sigma**2 + (MU / 300) ** 2) ** 0.5  # tau keeps it moving
