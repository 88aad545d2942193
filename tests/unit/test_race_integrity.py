"""``rooms.race`` rules 7 and 11: a finish on the server's clock, checked against the
progress the racer reported, and who is rated (issue 13's race attacks)."""

from __future__ import annotations

import itertools
from dataclasses import replace

from matchmaking import rating
from rooms.race import (
    Finish,
    Leave,
    Progress,
    RaceFinished,
    Reconnect,
    RecordResult,
    Tick,
    agrees,
    handle,
)
from rooms.race_state import TRAIL_MAX, RaceConfig, Racer
from tests.unit.test_race import GO, T0, TEXT, done, matched, running, steady


def _finish(state, user: str, result, now: int):  # type: ignore[no-untyped-def]
    state, effects = handle(state, Finish(user, result), now)
    record = next(e for e in effects if isinstance(e, RecordResult))
    return state, record.data


def _paced(state, user: str, wpm: float, until_ms: int):  # type: ignore[no-untyped-def]
    """Progress reports twice a second at ``wpm`` (as a client sends them)."""
    for at in range(500, until_ms + 1, 500):
        pos = min(len(TEXT), int(wpm * 5 * at / 60_000))
        state, _ = handle(state, Progress(user, pos, 0), GO + at)
    return state


def test_a_finish_squeezed_into_the_last_seconds_is_flagged() -> None:
    """Issue 13: progress paced at 90 WPM, then a finish log whose keys all fall in the
    last seconds (226 WPM over its own span: the old code took that span as the time)."""
    state = _paced(running("ada", "bob"), "ada", 90, 16_000)  # 120 chars at 90 WPM: 16 s
    squeezed = steady(16_000, begin_ms=16_000 - 6_370)
    state, data = _finish(state, "ada", done(16_000, timeline=squeezed), GO + 16_000)
    assert data["place"] == 1  # it keeps its place ...
    assert "progress_mismatch" in data["flags"]  # ... flagged: unrated, off the boards
    assert data["rated"] is False and data["ranked"] is True  # (until staff approve it)
    # Its time runs from the race's start to the finish's arrival: 16 s, not 6.4.
    assert data["time_ms"] == 16_000


def test_an_honest_finish_agrees_with_its_reports() -> None:
    state = _paced(running("ada", "bob"), "ada", 90, 16_000)
    # The log typed evenly, its clock 300 ms behind the server's, received 200 ms late.
    state, data = _finish(state, "ada", done(16_200, timeline=steady(15_700)), GO + 16_200)
    assert data["flags"] == [] and data["rated"] is True


def test_agreement_allows_jitter_and_a_delayed_report() -> None:
    config = RaceConfig()
    line = steady(10_000)  # 120 chars in 10 s: 12 per second
    assert agrees((1_000, 12, 5_000, 60, 9_000, 108), line, config)
    assert agrees((3_000, 60), line, config)  # 2 s ahead of the log: the clock tolerance
    assert not agrees((1_000, 60), line, config)  # far ahead
    assert agrees((8_000, 30), line, config)  # 4 s behind: a report held up
    assert not agrees((9_500, 10), line, config)  # far behind
    assert agrees((), line, config)  # nothing reported: nothing to disagree with


def test_custom_text_races_are_unrated_for_everyone() -> None:
    """Issue 13: a private race on the text "ab" gave 240 WPM, rank 1 and a rating change."""
    state = replace(running("ada", "bob"), custom=True)
    state, _ = handle(state, Progress("ada", len(TEXT), 0), GO + 6_000)
    state, data = _finish(state, "ada", done(6_000), GO + 6_000)
    assert data["rated"] is False and data["ranked"] is False and data["custom"] is True
    state, effects = handle(state, Tick(), GO + 181_000)
    finished = next(e for e in effects if isinstance(e, RaceFinished))
    assert finished.custom is True
    assert [s["rated"] for s in finished.standings] == [False, False]


def test_standings_say_who_is_rated() -> None:
    state = running("ada", "bob", "cy")
    state = replace(state, racers={**state.racers, "cy": replace(state.racers["cy"], guest=True)})
    state, _ = handle(state, Progress("ada", len(TEXT), 0), GO + 6_000)
    state, _ = _finish(state, "ada", replace(done(6_000), flags=("symmetric_timing",)), GO + 6_000)
    state, _ = handle(state, Progress("bob", 50, 0), GO + 6_000)
    state, effects = handle(state, Tick(), GO + 181_000)
    table = next(e for e in effects if isinstance(e, RaceFinished)).standings
    rated = {s["user"]: s["rated"] for s in table}
    # The flagged finisher and the guest are not rated; the one still typing is.
    assert rated == {"ada": False, "bob": True, "cy": False}


def test_a_short_race_is_rated_but_off_the_boards() -> None:
    state = running("ada", "bob")  # 20 words: enough
    state, _ = handle(state, Progress("ada", len(TEXT), 0), GO + 6_000)
    _, data = _finish(state, "ada", done(6_000), GO + 6_000)
    assert data["ranked"] is True
    config = replace(state.config, board_min_words=30, board_min_seconds=15)
    short = replace(running("ada", "bob"), config=config)
    short, _ = handle(short, Progress("ada", len(TEXT), 0), GO + 6_000)
    _, data = _finish(short, "ada", done(6_000), GO + 6_000)
    assert data["rated"] is True and data["ranked"] is False


def test_the_trail_keeps_one_report_a_second_and_stays_bounded() -> None:
    racer = Racer("ada", "Ada", 0)
    for at in range(0, 2 * TRAIL_MAX * 1_000 + 1, 250):
        racer = racer.advanced(at // 1_000, 0, at, at)
    times = racer.trail[::2]
    assert len(times) <= TRAIL_MAX + 1 and times == tuple(sorted(times))
    assert times[0] == 0 and times[-1] == 2 * TRAIL_MAX * 1_000
    assert all(b - a >= 1_000 for a, b in itertools.pairwise(times))


def test_leaving_a_matched_race_in_the_countdown_is_a_rated_loss_not_a_dodge() -> None:
    """Rule 4: a matched player who sees the opponents in ``match.found`` and leaves
    during the countdown used to lose the seat and nothing else (out of the standings,
    not rated), while a no-show or a leave once running is a loss."""
    state, _ = handle(matched("ada", "bob"), Reconnect("ada"), T0 + 10)
    state, _ = handle(state, Reconnect("bob"), T0 + 10)
    state, _ = handle(state, Leave("bob"), T0 + 1_000)  # dodges the matchup
    state, _ = handle(state, Progress("ada", len(TEXT), 0), GO + 6_000)
    state, effects = handle(state, Finish("ada", done(6_000)), GO + 6_000)
    finished = next(e for e in effects if isinstance(e, RaceFinished))
    assert [(s["user"], s["place"], s["rated"]) for s in finished.standings] == [
        ("ada", 1, True),
        ("bob", 2, True),
    ]
    after = rating.update({}, finished.standings)
    assert after["bob"].mu < rating.MU < after["ada"].mu
