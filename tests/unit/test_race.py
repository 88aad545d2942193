"""The pure race: event lists replayed with fake times, its refusals and its invariants."""

from __future__ import annotations

from dataclasses import MISSING, fields, replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rooms import race as race_core
from rooms.race import (
    Broadcast,
    CountdownElapsed,
    Disconnect,
    Effect,
    Event,
    Finish,
    Join,
    Leave,
    Progress,
    RaceError,
    RaceFinished,
    Reconnect,
    RecordResult,
    Reply,
    Start,
    StartTimer,
    Tick,
    handle,
)
from rooms.race_state import (
    Phase,
    RaceConfig,
    Racer,
    RaceState,
    ReplayedResult,
    Score,
    decode,
    encode,
    live_wpm,
)
from typogram.codes import ErrorCode

TEXT = "abcde " * 20  # 120 characters: 4.8 s at the 300 WPM cap
T0 = 1_000_000  # the lobby opens
GO = T0 + 5_000  # start_at when started at T0


def fresh(**config: int | float) -> RaceState:
    return RaceState("r1", TEXT, 42, "easy", "en", config=RaceConfig(**config))  # type: ignore[arg-type]


def replay(
    events: list[tuple[int, Event]], state: RaceState | None = None
) -> tuple[RaceState, list[list[Effect]]]:
    state = state or fresh()
    out = []
    for now, event in events:
        state, effects = handle(state, event, now)
        out.append(effects)
    return state, out


def steady(time_ms: int, length: int = len(TEXT), begin_ms: int = 0) -> tuple[int, ...]:
    """The progress timeline of a log typing ``length`` characters evenly from
    ``begin_ms`` to ``time_ms``."""
    span = time_ms - begin_ms
    return tuple(v for i in range(1, length + 1) for v in (begin_ms + i * span // length, i))


def done(
    time_ms: int, wpm: float = 100.0, typed: str = TEXT, timeline: tuple[int, ...] | None = None
) -> ReplayedResult:
    """A finish received ``time_ms`` into the race, its log typed evenly until then."""
    line = steady(time_ms) if timeline is None else timeline
    return ReplayedResult(typed, wpm, wpm + 5, 97.5, 80.0, time_ms, time_ms, (), line)


def running(*users: str) -> RaceState:
    joins: list[tuple[int, Event]] = [(T0, Join(u, u.title())) for u in users]
    state, _ = replay([*joins, (T0, Start()), (GO, Tick())])
    assert state.phase is Phase.RUNNING
    return state


def types(effects: list[Effect]) -> list[str]:
    return [getattr(e, "type", type(e).__name__) for e in effects]


# -- lobby and countdown ---------------------------------------------------------------


def test_joiners_take_the_lowest_free_seat_and_the_first_hosts() -> None:
    state, [ada, *_] = replay(
        [(T0, Join("ada", "Ada")), (T0, Join("bob", "Bob")), (T0, Join("cy", "Cy", guest=True))]
    )
    assert ada == [Reply("race.joined", ada[0].data)]  # type: ignore[union-attr]
    assert ada[0].data["text"] == TEXT  # type: ignore[union-attr]
    assert [r.seat for r in state.racers.values()] == [0, 1, 2]
    assert state.host == "ada"
    state, [left, _] = replay([(T0, Leave("ada")), (T0, Join("dee", "Dee"))], state)
    assert left == [Reply("race.left", {"race": "r1", "forfeited": False})]
    assert state.racers["dee"].seat == 0  # the freed seat
    assert state.host == "bob"


def test_joining_twice_answers_again_and_changes_nothing() -> None:
    state, _ = replay([(T0, Join("ada", "Ada"))])
    again, effects = handle(state, Join("ada", "Ada"), T0 + 1)
    assert again is state
    assert types(effects) == ["race.joined"]


def test_start_counts_down_then_runs_at_start_at() -> None:
    state, [_, _, start] = replay([(T0, Join("ada", "Ada")), (T0, Join("bob", "B")), (T0, Start())])
    assert state.phase is Phase.COUNTDOWN and state.start_at_ms == GO
    assert start[0] == Broadcast(
        "race.countdown",
        {
            "race": "r1",
            "start_at": GO,
            "text": TEXT,
            "players": [
                {"id": "ada", "name": "Ada", "guest": False, "seat": 0},
                {"id": "bob", "name": "B", "guest": False, "seat": 1},
            ],
        },
    )
    assert start[1:] == [StartTimer("countdown", GO), StartTimer("deadline", GO + 180_000)]
    with pytest.raises(RaceError) as raised:
        handle(state, CountdownElapsed(), GO - 1)
    assert raised.value.code is ErrorCode.CONFLICT
    state, effects = handle(state, CountdownElapsed(), GO)
    assert state.phase is Phase.RUNNING and effects == []
    state, effects = handle(state, CountdownElapsed(), GO + 10)  # a late timer is harmless
    assert effects == []


def test_progress_right_after_start_at_runs_the_race_without_a_tick() -> None:
    state, _ = replay(
        [(T0, Join("ada", "Ada")), (T0, Start("ada")), (GO + 500, Progress("ada", 5, 0))]
    )
    assert state.phase is Phase.RUNNING and state.racers["ada"].pos == 5


def test_leaving_in_the_lobby_frees_the_seat_and_says_so() -> None:
    state, [_, _, left] = replay(
        [(T0, Join("ada", "Ada")), (T0, Join("bob", "Bob")), (T0 + 1, Leave("ada"))]
    )
    assert left == [Reply("race.left", {"race": "r1", "forfeited": False})]
    assert set(state.racers) == {"bob"} and state.host == "bob"


def test_leaving_during_the_countdown_forfeits_the_seat() -> None:
    """Rule 4: once the countdown runs the matchup is set; leaving it is a forfeit,
    not a free way out (the leaver stays in the standings, last, and rated)."""
    state, [_, _, _, left] = replay(
        [(T0, Join("ada", "Ada")), (T0, Join("bob", "Bob")), (T0, Start()),
         (T0 + 1_000, Leave("ada"))]
    )  # fmt: skip
    assert left == [Reply("race.left", {"race": "r1", "forfeited": True})]
    ada = state.racers["ada"]
    assert ada.forfeited and ada.pos == 0 and ada.seat == 0 and not ada.connected
    assert state.phase is Phase.COUNTDOWN and state.host == "ada"  # hosting ends with the lobby
    state, out = replay(
        [(GO + 6_000, Progress("bob", 120, 0)), (GO + 6_000, Finish("bob", done(5_900)))], state
    )
    finished = out[1][-1]
    assert isinstance(finished, RaceFinished) and state.phase is Phase.FINISHED
    assert [(s["user"], s["place"], s["done"], s["rated"]) for s in finished.standings] == [
        ("bob", 1, True, True),
        ("ada", 2, False, True),
    ]


def test_joining_again_after_leaving_the_countdown_does_not_undo_the_forfeit() -> None:
    state, _ = replay(
        [(T0, Join("ada", "Ada")), (T0, Join("bob", "Bob")), (T0, Start()),
         (T0 + 1_000, Leave("ada"))]
    )  # fmt: skip
    for event in (Join("ada", "Ada"), Reconnect("ada")):
        state, effects = handle(state, event, T0 + 2_000)
        assert types(effects) == ["race.joined"]
        assert state.racers["ada"].forfeited and state.racers["ada"].seat == 0
    with pytest.raises(RaceError) as raised:
        handle(state, Progress("ada", 5, 0), GO + 1_000)
    assert raised.value.code is ErrorCode.CONFLICT  # done with this race


def test_a_countdown_everyone_leaves_ends_at_once_with_everyone_forfeited() -> None:
    state, out = replay(
        [(T0, Join("ada", "Ada")), (T0, Join("bob", "Bob")), (T0, Start()),
         (T0 + 1, Leave("ada")), (T0 + 2, Leave("bob"))]
    )  # fmt: skip
    assert state.phase is Phase.FINISHED and state.ended_at_ms == T0 + 2  # not the time limit
    assert race_core.due_at(state) is None
    finished = out[-1][-1]
    assert isinstance(finished, RaceFinished)
    assert [(s["user"], s["place"], s["done"], s["wpm"]) for s in finished.standings] == [
        ("ada", 1, False, 0.0),
        ("bob", 1, False, 0.0),
    ]
    state, effects = handle(state, Tick(), T0 + 50)
    assert types(effects) == ["race.state"]  # the last snapshot, then nothing more
    assert handle(state, Tick(), GO + 200_000) == (state, [])


# -- running ---------------------------------------------------------------------------


def test_ticks_snapshot_only_what_changed() -> None:
    state = running("ada", "bob")
    state, first = handle(state, Tick(), GO + 50)
    assert first == []  # the start tick already sent it
    state, _ = handle(state, Progress("ada", 12, 1), GO + 1_000)
    state, effects = handle(state, Tick(), GO + 1_050)
    assert effects == [
        Broadcast(
            "race.state",
            {
                "race": "r1",
                "phase": "running",
                "seq": state.seq,
                "players": [
                    {"user": "ada", "name": "Ada", "seat": 0, "pos": 12, "wpm": 144.0,
                     "done": False, "connected": True},
                    {"user": "bob", "name": "Bob", "seat": 1, "pos": 0, "wpm": 0.0,
                     "done": False, "connected": True},
                ],
            },
        )
    ]  # fmt: skip
    quiet, effects = handle(state, Tick(), GO + 1_100)
    assert effects == [] and quiet is state
    repeat, effects = handle(state, Progress("ada", 12, 1), GO + 1_200)
    assert repeat is state and effects == []


def test_a_full_race_ranks_finishers_in_order_and_ends() -> None:
    state = running("ada", "bob", "cy")
    state, out = replay(
        [
            (GO + 3_000, Progress("ada", 60, 0)),
            (GO + 3_000, Progress("bob", 50, 2)),
            (GO + 6_000, Progress("ada", 120, 0)),
            (GO + 6_100, Finish("ada", done(5_900, wpm=122.0))),
            (GO + 7_000, Progress("bob", 110, 2)),
            (GO + 7_500, Finish("bob", done(7_400, wpm=97.3))),
            (GO + 8_000, Leave("cy")),
        ],
        state,
    )
    ada = out[3]
    assert ada[0] == Reply(
        "race.finished",
        {"race": "r1", "place": 1, "wpm": 122.0, "raw_wpm": 127.0, "accuracy": 97.5,
         "consistency": 80.0, "time_ms": 5_900, "flags": []},
    )  # fmt: skip
    assert isinstance(ada[1], RecordResult) and ada[1].data["guest"] is False
    assert ada[1].data["seed"] == 42 and ada[1].data["user"] == "ada"
    assert types(out[5]) == ["race.finished", "RecordResult"]
    assert state.phase is Phase.FINISHED and state.ended_at_ms == GO + 8_000
    result, finished = out[6][1], out[6][2]
    assert isinstance(finished, RaceFinished)
    assert result == Broadcast("race.result", {"race": "r1", "standings": list(finished.standings)})
    assert [(s["user"], s["place"], s["done"]) for s in finished.standings] == [
        ("ada", 1, True),
        ("bob", 2, True),
        ("cy", 3, False),
    ]
    assert finished.standings[2]["accuracy"] is None and finished.standings[2]["wpm"] == 0.0


def test_the_time_limit_ranks_the_unfinished_by_progress() -> None:
    state = running("ada", "bob", "cy", "dee")
    state, out = replay(
        [
            (GO + 1_000, Progress("bob", 20, 0)),
            (GO + 1_000, Progress("cy", 20, 0)),
            (GO + 1_000, Progress("dee", 30, 0)),
            (GO + 179_999, Tick()),
            (GO + 180_000, Tick()),
        ],
        state,
    )
    assert types(out[3]) == ["race.state"]
    assert state.phase is Phase.FINISHED
    [finished] = [e for e in out[4] if isinstance(e, RaceFinished)]
    table = [(s["user"], s["place"], s["pos"]) for s in finished.standings]
    assert table == [("dee", 1, 30), ("bob", 2, 20), ("cy", 2, 20), ("ada", 4, 0)]
    with pytest.raises(RaceError):  # over: no more typing
        handle(state, Progress("ada", 1, 0), GO + 180_001)


def test_progress_past_the_time_limit_is_refused_and_the_tick_ends_the_race() -> None:
    state = running("ada")
    with pytest.raises(RaceError) as raised:
        handle(state, Progress("ada", 1, 0), GO + 180_000)
    assert raised.value.code is ErrorCode.CONFLICT and state.phase is Phase.RUNNING


def test_a_3000_wpm_finish_is_refused() -> None:
    state = running("ada")
    state, _ = handle(state, Progress("ada", 30, 0), GO + 1_200)
    with pytest.raises(RaceError) as raised:
        handle(state, Finish("ada", done(480, wpm=3_000.0)), GO + 1_300)
    assert raised.value.code is ErrorCode.BAD_REQUEST


def test_live_wpm_needs_time_to_pass() -> None:
    state, _ = handle(running("ada"), Progress("ada", 5, 0), GO)  # the 10-char slack
    assert live_wpm(state, state.racers["ada"]) == 0.0


def test_progress_ahead_of_the_cap_since_the_start_is_refused() -> None:
    state = running("ada")
    state, _ = handle(state, Progress("ada", 35, 0), GO + 1_000)  # 25 chars/s + 10 slack
    assert state.racers["ada"].pos == 35
    with pytest.raises(RaceError) as raised:
        handle(running("ada"), Progress("ada", 36, 0), GO + 1_000)
    assert raised.value.code is ErrorCode.BAD_REQUEST


# -- dropping out and coming back -----------------------------------------------------------


def test_a_dropped_racer_keeps_the_seat_and_continues_after_reconnecting() -> None:
    state = running("ada", "bob")
    state, out = replay(
        [
            (GO + 1_000, Progress("ada", 10, 0)),
            (GO + 2_000, Disconnect("ada")),
            (GO + 2_001, Disconnect("ada")),  # twice: harmless
            (GO + 60_000, Reconnect("ada")),
            (GO + 61_000, Progress("ada", 40, 0)),
        ],
        state,
    )
    assert out[3][0].data["phase"] == "running"  # type: ignore[union-attr]
    assert state.racers["ada"].pos == 40 and state.racers["ada"].connected


def test_progress_from_a_dropped_racer_brings_them_back() -> None:
    state, _ = replay(
        [(GO + 1, Disconnect("ada")), (GO + 500, Progress("ada", 5, 0))], running("ada")
    )
    assert state.racers["ada"].connected and state.racers["ada"].dropped_at_ms is None


def test_past_the_resume_window_a_running_racer_forfeits() -> None:
    state = running("ada", "bob")
    state, _ = replay(
        [
            (GO + 1_000, Progress("ada", 20, 0)),
            (GO + 2_000, Disconnect("ada")),
            (GO + 122_000, Tick()),
        ],
        state,
    )
    assert state.racers["ada"].forfeited and state.phase is Phase.RUNNING
    with pytest.raises(RaceError) as raised:
        handle(state, Progress("ada", 21, 0), GO + 122_001)
    assert raised.value.code is ErrorCode.CONFLICT


def test_past_the_resume_window_a_lobby_seat_is_freed() -> None:
    state, _ = replay(
        [(T0, Join("ada", "Ada")), (T0, Join("bob", "Bob")), (T0 + 1, Disconnect("ada")),
         (T0 + 120_001, Tick())]
    )  # fmt: skip
    assert set(state.racers) == {"bob"} and state.host == "bob"
    with pytest.raises(RaceError) as raised:
        handle(state, Reconnect("ada"), T0 + 120_002)
    assert raised.value.code is ErrorCode.NOT_FOUND


def test_past_the_resume_window_a_countdown_seat_is_forfeited_not_freed() -> None:
    """Rule 5 as rule 4: a drop in the lobby whose window passes in the countdown, and
    (with a window shorter than the countdown) a drop in the countdown, both forfeit."""
    state, _ = replay(
        [(T0, Join("ada", "Ada")), (T0, Join("bob", "Bob")), (T0 + 1, Disconnect("ada")),
         (T0 + 120_000, Start()), (T0 + 120_001, Tick())]
    )  # fmt: skip
    assert state.phase is Phase.COUNTDOWN and state.racers["ada"].forfeited
    short = fresh(resume_ms=1_000, countdown_ms=5_000)
    state, _ = replay(
        [(T0, Join("ada", "Ada")), (T0, Join("bob", "Bob")), (T0, Start()),
         (T0 + 100, Disconnect("bob")), (T0 + 1_100, Tick())],
        short,
    )  # fmt: skip
    assert state.phase is Phase.COUNTDOWN and state.racers["bob"].forfeited
    assert state.racers["bob"].seat == 1


def matched(*users: str) -> RaceState:
    """A race the matchmaker started: every seat awaited (rule 5a), counting down to GO."""
    joins: list[tuple[int, Event]] = [(T0, Join(u, u.title(), shown=False)) for u in users]
    state, _ = replay([*joins, (T0, Start())])
    assert state.phase is Phase.COUNTDOWN
    return state


def test_a_matched_racer_who_never_shows_up_forfeits_and_the_race_ends_without_them() -> None:
    state, _ = replay([(T0 + 10, Reconnect("ada"))], matched("ada", "bob"))  # ada got it
    no_show = GO + state.config.no_show_ms  # bob's match.found never reached him
    assert race_core.due_at(replace(state, phase=Phase.RUNNING)) == no_show
    state, _ = replay([(no_show - 1, Progress("ada", 95, 0))], state)
    assert not state.racers["bob"].done
    state, out = replay(
        [(no_show, Tick()), (GO + 19_000, Progress("ada", 120, 0)),
         (GO + 19_000, Finish("ada", done(18_900)))],
        state,
    )  # fmt: skip
    assert state.racers["bob"].forfeited and state.racers["bob"].pos == 0
    assert state.phase is Phase.FINISHED and state.ended_at_ms == GO + 19_000  # not the limit
    finished = out[2][-1]
    assert isinstance(finished, RaceFinished)
    assert [(s["user"], s["place"], s["done"]) for s in finished.standings] == [
        ("ada", 1, True),
        ("bob", 2, False),
    ]


def test_a_matched_racer_shows_up_by_reconnect_or_by_typing_and_keeps_the_seat() -> None:
    state = matched("ada", "bob")
    assert not state.racers["ada"].connected and state.racers["ada"].dropped_at_ms is None
    late = GO + state.config.no_show_ms - 1
    state, _ = replay([(T0 + 5, Reconnect("ada")), (late, Progress("bob", 5, 0))], state)
    state, _ = replay([(GO + 60_000, Tick())], state)
    assert not state.racers["ada"].done and not state.racers["bob"].done
    assert state.racers["ada"].connected and state.racers["bob"].connected
    assert state.phase is Phase.RUNNING


def test_a_shown_racer_disconnecting_gets_the_resume_window_not_the_no_show_rule() -> None:
    state, _ = replay(
        [(T0 + 5, Reconnect("ada")), (T0 + 6, Reconnect("bob")), (GO + 1, Disconnect("bob")),
         (GO + 30_000, Tick())],
        matched("ada", "bob"),
    )  # fmt: skip
    assert not state.racers["bob"].forfeited and state.racers["bob"].dropped_at_ms == GO + 1


def test_leaving_a_running_race_forfeits_and_the_last_one_typing_ends_it() -> None:
    state = running("ada", "bob")
    state, out = replay([(GO + 1_000, Progress("bob", 20, 0)), (GO + 2_000, Leave("bob"))], state)
    assert state.racers["bob"].forfeited and state.phase is Phase.RUNNING
    state, out = replay(
        [(GO + 6_000, Progress("ada", 120, 0)), (GO + 6_000, Finish("ada", done(5_900)))], state
    )
    assert state.phase is Phase.FINISHED
    finished = out[1][-1]
    assert isinstance(finished, RaceFinished)
    assert [(s["user"], s["place"]) for s in finished.standings] == [("ada", 1), ("bob", 2)]
    state, effects = handle(state, Leave("ada"), GO + 7_000)
    assert effects == [Reply("race.left", {"race": "r1", "forfeited": False})]  # finished
    again, effects = handle(state, Reconnect("ada"), GO + 7_000)
    assert again is state and effects[0].data["standings"][0]["user"] == "ada"  # type: ignore[union-attr]
    assert handle(state, Disconnect("ada"), GO + 7_001) == (state, [])


def test_a_finished_racer_leaving_keeps_the_result() -> None:
    state = running("ada", "bob")
    state, _ = replay(
        [(GO + 6_000, Progress("ada", 120, 0)), (GO + 6_000, Finish("ada", done(5_900))),
         (GO + 6_500, Leave("ada"))],
        state,
    )  # fmt: skip
    ada = state.racers["ada"]
    assert ada.place == 1 and not ada.forfeited and state.phase is Phase.RUNNING


# -- refusals --------------------------------------------------------------------------------


def at_six_seconds() -> RaceState:
    state = running("ada", "bob")
    state, _ = handle(state, Progress("ada", 100, 0), GO + 6_000)
    return state


@pytest.mark.parametrize(
    ("event", "code"),
    [
        (Join("eve", "Eve"), ErrorCode.CONFLICT),  # started
        (Leave("eve"), ErrorCode.NOT_FOUND),
        (Disconnect("eve"), ErrorCode.NOT_FOUND),
        (Reconnect("eve"), ErrorCode.NOT_FOUND),
        (Start(), ErrorCode.CONFLICT),
        (Progress("eve", 1, 0), ErrorCode.FORBIDDEN),
        (Progress("ada", 99, 0), ErrorCode.BAD_REQUEST),  # backwards
        (Progress("ada", 121, 0), ErrorCode.BAD_REQUEST),  # past the end
        (Progress("ada", 101, -1), ErrorCode.BAD_REQUEST),
        (Progress("ada", 120, 0), ErrorCode.BAD_REQUEST),  # +20 in 0 ms: a jump
        (Finish("eve", done(5_000)), ErrorCode.FORBIDDEN),
        (Finish("ada", done(5_000, typed=TEXT[:-1])), ErrorCode.BAD_REQUEST),  # not the text
        (Finish("ada", done(7_001)), ErrorCode.BAD_REQUEST),  # after the clock + slack
        (Finish("ada", done(0)), ErrorCode.BAD_REQUEST),
        (Finish("ada", done(4_700)), ErrorCode.BAD_REQUEST),  # 120 chars in 4.7 s
        (Finish("ada", done(5_000, wpm=301.0)), ErrorCode.BAD_REQUEST),
        (Finish("bob", done(5_000)), ErrorCode.BAD_REQUEST),  # live pos 0: disagrees
    ],
)
def test_illegal_events_raise_and_change_nothing(event: Event, code: ErrorCode) -> None:
    state = at_six_seconds()
    before = encode(state)
    with pytest.raises(RaceError) as raised:
        handle(state, event, GO + 6_000)
    assert raised.value.code is code
    assert state == at_six_seconds() and encode(state) == before


@pytest.mark.parametrize(
    ("events", "event", "code"),
    [
        ([(T0, Join("ada", "A"))], Start("bob"), ErrorCode.FORBIDDEN),  # not the host
        ([], Start(), ErrorCode.CONFLICT),  # nobody to race
        ([(T0, Join("ada", "A"))], CountdownElapsed(), ErrorCode.CONFLICT),
        ([(T0, Join("ada", "A"))], Progress("ada", 1, 0), ErrorCode.CONFLICT),
        ([(T0, Join(u, u)) for u in "abcde"], Join("f", "F"), ErrorCode.CONFLICT),  # full
    ],
)
def test_lobby_refusals_change_nothing(
    events: list[tuple[int, Event]], event: Event, code: ErrorCode
) -> None:
    state, _ = replay(events)
    with pytest.raises(RaceError) as raised:
        handle(state, event, T0 + 1)
    assert raised.value.code is code
    assert state == replay(events)[0]


# -- storage ---------------------------------------------------------------------------------


def test_the_state_survives_a_round_trip_through_bytes() -> None:
    state = running("ada", "bob")
    state, _ = replay(
        [(GO + 6_000, Progress("ada", 120, 3)),
         (GO + 6_000, Finish("ada", replace(done(5_900), flags=("uniform_intervals",)))),
         (GO + 6_500, Disconnect("bob"))],
        replace(state, tournament_id="t9", code="K7Q2"),
    )  # fmt: skip
    copy = decode(encode(state))
    assert copy == state
    assert copy.phase is Phase.RUNNING and copy.racers["ada"].score is not None
    after, _ = handle(copy, Tick(), GO + 7_000)  # the new owner carries on
    assert after.seq == state.seq


# -- invariants under random event sequences ---------------------------------------------------

USERS = ["ada", "bob", "cy", "dee", "eve", "fay"]
users = st.sampled_from(USERS)
events = st.one_of(
    st.builds(Join, users, st.just("N"), st.booleans(), st.booleans()),
    st.builds(Leave, users),
    st.builds(Disconnect, users),
    st.builds(Reconnect, users),
    st.builds(Start, st.one_of(st.none(), users)),
    st.just(CountdownElapsed()),
    st.builds(Progress, users, st.integers(-1, 125), st.integers(-1, 3)),
    st.builds(Finish, users, st.builds(done, st.integers(0, 200_000))),
    st.just(Tick()),
)
ORDER = list(Phase)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 40_000), events), max_size=40))
def test_random_event_sequences_keep_the_invariants(steps: list[tuple[int, Event]]) -> None:
    state, now = fresh(resume_ms=30_000, time_limit_ms=90_000), T0
    for delta, event in steps:
        now += delta
        try:
            new, effects = handle(state, event, now)
        except RaceError:
            continue
        assert ORDER.index(new.phase) >= ORDER.index(state.phase)
        assert new.seq >= state.seq
        if new.seq == state.seq:  # no change, or only a Tick's snapshot sent
            assert new is state or (isinstance(event, Tick) and not new.changed)
        seats = [r.seat for r in new.racers.values()]
        assert len(set(seats)) == len(seats) and all(0 <= s < 5 for s in seats)
        places = sorted(r.place for r in new.racers.values() if r.place)
        assert places == list(range(1, len(places) + 1))
        if state.phase is not Phase.LOBBY:  # rule 4: no seat is given up once started
            assert set(state.racers) <= set(new.racers)
        for user, racer in new.racers.items():
            old = state.racers.get(user)
            if old is not None and new.phase is not Phase.LOBBY:
                assert racer.pos >= old.pos
                assert racer.forfeited or not old.forfeited  # nothing undoes a forfeit
        if new.host is not None:
            assert new.host in new.racers
        ended = [e for e in effects if isinstance(e, RaceFinished)]
        assert len(ended) == (new.phase is Phase.FINISHED and state.phase is not Phase.FINISHED)
        state = new
    assert decode(encode(state)) == state


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 40_000), events), max_size=40))
def test_the_fast_path_agrees_with_settling_around_every_event(
    steps: list[tuple[int, Event]],
) -> None:
    """``handle`` skips settling for Progress and Tick when nothing is due; the long way
    (settle, event, settle) must give the same state, effects and refusals."""
    state, now = fresh(resume_ms=30_000, time_limit_ms=90_000), T0
    for delta, event in steps:
        now += delta
        assert race_core._due(state, now) == (race_core._settle(state, now)[0] is not state)
        due = race_core.due_at(state)  # nothing moves before it, something at it
        assert race_core._due(state, now) == (due is not None and now >= due)
        if due is not None:
            assert race_core._settle(state, max(due, 0))[0] is not state
            assert due <= 0 or race_core._settle(state, due - 1)[0] is state
        try:
            slow = race_core._handle(state, event, now)
        except RaceError as exc:
            with pytest.raises(RaceError) as fast_error:
                handle(state, event, now)
            assert (fast_error.value.code, fast_error.value.message) == (exc.code, exc.message)
            continue
        fast = handle(state, event, now)
        assert fast == slow
        state = fast[0]


def test_nothing_due_means_settling_changes_nothing_and_due_means_it_does() -> None:
    state = running("ada", "bob")  # running from GO, deadline GO + time limit
    assert not race_core._due(state, GO + 1_000)
    assert race_core._due(state, GO + state.config.time_limit_ms)  # the time limit
    gone, _ = handle(state, Disconnect("bob"), GO + 1_000)
    expires = GO + 1_000 + gone.config.resume_ms
    assert not race_core._due(gone, expires - 1) and race_core._due(gone, expires)
    settled, _ = race_core._settle(gone, expires)
    assert settled.racers["bob"].forfeited
    counting = fresh()
    for user in ("ada", "bob"):
        counting, _ = handle(counting, Join(user, user), T0)
    counting, _ = handle(counting, Start("ada"), T0)
    assert not race_core._due(counting, GO - 1) and race_core._due(counting, GO)


def _all_fields_set(obj: object) -> None:
    """Guard for the copy tests: every field differs from its default."""
    for f in fields(obj):  # type: ignore[arg-type]
        default = f.default_factory() if f.default_factory is not MISSING else f.default
        assert getattr(obj, f.name) != default, f.name


def test_the_hand_written_copies_keep_every_field() -> None:
    score = Score(90.0, 95.0, 97.5, 80.0, 60_000, ("fast",))
    racer = Racer("ada", "Ada", 3, True, False, 7, 40, 2, 9, True, 2, score, (500, 10))
    _all_fields_set(racer)
    # A report under a second after the last kept one moves the racer, not the trail ...
    assert racer.advanced(50, 3, 11, 1_400) == replace(
        racer, connected=True, dropped_at_ms=None, pos=50, errors=3, updated_ms=11
    )
    # ... one a second or more after it is kept.
    assert racer.advanced(50, 3, 11, 1_500).trail == (500, 10, 1_500, 50)
    config = RaceConfig(4, 2, 3_000, 60_000, 250.0, 9_000, 5, 20, 500, 1_500, 2_500, 20, 5)
    state = RaceState(
        "r9", "text", 7, "hard", "de", config, "t1", "K7Q2", True, Phase.RUNNING,
        {"ada": racer}, "ada", 5, 6, 8, True,
    )  # fmt: skip
    _all_fields_set(state)
    other = replace(racer, user_id="bob", seat=1)
    assert state.with_racer(other) == replace(
        state, racers={"ada": racer, "bob": other}, seq=9, changed=True
    )
    assert replace(state, changed=False).with_racer(other).changed
    assert state.snapshotted() == replace(state, changed=False)
