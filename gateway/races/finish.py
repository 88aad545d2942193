"""Turn a ``race.finish`` keystroke log into the ``ReplayedResult`` the race core checks.

The log is replayed against the race text with ``typogram.typing`` (the same
metrics as solo tests) and scored on the *server's* clock: from the race's
``start_at`` to when the server received the finish (``received_ms``), not
over the log's own span. ``typogram.anticheat`` then refuses
(``bad_request``) a log that runs time backwards, types faster than the cap
or is robotic; a suspicious-but-possible log is accepted with its reason
codes as ``flags`` -- among them the history rules: far above the racer's
own best, or a newcomer's finish above the ``races`` record. The log's
completion time and its progress timeline go with the result, for the core
to check against the race clock and the progress reports it received
(``rooms.race`` rule 7).
"""

from __future__ import annotations

from collections.abc import Sequence

from rooms.race_state import ReplayedResult
from typogram import anticheat, typing
from typogram.codes import ErrorCode
from typogram.errors import AppError


def replayed(
    text: str,
    keystrokes: Sequence[Sequence[object]],
    rules: anticheat.Limits,
    *,
    elapsed_ms: int,
    best_wpm: float | None = None,
    record_wpm: float | None = None,
) -> ReplayedResult:
    """Replay and judge a finish received ``elapsed_ms`` after the start (t_ms in the
    log count from the start too); raises ``AppError(bad_request)`` when refused.
    ``best_wpm`` and ``record_wpm`` are the racer's history (``typogram.results.History``)
    for the anti-cheat history rules."""
    try:
        run = typing.replay(text, [tuple(k) for k in keystrokes])  # type: ignore[misc]
    except typing.LogError as exc:
        raise AppError(ErrorCode.BAD_REQUEST, str(exc)) from None
    result = typing.score(run, start_ms=0, end_ms=elapsed_ms)
    verdict, _ = anticheat.judge(run, result, rules, best_wpm=best_wpm, record_wpm=record_wpm)
    if verdict.action == "reject":
        raise AppError(ErrorCode.BAD_REQUEST, f"finish refused: {verdict.message}")
    flags = verdict.codes if verdict.action == "flag" else ()
    return ReplayedResult(
        typed=run.typed if run.completed < 0 else text,
        wpm=result.wpm,
        raw_wpm=result.raw_wpm,
        accuracy=result.accuracy,
        consistency=result.consistency,
        time_ms=elapsed_ms,
        log_ms=result.completed_ms or 0,
        flags=flags,
        timeline=typing.progress_timeline(run, until=result.first + result.counted),
    )
