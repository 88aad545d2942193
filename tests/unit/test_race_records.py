"""A finished race as recorded: decoding, one row per registered racer, who is rated."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from matchmaking import rating
from rooms.race import Event, Finish, Progress, RaceFinished, Reconnect, Tick
from rooms.race_state import Phase
from tests.unit.test_race import GO, T0, TEXT, done, matched, replay
from typogram import race_records
from typogram.race_records import decode, race_row, result_rows

SCORE = {"wpm": 80.5, "raw_wpm": 83.0, "accuracy": 97.5, "consistency": 71.0, "time_ms": 21_000}


def standing(user: str, place: int, **extra: Any) -> dict[str, Any]:
    row = {"user": user, "name": user.title(), "guest": False, "place": place, "wpm": 50.0}
    row |= {"accuracy": None, "time_ms": None, "done": False, "pos": 10}
    return row | extra


def finished(*rows: dict[str, Any], **extra: Any) -> dict[str, Any]:
    data = {
        "race": "r1",
        "standings": list(rows),
        "difficulty": "easy",
        "lang": "en",
        "seed": 7,
        "started_at": 1_000,
        "ended_at": 30_000,
        "text": "the quick brown fox",
    }
    return data | extra


def test_finishers_get_their_replayed_scores_the_rest_no_accuracy_and_guests_nothing() -> None:
    data = finished(
        standing("ada", 1, done=True, accuracy=97.5, time_ms=21_000, wpm=80.5, rated=True),
        standing("guest:g1", 2, guest=True, done=True, accuracy=90.0, time_ms=25_000),
        standing("bob", 3, wpm=31.0),
        results={"ada": {**SCORE, "flags": ["wpm_high"]}, "guest:g1": SCORE},
    )
    rows = result_rows(decode(data), recorded_at=99_000)
    assert [r["id"] for r in rows] == ["r1:ada", "r1:bob"]
    ada, bob = rows
    assert (ada["finished"], ada["raw_wpm"], ada["consistency"], ada["flags"]) == (
        1,
        83.0,
        71.0,
        "wpm_high",
    )
    assert ada["created_at"] == 30_000  # the race's end, not when it was recorded
    assert (bob["finished"], bob["wpm"], bob["accuracy"], bob["time_ms"]) == (0, 31.0, None, None)
    assert bob["raw_wpm"] is None and bob["consistency"] is None


def test_an_event_from_before_results_and_texts_still_records() -> None:
    old = {
        "race": "r0",
        "standings": [standing("ada", 1, done=True, accuracy=96.0, time_ms=9_000, wpm=70.0)],
    }
    race = decode(old)
    (row,) = result_rows(race, recorded_at=5_000)
    assert (row["wpm"], row["accuracy"], row["time_ms"], row["raw_wpm"]) == (
        70.0,
        96.0,
        9_000,
        None,
    )
    assert row["created_at"] == 5_000
    assert race_row(race, 5_000)["text"] is None
    assert race.rated_standings()[0]["rated"] is True  # no field: rated unless a guest


def test_rated_false_custom_races_and_guest_ids_are_never_rated() -> None:
    rows = [
        standing("ada", 1, rated=True),
        standing("bob", 2, rated=False),  # flagged
        standing("cy", 3),  # no field: an old event
        standing("guest:x", 4),  # a guest's id, even if not marked one
        standing("dee", 5, guest=True, rated=True),
    ]
    race = decode(finished(*rows))
    assert [s["user"] for s in race.rated_standings()] == ["ada", "cy"]
    assert [s.user for s in race.registered] == ["ada", "bob", "cy"]
    assert decode(finished(*rows, custom=True)).rated_standings() == []
    after = rating.update({}, race.rated_standings())
    assert set(after) == {"ada", "cy"}


@pytest.mark.parametrize(
    "data",
    [
        {"standings": []},  # no race id
        {"race": "r", "standings": [{"place": 1}]},  # no user
        {"race": "r", "standings": [{"user": "a", "place": "first"}]},
        {"race": "x" * 33, "standings": []},
        {"race": "r", "standings": [standing(f"u{n}", n) for n in range(65)]},
        {"race": "r", "standings": [], "text": "x" * 20_001},
    ],
)
def test_payloads_that_do_not_fit_raise_value_error(data: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="does not fit"):
        decode(data)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["a", "b", "c", "d", "guest:e"]), st.booleans(), st.booleans()),
        max_size=6,
        unique_by=lambda r: r[0],
    ),
    st.booleans(),
)
def test_one_row_per_registered_racer_and_only_registered_racers_rated(
    racers: list[tuple[str, bool, bool]], custom: bool
) -> None:
    rows = [
        standing(user, place, done=done, rated=rated, guest=user.startswith("guest:"))
        for place, (user, done, rated) in enumerate(racers, start=1)
    ]
    race = decode(finished(*rows, custom=custom, results={u: SCORE for u, _, _ in racers}))
    stored = result_rows(race, 1)
    registered = [u for u, _, _ in racers if not u.startswith("guest:")]
    assert [r["user_id"] for r in stored] == registered
    assert all((r["accuracy"] is None) == (not r["finished"]) for r in stored)
    rated = {s["user"] for s in race.rated_standings()}
    assert rated <= set(registered)
    assert not rated if custom else rated == {u for u, _, ok in racers if ok and u in registered}
    assert race_records.race_row(race, 1)["players"] == len(racers)


# -- a matched player who never showed up (rooms.race rule 5a) -------------------------


def no_show_race(typed: int | None) -> RaceFinished:
    """A matched race of ada and bob: ada's seat is taken up, bob's ``match.found`` never
    reaches him; ada finishes (``typed=None``) or types ``typed`` characters and the time
    limit ends the race."""
    state, _ = replay([(T0 + 10, Reconnect("ada"))], matched("ada", "bob"))
    events: list[tuple[int, Event]] = [(GO + 1_000, Progress("ada", typed or 0, 0))]
    if typed is None:
        events = [
            (GO + 19_000, Progress("ada", len(TEXT), 0)),
            (GO + 19_000, Finish("ada", done(18_900))),
        ]
    else:
        events.append((GO + 180_000, Tick()))
    state, out = replay(events, state)
    assert state.phase is Phase.FINISHED and state.racers["bob"].forfeited
    [effect] = [e for e in out[-1] if isinstance(e, RaceFinished)]
    return effect


@pytest.mark.parametrize("typed", [None, 3])
def test_a_rated_no_show_counts_as_a_loss(typed: int | None) -> None:
    """Not showing up for a rated match is a loss, however strong the absentee: dodging a
    matchup must cost rating, or a rating could be kept by not playing."""
    effect = no_show_race(typed)
    race = decode(finished(*effect.standings, custom=effect.custom))
    rated = race.rated_standings()
    assert [(s["user"], s["place"], s["done"]) for s in rated] == [
        ("ada", 1, typed is None),
        ("bob", 2, False),
    ]
    strong, weak = rating.Rating(2_000.0, 150.0, 40), rating.Rating(1_500.0, 400.0, 3)
    after = rating.update({"bob": strong, "ada": weak}, rated)
    assert after["bob"].mu < strong.mu and after["bob"].races == 41
    assert after["ada"].mu > weak.mu and after["ada"].races == 4
