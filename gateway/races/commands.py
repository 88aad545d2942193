"""Race commands (``gateway.races.messages.RaceCommand``) turned into ``rooms.race`` events.

A command is what a node hands its engine or forwards to the owner: one of
``Join``, ``Leave``, ``Disconnect``, ``Reconnect``, ``Start``, ``Progress``,
``Finish``, the same typed value either way. A finish carries the raw
keystroke log and ``at``, when the node that took it from the socket
received it (epoch ms): the finish's time runs from the race's start to
then, so forwarding it to the owner costs the racer nothing. It also carries
the racer's history as the taking node read it (``best``, ``record``), for
the anti-cheat history rules. ``to_event`` replays the log
(``gateway.races.finish``), so only the owner pays for it.
"""

from __future__ import annotations

from gateway.races.finish import replayed
from gateway.races.inbox import Replies
from gateway.races.messages import (
    Disconnect,
    Finish,
    Join,
    Leave,
    Progress,
    RaceCommand,
    Reconnect,
    Start,
)
from rooms import race
from rooms.race_state import RaceState
from typogram import anticheat
from typogram.codes import ErrorCode
from typogram.errors import AppError


def to_event(state: RaceState, c: RaceCommand, rules: anticheat.Limits, now_ms: int) -> race.Event:
    """The event for command ``c`` applied at ``now_ms``; raises ``AppError``
    (bad_request) when it is refused (a finish whose log does not hold up)."""
    match c:
        case Progress(user, pos, errors):
            return race.Progress(user, pos, errors)
        case Join(user, name, guest):
            return race.Join(user, name, guest)
        case Leave(user):
            return race.Leave(user)
        case Disconnect(user):
            return race.Disconnect(user)
        case Reconnect(user):
            return race.Reconnect(user)
        case Start(user):
            return race.Start(user or None)
        case Finish(user, keys, at, best, record):
            # Received no later than now (clocks of two nodes may differ a little).
            received = min(at or now_ms, now_ms)
            elapsed = received - (state.start_at_ms or received)
            result = replayed(
                state.text, keys, rules, elapsed_ms=elapsed, best_wpm=best, record_wpm=record
            )
            return race.Finish(user, result)
    raise AppError(ErrorCode.BAD_REQUEST, f"not a race command: {type(c).__name__}")


def read_only(state: RaceState, c: RaceCommand, rules: anticheat.Limits, now_ms: int) -> Replies:
    """The replies ``c`` would get from a finished race's stored state (nothing changes)."""
    try:
        _, effects = race.handle(state, to_event(state, c, rules, now_ms), now_ms)
    except race.RaceError as exc:
        raise AppError(exc.code, exc.message) from None
    return [(e.type, e.data) for e in effects if isinstance(e, race.Reply)]
