"""``gateway.races.finish``: any finish log becomes a result on the server's clock or a
``bad_request``, never another exception, and the race core then takes or refuses it."""

from __future__ import annotations

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.races import messages
from gateway.races.commands import to_event
from gateway.races.finish import replayed
from rooms.race import Finish, Progress, RaceError, handle
from tests.typing_logs import by_hand
from tests.unit.test_race import GO, TEXT, running
from typogram.anticheat import limits_from
from typogram.codes import ErrorCode
from typogram.errors import AppError
from typogram.protocol import Keystroke
from typogram.settings import Settings

RULES = limits_from(Settings(), whole_text=True)
keys = st.one_of(st.sampled_from([*"abcde ", "Backspace"]), st.text(max_size=3))
logs = st.lists(st.tuples(st.integers(-5, 200_000), keys), max_size=150)


@settings(max_examples=300, deadline=None)
@given(log=logs, elapsed=st.integers(-1_000, 200_000), exact=st.booleans())
def test_any_log_is_scored_or_refused_as_bad_request(
    log: list[tuple[int, str]], elapsed: int, exact: bool
) -> None:
    if exact:  # the text itself, at a random pace: mostly accepted
        log = [(t, ch) for (t, _), ch in zip(sorted(log), TEXT, strict=False)]
    try:
        result = replayed(TEXT, [list(k) for k in log], RULES, elapsed_ms=elapsed)
    except AppError as exc:
        assert exc.code is ErrorCode.BAD_REQUEST
        return
    assert result.time_ms == elapsed
    state, _ = handle(running("ada"), Progress("ada", len(TEXT), 0), GO + 5_000)
    try:
        handle(state, Finish("ada", result), GO + max(elapsed, 5_000))
    except RaceError as exc:
        assert exc.code is ErrorCode.BAD_REQUEST


def test_a_burst_no_hand_could_type_is_refused_whenever_it_starts() -> None:
    """Keys 4 ms apart (3,000 WPM) are refused even when the race's clock, which starts
    long before them, makes the finish look slow."""
    burst = [[20_000 + 4 * i, ch] for i, ch in enumerate(TEXT)]
    try:
        replayed(TEXT, burst, RULES, elapsed_ms=25_000)
    except AppError as exc:
        assert "wpm_over_cap" in exc.message or "WPM" in exc.message
    else:
        raise AssertionError("a 3,000-WPM burst was accepted")


WORDS = (
    "people would think about their work while other children found places near the water "
    "because every house had small windows and the night was long enough for stories"
)


def test_the_history_rule_judges_race_finishes_too() -> None:
    """Issue 13: a racer whose history says ~30 WPM finished at ~90 unflagged (rated, on
    the ``races`` board); a finish far above the racer's best is flagged now, as a solo
    result is, and one without a history to compare with is not."""
    log = by_hand(WORDS, wpm=90, seed=3)
    elapsed = int(log[-1][0]) + 200  # type: ignore[call-overload]
    fast = replayed(WORDS, log, RULES, elapsed_ms=elapsed, best_wpm=30.0)
    assert fast.flags == ("far_from_history",)
    assert replayed(WORDS, log, RULES, elapsed_ms=elapsed, best_wpm=85.0).flags == ()
    assert replayed(WORDS, log, RULES, elapsed_ms=elapsed).flags == ()


def test_a_newcomer_cannot_take_the_record() -> None:
    """Before the minimum history, a finish above the ``races`` board's record is held
    for review (``newcomer_record``); below it, or with no record to beat, it stands."""
    log = by_hand(WORDS, wpm=90, seed=4)
    elapsed = int(log[-1][0]) + 200  # type: ignore[call-overload]
    record = replayed(WORDS, log, RULES, elapsed_ms=elapsed, record_wpm=60.0)
    assert record.flags == ("newcomer_record",)
    assert replayed(WORDS, log, RULES, elapsed_ms=elapsed, record_wpm=150.0).flags == ()


def test_a_finish_command_carries_the_history_the_gateway_read() -> None:
    log = by_hand(TEXT, wpm=70, seed=5, typo_at=None)
    state, _ = handle(running("ada"), Progress("ada", len(TEXT), 0), GO + 5_000)
    keys = msgspec.convert(log, list[Keystroke])
    command = messages.Finish("ada", keys, GO + 30_000)
    plain = to_event(state, command, RULES, GO + 30_000)
    with_history = msgspec.structs.replace(command, best=20.0, record=10.0)
    held = to_event(state, with_history, RULES, GO + 30_000)
    assert isinstance(plain, Finish) and isinstance(held, Finish)
    assert plain.result.flags == ()
    assert held.result.flags == ("far_from_history", "newcomer_record")
