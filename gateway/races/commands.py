"""Forwardable race commands (small JSON dicts) turned into ``rooms.race`` events.

A command is what a node hands its engine or forwards to the owner:
``{"k": kind, "user": id, ...}`` with kind one of join, leave, disconnect,
reconnect, start, progress, finish. A finish carries the raw keystroke log
and ``at``, when the node that took it from the socket received it (epoch
ms): the finish's time runs from the race's start to then, so forwarding it
to the owner costs the racer nothing. It also carries the racer's history as
the taking node read it (``best``, ``record``: ``typogram.results.History``),
for the anti-cheat history rules. ``to_event`` replays the log
(``gateway.races.finish``), so only the owner pays for it.
"""

from __future__ import annotations

from gateway.races.finish import replayed
from gateway.races.inbox import Command, Replies
from rooms import race
from rooms.race_state import RaceState
from typogram import anticheat
from typogram.codes import ErrorCode
from typogram.errors import AppError


def to_event(state: RaceState, c: Command, rules: anticheat.Limits, now_ms: int) -> race.Event:
    """The event for command ``c`` applied at ``now_ms``; raises ``AppError``
    (bad_request) when it is malformed."""
    kind, user = c.get("k"), str(c.get("user", ""))
    match kind:
        case "join":
            return race.Join(user, str(c["name"]), bool(c.get("guest", False)))
        case "leave":
            return race.Leave(user)
        case "disconnect":
            return race.Disconnect(user)
        case "reconnect":
            return race.Reconnect(user)
        case "start":
            return race.Start(user or None)
        case "progress":
            return race.Progress(user, int(c["pos"]), int(c["errors"]))
        case "finish":
            # Received no later than now (clocks of two nodes may differ a little).
            received = min(int(c.get("at") or now_ms), now_ms)
            elapsed = received - (state.start_at_ms or received)
            result = replayed(
                state.text,
                c["keys"],
                rules,
                elapsed_ms=elapsed,
                best_wpm=_wpm(c.get("best")),
                record_wpm=_wpm(c.get("record")),
            )
            return race.Finish(user, result)
    raise AppError(ErrorCode.BAD_REQUEST, f"unknown race command {kind!r}")


def _wpm(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def read_only(state: RaceState, c: Command, rules: anticheat.Limits, now_ms: int) -> Replies:
    """The replies ``c`` would get from a finished race's stored state (nothing changes)."""
    try:
        _, effects = race.handle(state, to_event(state, c, rules, now_ms), now_ms)
    except race.RaceError as exc:
        raise AppError(exc.code, exc.message) from None
    return [(e.type, e.data) for e in effects if isinstance(e, race.Reply)]
