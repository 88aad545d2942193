"""``gateway.races.finish``: any finish log becomes a result on the server's clock or a
``bad_request``, never another exception, and the race core then takes or refuses it."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.races.finish import limits, replayed
from rooms.race import Finish, Progress, RaceError, handle
from tests.unit.test_race import GO, TEXT, running
from typogram.codes import ErrorCode
from typogram.errors import AppError
from typogram.settings import Settings

RULES = limits(Settings())
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
