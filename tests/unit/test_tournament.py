"""The pure tournament: its clock, joins, both scoring modes, refusals and storage."""

from __future__ import annotations

from dataclasses import replace
from itertools import pairwise
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rooms.tournament import (
    Broadcast,
    Edit,
    Effect,
    Event,
    Join,
    Phase,
    RaceCompleted,
    Reply,
    Scoring,
    Tick,
    TournamentError,
    TournamentFinished,
    TournamentState,
    decode,
    encode,
    handle,
    rankings,
    validate,
)
from typogram.codes import ErrorCode

OPEN, START, END = 1_000, 10_000, 100_000
GRACE = 180_000


def fresh(**changes: Any) -> TournamentState:
    return replace(TournamentState("t1", "Spring sprint", OPEN, START, END), **changes)


def replay(
    events: list[tuple[int, Event]], state: TournamentState | None = None
) -> tuple[TournamentState, list[list[Effect]]]:
    state = state or fresh()
    out = []
    for now, event in events:
        state, effects = handle(state, event, now)
        out.append(effects)
    return state, out


def row(
    user: str, place: int, wpm: float, done: bool = True, time_ms: int = 30_000
) -> dict[str, Any]:
    return {"user": user, "place": place, "wpm": wpm, "done": done, "time_ms": time_ms}


def race(race_id: str, *rows: dict[str, Any], started: int = START + 1_000) -> RaceCompleted:
    return RaceCompleted(race_id, started, started + 40_000, rows)


def joined(*users: str, state: TournamentState | None = None) -> TournamentState:
    joins: list[tuple[int, Event]] = [
        (OPEN + n, Join(u, u.title(), rating=1400.0)) for n, u in enumerate(users)
    ]
    return replay([*joins, (START, Tick())], state)[0]


def of_type(effects: list[Effect], kind: str) -> list[Effect]:
    return [e for e in effects if getattr(e, "type", None) == kind]


def test_the_clock_moves_the_phases_and_each_move_is_broadcast() -> None:
    state, out = replay([(0, Tick()), (OPEN, Tick()), (START, Tick()), (END, Tick())])
    assert out[0] == [] and state.phase is Phase.RUNNING
    assert out[1] == [Broadcast("tournament.state", out[1][0].data)]  # type: ignore[union-attr]
    assert out[1][0].data["phase"] == "open"  # type: ignore[union-attr]
    assert out[2][0].data["phase"] == "running"  # type: ignore[union-attr]
    assert out[3] == []  # the grace: races started before the end still count
    state, [end] = replay([(END + GRACE, Tick())], state)
    assert state.phase is Phase.FINISHED
    assert [type(e).__name__ for e in end] == ["Broadcast", "Broadcast", "TournamentFinished"]
    quiet, effects = handle(state, Tick(), END + GRACE + 1)
    assert quiet is state and effects == []


def test_joining_replies_and_announces_the_new_count() -> None:
    state, [effects] = replay([(OPEN, Join("ada", "Ada"))])
    assert effects[1] == Reply("tournament.joined", {"tournament": "t1", "user": "ada"})
    assert effects[-1].data["participants"] == 1  # type: ignore[union-attr]
    state, _ = replay([(START + 5, Join("bob", "Bob"))], state)  # late joiners welcome
    assert set(state.participants) == {"ada", "bob"}


def test_best_wpm_keeps_each_best_and_ties_go_to_the_first_to_reach_it() -> None:
    state = joined("ada", "bob", "cy")
    state, out = replay(
        [
            (START + 50_000, race("r1", row("ada", 1, 90.0, time_ms=20_000), row("bob", 2, 80.0))),
            (START + 90_000, race("r2", row("bob", 1, 90.0), row("ada", 2, 70.0),
                                  started=START + 50_000)),
            (START + 95_000, race("r3", row("cy", 1, 0.0, done=False), row("zed", 2, 200.0))),
        ],
        state,
    )  # fmt: skip
    top = rankings(state)
    assert [(r["user"], r["score"], r["races"]) for r in top] == [
        ("ada", 90.0, 2),  # reached 90 first
        ("bob", 90.0, 2),
        ("cy", 0.0, 1),  # an unfinished race counts, scores nothing
    ]
    assert out[0] == [
        Broadcast("tournament.rankings", {"tournament": "t1", "top": out[0][0].data["top"]})
    ]  # type: ignore[union-attr]
    assert "zed" not in state.participants  # only participants score


def test_points_add_up_by_place() -> None:
    state = joined("ada", "bob", "cy", state=fresh(scoring=Scoring.POINTS))
    state, _ = replay(
        [
            (START + 50_000, race("r1", row("ada", 1, 90), row("bob", 2, 80), row("cy", 6, 1))),
            (START + 60_000, race("r2", row("bob", 1, 90), row("ada", 3, 80))),
        ],
        state,
    )
    assert [(r["user"], r["score"]) for r in rankings(state)] == [
        ("bob", 18.0),
        ("ada", 16.0),
        ("cy", 0.0),
    ]


def test_no_points_without_typing() -> None:
    """A heat whose racers all walked away ties them all first: nobody scores for it. A
    racer who typed without finishing still scores by place; one who typed nothing not."""
    state = joined("ada", "bob", "cy", "dee", state=fresh(scoring=Scoring.POINTS))
    idle = [{**row(user, 1, 0.0, done=False), "pos": 0} for user in ("ada", "bob")]
    state, _ = replay([(START + 50_000, race("r1", *idle))], state)
    assert [(r["user"], r["score"], r["races"]) for r in rankings(state)] == [
        ("ada", 0.0, 1),
        ("bob", 0.0, 1),
    ]
    typed = {**row("dee", 2, 30.0, done=False), "pos": 40}
    walked = {**row("bob", 3, 0.0, done=False), "pos": 0}
    state, _ = replay([(START + 60_000, race("r2", row("cy", 1, 80), typed, walked))], state)
    scores = {r["user"]: r["score"] for r in rankings(state)}
    assert scores == {"cy": 10.0, "dee": 8.0, "ada": 0.0, "bob": 0.0}


def test_only_accepted_finishes_count_in_best_wpm() -> None:
    """A flagged finish (its racer unrated, or flags from the replay) and any finish of a
    race on a custom text score nothing and count as no race; honest ones still do."""
    state = joined("ada", "bob", "cy")
    cheat = {**row("ada", 1, 240.0), "rated": False, "guest": False}
    flagged = {**row("cy", 2, 180.0), "flags": ["progress_mismatch"]}
    state, _ = replay([(START + 50_000, race("r1", cheat, flagged, row("bob", 3, 60.0)))], state)
    custom = RaceCompleted("r2", START + 2_000, START + 9_000, [row("bob", 1, 250.0)], custom=True)
    state, _ = replay([(START + 60_000, custom)], state)
    assert [(r["user"], r["score"], r["races"]) for r in rankings(state)] == [("bob", 60.0, 1)]
    assert state.counted_races == {"r1", "r2"}  # replays of either change nothing
    assert replay([(START + 70_000, Tick())], state)[0].participants == state.participants


def test_a_flagged_winner_takes_no_points_nor_anyone_elses_place() -> None:
    state = joined("ada", "bob", "cy", state=fresh(scoring=Scoring.POINTS))
    cheat = {**row("ada", 1, 240.0), "rated": False, "guest": False}
    state, _ = replay(
        [(START + 50_000, race("r1", cheat, row("bob", 2, 80), row("cy", 3, 70)))], state
    )
    assert [(r["user"], r["score"]) for r in rankings(state)] == [("bob", 10.0), ("cy", 8.0)]
    assert state.participants["ada"].races == 0


def test_a_guests_finish_still_counts_when_guests_may_play() -> None:
    state = joined("ada", state=fresh(allow_guests=True))
    state, _ = replay([(START + 1, Join("g-1", "Guest", guest=True))], state)
    guest = {**row("g-1", 1, 70.0), "rated": False, "guest": True}
    state, _ = replay([(START + 50_000, race("r1", guest, row("ada", 2, 60.0)))], state)
    assert [(r["user"], r["score"]) for r in rankings(state)] == [("g-1", 70.0), ("ada", 60.0)]


def test_an_unchanged_top_sends_no_rankings() -> None:
    state = joined("ada", "bob", state=fresh(top_n=1))
    state, [first] = replay([(START + 1, race("r1", row("ada", 1, 90)))], state)
    state, [second] = replay([(START + 2, race("r2", row("bob", 1, 50)))], state)
    assert of_type(first, "tournament.rankings") == first and len(first) == 1
    assert second == [] and state.participants["bob"].races == 1


def test_the_end_sends_final_rankings_of_everyone() -> None:
    state = joined("ada", "bob", state=fresh(top_n=1))
    state, _ = replay([(START + 1, race("r1", row("ada", 1, 90), row("bob", 2, 50)))], state)
    _, [end] = replay([(END + GRACE, Tick())], state)
    finished = end[-1]
    assert isinstance(finished, TournamentFinished)
    assert [r["user"] for r in finished.rankings] == ["ada", "bob"]
    assert len(end[1].data["top"]) == 1  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("changes", "now", "event", "code"),
    [
        ({}, OPEN - 1, Join("new", "N"), ErrorCode.CONFLICT),  # not open yet
        ({}, END, Join("new", "N"), ErrorCode.CONFLICT),  # closed
        ({}, START, Join("ada", "A"), ErrorCode.CONFLICT),  # twice
        ({"max_participants": 1}, START, Join("new", "N"), ErrorCode.CONFLICT),
        ({}, START, Join("new", "N", guest=True), ErrorCode.FORBIDDEN),
        ({"min_rating": 1400.0}, START, Join("new", "N", rating=1300), ErrorCode.FORBIDDEN),
        ({"max_rating": 1400.0}, START, Join("new", "N", rating=1500), ErrorCode.FORBIDDEN),
        ({"min_rating": 1400.0}, START, Join("new", "N"), ErrorCode.FORBIDDEN),  # no rating
        ({}, START - 1, race("r9"), ErrorCode.CONFLICT),  # not running
        ({}, START, race("r1"), ErrorCode.CONFLICT),  # counted already
        ({}, START, race("r9", started=START - 1), ErrorCode.BAD_REQUEST),
        ({}, END + 1, race("r9", started=END), ErrorCode.BAD_REQUEST),
        ({}, END + GRACE, race("r9"), ErrorCode.CONFLICT),  # finished
        ({}, START, Edit({}), ErrorCode.BAD_REQUEST),  # nothing to change
        ({}, START, Edit({"seq": 99}), ErrorCode.BAD_REQUEST),  # not editable
        ({}, START, Edit({"phase": Phase.FINISHED}), ErrorCode.BAD_REQUEST),
        ({}, START, Edit({"starts_at_ms": START + 5}), ErrorCode.CONFLICT),  # running
        ({}, START, Edit({"scoring": "points"}), ErrorCode.CONFLICT),
        ({}, START, Edit({"ends_at_ms": START}), ErrorCode.BAD_REQUEST),  # already past
        ({}, START, Edit({"max_participants": 0}), ErrorCode.BAD_REQUEST),  # below 1 joined
        ({}, START, Edit({"title": " "}), ErrorCode.BAD_REQUEST),
        ({}, START, Edit({"min_rating": 9.0, "max_rating": 1.0}), ErrorCode.BAD_REQUEST),
        ({}, END + GRACE, Edit({"title": "Later"}), ErrorCode.CONFLICT),  # finished
    ],
)
def test_illegal_events_raise_and_change_nothing(
    changes: dict[str, Any], now: int, event: Event, code: ErrorCode
) -> None:
    def build() -> TournamentState:
        state = joined("ada", state=fresh(**changes))
        return replay([(START, race("r1", row("ada", 1, 60)))], state)[0]

    state = build()
    before = encode(state)
    with pytest.raises(TournamentError) as raised:
        handle(replace(state, phase=Phase.OPEN) if now < START else state, event, now)
    assert raised.value.code is code
    assert state == build() and encode(state) == before


def test_edits_before_the_start_move_the_schedule_and_the_phase() -> None:
    state, _ = replay([(OPEN, Tick())])
    assert state.phase is Phase.OPEN
    moved, effects = handle(
        state, Edit({"starts_at_ms": OPEN + 10, "scoring": "points", "title": "Cup"}), OPEN + 20
    )
    assert (moved.phase, moved.scoring, moved.title) == (Phase.RUNNING, Scoring.POINTS, "Cup")
    assert moved.seq > state.seq
    states = of_type(effects, "tournament.state")
    assert len(states) == 1 and states[0].data["phase"] == "running"  # type: ignore[union-attr]


def test_edits_while_running_extend_and_rename_and_a_no_op_changes_nothing() -> None:
    state = joined("ada", "bob")
    longer, effects = handle(state, Edit({"ends_at_ms": END * 2, "title": "Long cup"}), START)
    assert (longer.ends_at_ms, longer.title) == (END * 2, "Long cup")
    assert of_type(effects, "tournament.state")
    assert handle(longer, Tick(), END + GRACE)[0].phase is Phase.RUNNING
    same, effects = handle(longer, Edit({"title": "Long cup"}), START)
    assert same is longer and effects == []
    # The scoring may be "changed" to what it is: nothing moves, so nothing is refused.
    assert handle(longer, Edit({"scoring": "best_wpm"}), START)[0] is longer


def test_entry_rules_admit_those_inside_them() -> None:
    state = fresh(min_rating=1400.0, max_rating=1600.0, allow_guests=True)
    state, _ = replay(
        [(OPEN, Join("ada", "A", rating=1500)), (OPEN, Join("g", "G", True, 1450))], state
    )
    assert set(state.participants) == {"ada", "g"}


@pytest.mark.parametrize(
    "changes",
    [
        {"starts_at_ms": 0},
        {"ends_at_ms": START},
        {"max_participants": 0},
        {"points_by_place": (3, -1)},
        {"min_rating": 1600.0, "max_rating": 1500.0},
        {"title": "  "},
    ],
)
def test_validate_refuses_nonsense(changes: dict[str, Any]) -> None:
    validate(fresh())
    with pytest.raises(TournamentError) as raised:
        validate(fresh(**changes))
    assert raised.value.code is ErrorCode.BAD_REQUEST


def test_the_state_survives_a_round_trip_through_bytes() -> None:
    state = joined("ada", "bob", state=fresh(scoring=Scoring.POINTS, min_rating=1.0))
    state, _ = replay([(START, race("r1", row("ada", 1, 60), row("bob", 2, 50)))], state)
    copy = decode(encode(state))
    assert copy == state and copy.scoring is Scoring.POINTS
    assert copy.counted_races == frozenset({"r1"})


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.lists(st.tuples(st.sampled_from("abcdefg"), st.floats(0, 200), st.booleans()),
                 max_size=5, unique_by=lambda r: r[0]),
        max_size=12,
    ),
    st.sampled_from(list(Scoring)),
)  # fmt: skip
def test_scores_never_drop_and_rankings_are_strictly_ordered(
    races: list[list[tuple[str, float, bool]]], scoring: Scoring
) -> None:
    state = joined("a", "b", "c", "d", "e", state=fresh(scoring=scoring))
    for n, rows in enumerate(races):
        table = [row(u, p, wpm, done) for p, (u, wpm, done) in enumerate(rows, start=1)]
        new, _ = handle(state, race(f"r{n}", *table), START + n)
        for user, old in state.participants.items():
            assert new.participants[user].score >= old.score
        state = new
    top = rankings(state, limit=None)
    assert [r["rank"] for r in top] == list(range(1, len(top) + 1))
    assert all(x["score"] >= y["score"] for x, y in pairwise(top))


def test_finished_is_final_whatever_clock_comes_later() -> None:
    state = joined("ada")
    done, effects = handle(state, Tick(), END + GRACE)
    assert done.phase is Phase.FINISHED and of_type(effects, "tournament.rankings")
    assert handle(done, Tick(), END) == (done, [])
    late = race("r-late", row("ada", 1, 99.0), started=END - 1)
    for now, event in [(START, late), (OPEN, Join("new", "N"))]:
        with pytest.raises(TournamentError):
            handle(done, event, now)
