"""Turn a ``race.finish`` keystroke log into the ``ReplayedResult`` the race core checks.

The log is replayed against the race text with ``typogram.typing`` (the same
metrics as solo tests); ``typing.check`` refuses (``bad_request``) a log that
does not reproduce the text, runs time backwards, types faster than the cap
or is too uniform for a hand. A suspicious-but-possible log is accepted with
its reason codes as ``flags``. ``time_ms`` is the race time (t_ms counts from
the race start) of the last character written, i.e. the last correct one
when the text is reproduced. The core then checks the race clock, the cap
and agreement with the live progress.
"""

from __future__ import annotations

from collections.abc import Sequence

from rooms.race_state import ReplayedResult
from typogram import typing
from typogram.codes import ErrorCode
from typogram.errors import AppError
from typogram.settings import Settings


def limits(settings: Settings) -> typing.Limits:
    return typing.Limits(
        wpm_cap=settings.typing_wpm_cap,
        flag_wpm=settings.typing_flag_wpm,
        min_interval_stdev_ms=settings.typing_min_interval_stdev_ms,
        flag_interval_stdev_ms=settings.typing_flag_interval_stdev_ms,
        min_intervals=settings.typing_min_intervals,
        min_matched_pct=100.0,  # a race is the whole text, always
    )


def replayed(
    text: str, keystrokes: Sequence[Sequence[object]], rules: typing.Limits
) -> ReplayedResult:
    """Replay and judge; raises ``AppError(bad_request)`` when the log is refused."""
    try:
        run = typing.replay(text, [tuple(k) for k in keystrokes])  # type: ignore[misc]
    except typing.LogError as exc:
        raise AppError(ErrorCode.BAD_REQUEST, str(exc)) from None
    result = typing.score(run)
    verdict = typing.check(result, rules)
    if verdict.action == "reject":
        raise AppError(ErrorCode.BAD_REQUEST, f"finish refused: {verdict.message}")
    flags = tuple(r.code for r in verdict.reasons) if verdict.action == "flag" else ()
    return ReplayedResult(
        typed=run.typed,
        wpm=result.wpm,
        raw_wpm=result.raw_wpm,
        accuracy=result.accuracy,
        consistency=result.consistency,
        time_ms=max(run.written_at, default=0),
        flags=flags,
    )
