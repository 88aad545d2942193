"""Races as a pure state machine: ``handle(state, event, now_ms) -> (state, effects)``.

No I/O, no clock, no randomness: ``now_ms`` (server epoch milliseconds), the
text and its seed come in with the calls; the shell carries out the effects.
The shell replays a finisher's keystroke log with ``typogram.typing`` and hands
the outcome in as a ``ReplayedResult``; this module only checks that it fits.
The state's data, wire views and storage form live in ``rooms.race_state``.

Rules
-----
1. Phases run lobby -> countdown -> running -> finished, never backwards.
2. At most ``max_players`` racers; a joiner takes the lowest free seat.
   Joining is open in the lobby and the countdown; joining again is harmless.
   The first joiner hosts (private races: only the host starts).
3. ``Start`` (the host, or the matchmaker with no user) needs the lobby and
   ``min_players`` racers; ``start_at = now + countdown_ms``. The race runs
   from ``start_at`` on, whichever event comes first after it moves it.
4. Leaving in the lobby frees the seat (the lowest seat hosts next). Leaving
   once ``Start`` has set the matchup -- counting down or running -- forfeits:
   the racer keeps the seat and the progress made (none in the countdown), so
   a rated race rates them by it (rule 11); joining again answers as rule 2
   and undoes nothing. ``race.left`` says whether the seat stands forfeited.
   When every racer has left the countdown the race ends at once (rule 8).
5. A racer who disconnects keeps the seat for ``resume_ms`` and continues
   after ``Reconnect`` (or any ``Progress``). Once the window has passed the
   seat is freed in the lobby and forfeited from ``Start`` on, as rule 4
   (by default the window, 120 s, outlasts the countdown, 5 s, so only a drop
   in the lobby can run out during the countdown; both are settings).
5a. A seat the matchmaker gave (``Join(shown=False)``) is awaited: not
   connected, not dropped, until the player shows up (``Reconnect``, sent by
   the node that delivered ``match.found``, or any ``Progress``/``Finish``).
   An awaited racer still absent ``no_show_ms`` after ``start_at`` is
   forfeited (a no-show: their ``match.found`` never reached them), so the
   race ends once the others are done instead of at the time limit. The
   window outlasts a short backend outage, during which neither the notice
   nor the player's progress reaches the race's owner.
6. ``Progress`` only while running, from a racer still typing, with
   ``0 <= pos <= len(text)`` and ``errors >= 0``. ``pos`` never goes backwards
   and never gets ahead of ``wpm_cap`` -- counted from ``start_at`` and from
   the racer's previous update -- beyond ``slack_chars`` (batching, jitter).
7. ``Finish`` needs a replayed result that reproduces the whole text, scored
   on the server's clock: ``time_ms`` runs from ``start_at`` to when the server
   received the finish (not the log's span) and must fit ``wpm_cap``; the
   log's own completion (``log_ms``) may not come after it (plus
   ``clock_slack_ms``); the racer's live ``pos`` must have got within
   ``finish_tolerance_chars`` of the end. Places are given in finishing
   order. The log must also agree with the progress the racer reported
   (``Racer.trail``): each report no further ahead of the log's timeline
   than ``progress_tolerance_ms`` allows, nor behind it by more than that
   plus ``progress_delay_ms`` (``slack_chars`` aside). A finish that
   disagrees still gets its place, flagged ``progress_mismatch``: like any
   flagged finish it is unrated and off the boards until reviewed.
8. The race ends once it has started and every racer is done (finished or
   forfeited), or at ``start_at + time_limit_ms``. Standings: finishers by
   place, then the rest by progress (equal progress, equal place).
9. ``Tick`` emits a ``race.state`` snapshot only if something changed since
   the previous one.
10. An illegal event raises ``RaceError`` and changes nothing. ``seq`` rises
    with every change; ``handle`` returns the very same state object when
    nothing changed, so the shell can skip the write to ``race:{id}:state``.
11. ``rated`` (in every standing and ``RecordResult``) is false for guests,
    flagged finishes and everyone in a ``custom``-text race: ratings and
    boards skip them. ``ranked`` (``RecordResult``) says whether a board may
    take the finish once it is not flagged (approved by staff): not a guest,
    not a custom text, and the boards' minimum of typing
    (``board_min_seconds``/``_words``). A forfeit is no excuse: a racer who
    left, dropped out or never showed up (rule 5a) stays rated, ranked by
    progress, so a no-show loses rating as the last place does, and so does
    a racer who left during the countdown (rule 4).

Transition table ("settle" = the time-driven moves of rules 3, 5 and 8; it
runs before and after every event -- ``handle`` skips it for a ``Progress`` or
a ``Tick`` when nothing is due, since neither can make anything due)
---------------------------------------------------------------------------
event             phase (else conflict)   precondition (code)          effects
----------------  ----------------------  ---------------------------  ----------------------
Join              lobby, countdown        seat free (conflict)         Reply race.joined
Leave             any                     seated (not_found)           Reply race.left; lobby:
                                                                       unseat, countdown and
                                                                       running: forfeit
Disconnect        any                     seated (not_found)           -
Reconnect         any                     seated (not_found)           Reply race.joined
Start             lobby                   host or None (forbidden);    Broadcast race.countdown,
                                          >= min_players (conflict)    StartTimer x2
CountdownElapsed  running, finished       -                            -
Progress          running                 seated (forbidden); typing   -
                                          (conflict); rule 6 (bad_req)
Finish            running                 seated (forbidden); typing   Reply race.finished,
                                          (conflict); rule 7 (bad_req) RecordResult
Tick              any                     -                            changed: Broadcast race.state
(settle: expire)  lobby; countdown,       rules 5, 5a                  - (lobby: unseat; else
                  running                                              forfeit)
(settle: end)     countdown, running      rule 8                       Broadcast race.result,
                                                                       RaceFinished
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from rooms.effects import Broadcast as Broadcast  # re-exported: callers match on it
from rooms.effects import Refused
from rooms.effects import Reply as Reply
from rooms.race_state import (
    Phase,
    RaceConfig,
    Racer,
    RaceState,
    ReplayedResult,
    Score,
    joined,
    score_wire,
    snapshot,
    standings,
)
from typogram import boards
from typogram.codes import ErrorCode


class RaceError(Refused):
    """An event the race refuses; the state it was given is unchanged."""


# -- events ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Join:
    user_id: str
    name: str
    guest: bool = False
    shown: bool = True  # False: seated by the matchmaker, awaited until they show (rule 5a)


@dataclass(frozen=True, slots=True)
class Leave:
    user_id: str


@dataclass(frozen=True, slots=True)
class Disconnect:
    user_id: str


@dataclass(frozen=True, slots=True)
class Reconnect:
    user_id: str


@dataclass(frozen=True, slots=True)
class Start:
    user_id: str | None = None  # None: the matchmaker (or another system actor)


@dataclass(frozen=True, slots=True)
class CountdownElapsed:
    pass


@dataclass(frozen=True, slots=True)
class Progress:
    user_id: str
    pos: int
    errors: int


@dataclass(frozen=True, slots=True)
class Finish:
    user_id: str
    result: ReplayedResult


@dataclass(frozen=True, slots=True)
class Tick:
    pass


Event = Join | Leave | Disconnect | Reconnect | Start | CountdownElapsed | Progress | Finish | Tick


# -- effects ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StartTimer:
    """Call ``handle`` (a ``Tick`` will do) at ``at_ms``; ``name`` says why."""

    name: str
    at_ms: int


@dataclass(frozen=True, slots=True)
class RecordResult:
    """One accepted finish, for the ``race-events`` topic (key: the race id)."""

    user_id: str
    data: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class RaceFinished:
    """The race is over: publish, feed ratings and the tournament, drop the state later."""

    race_id: str
    standings: tuple[Mapping[str, Any], ...]
    tournament_id: str | None = None
    custom: bool = False


Effect = Broadcast | Reply | StartTimer | RecordResult | RaceFinished
Step = tuple[RaceState, list[Effect]]


def handle(state: RaceState, event: Event, now_ms: int) -> Step:
    """Apply one event; raises ``RaceError`` (state unchanged) when the rules forbid it."""
    kind = type(event)
    if (kind is Progress or kind is Tick) and not _due(state, now_ms):
        # The hot path (every report, every tick): with nothing time-driven due, both
        # settles are no-ops -- a Progress or a Tick cannot make one due -- so skip them.
        if isinstance(event, Progress):
            return _progress(state, event, now_ms)
        return _tick(state)
    return _handle(state, event, now_ms)


def _handle(state: RaceState, event: Event, now_ms: int) -> Step:
    """``handle`` the long way: settle, the event, settle again."""
    state, before = _settle(state, now_ms)
    match event:
        case Join():
            state, effects = _join(state, event)
        case Leave():
            state, effects = _leave(state, event, now_ms)
        case Disconnect() | Reconnect():
            state, effects = _connection(state, event, now_ms)
        case Start():
            state, effects = _start(state, event, now_ms)
        case CountdownElapsed():
            if state.phase in (Phase.LOBBY, Phase.COUNTDOWN):
                raise RaceError(ErrorCode.CONFLICT, "the countdown has not elapsed")
            effects = []  # settling already moved the race on
        case Progress():
            state, effects = _progress(state, event, now_ms)
        case Finish():
            state, effects = _finish(state, event, now_ms)
        case Tick():
            state, effects = _tick(state)
    state, after = _settle(state, now_ms)
    return state, before + effects + after


def _tick(state: RaceState) -> Step:
    if not state.changed:
        return state, []
    return state.snapshotted(), [Broadcast("race.state", snapshot(state))]


def _join(state: RaceState, event: Join) -> Step:
    if event.user_id in state.racers:  # a retry or a second tab: answer again
        return state, [Reply("race.joined", joined(state))]
    if state.phase not in (Phase.LOBBY, Phase.COUNTDOWN):
        raise RaceError(ErrorCode.CONFLICT, "the race has already started")
    taken = {r.seat for r in state.racers.values()}
    free = [s for s in range(state.config.max_players) if s not in taken]
    if not free:
        raise RaceError(ErrorCode.CONFLICT, "the race is full")
    racers = dict(state.racers)
    racers[event.user_id] = Racer(
        event.user_id, event.name, free[0], event.guest, connected=event.shown
    )
    new = _bump(state, racers=racers, host=state.host or event.user_id)
    return new, [Reply("race.joined", joined(new))]


def _leave(state: RaceState, event: Leave, now_ms: int) -> Step:
    racer = _seated(state, event.user_id, ErrorCode.NOT_FOUND)
    if state.phase is Phase.FINISHED:
        return state, [_left(state, racer.forfeited)]
    if state.phase is Phase.LOBBY:
        return _unseat(state, racer.user_id), [_left(state, False)]
    # Counting down or running: the matchup is set, so leaving it is a forfeit (rule 4).
    gone = replace(racer, connected=False, dropped_at_ms=now_ms, forfeited=not racer.score)
    new = _bump(state, racers={**state.racers, racer.user_id: gone})
    return new, [_left(state, gone.forfeited)]


def _left(state: RaceState, forfeited: bool) -> Reply:
    return Reply("race.left", {"race": state.race_id, "forfeited": forfeited})


def _connection(state: RaceState, event: Disconnect | Reconnect, now_ms: int) -> Step:
    racer = _seated(state, event.user_id, ErrorCode.NOT_FOUND)
    if isinstance(event, Reconnect):
        new = state
        if not racer.connected:
            back = replace(racer, connected=True, dropped_at_ms=None)
            new = _bump(state, racers={**state.racers, racer.user_id: back})
        return new, [Reply("race.joined", joined(new))]
    if not racer.connected or state.phase is Phase.FINISHED:
        return state, []
    gone = replace(racer, connected=False, dropped_at_ms=now_ms)
    return _bump(state, racers={**state.racers, racer.user_id: gone}), []


def _start(state: RaceState, event: Start, now_ms: int) -> Step:
    if state.phase is not Phase.LOBBY:
        raise RaceError(ErrorCode.CONFLICT, f"the race is {state.phase}, not in the lobby")
    if event.user_id is not None and event.user_id != state.host:
        raise RaceError(ErrorCode.FORBIDDEN, "only the host starts the race")
    if len(state.racers) < state.config.min_players:
        raise RaceError(ErrorCode.CONFLICT, f"need {state.config.min_players} racers to start")
    start_at = now_ms + state.config.countdown_ms
    new = _bump(state, phase=Phase.COUNTDOWN, start_at_ms=start_at)
    data = {
        "race": state.race_id,
        "start_at": start_at,
        "text": state.text,
        "players": [r.wire() for r in new.racers.values()],
    }
    return new, [
        Broadcast("race.countdown", data),
        StartTimer("countdown", start_at),
        StartTimer("deadline", start_at + state.config.time_limit_ms),
    ]


def _typing(state: RaceState, user_id: str) -> Racer:
    if state.phase is not Phase.RUNNING:
        raise RaceError(ErrorCode.CONFLICT, f"the race is {state.phase}, not running")
    racer = _seated(state, user_id, ErrorCode.FORBIDDEN)
    if racer.done:
        raise RaceError(ErrorCode.CONFLICT, "you are done with this race")
    return racer


def _progress(state: RaceState, event: Progress, now_ms: int) -> Step:
    racer = _typing(state, event.user_id)
    assert state.start_at_ms is not None  # running
    cfg = state.config
    if not 0 <= event.pos <= len(state.text) or event.errors < 0:
        raise RaceError(ErrorCode.BAD_REQUEST, f"pos must be 0..{len(state.text)}, errors >= 0")
    if event.pos < racer.pos:
        raise RaceError(ErrorCode.BAD_REQUEST, "progress never goes backwards")
    if (event.pos, event.errors, racer.connected) == (racer.pos, racer.errors, True):
        return state, []  # a repeat: nothing to show
    since = now_ms - (racer.updated_ms or state.start_at_ms)
    if (
        event.pos > _cap_chars(cfg, now_ms - state.start_at_ms) + cfg.slack_chars
        or event.pos - racer.pos > _cap_chars(cfg, since) + cfg.slack_chars
    ):
        raise RaceError(ErrorCode.BAD_REQUEST, f"progress faster than {cfg.wpm_cap:g} WPM")
    # progress proves the racer is back: connected, no longer dropped
    elapsed = now_ms - state.start_at_ms
    return state.with_racer(racer.advanced(event.pos, event.errors, now_ms, elapsed)), []


def _finish(state: RaceState, event: Finish, now_ms: int) -> Step:
    racer = _typing(state, event.user_id)
    assert state.start_at_ms is not None  # running
    cfg, result, length = state.config, event.result, len(state.text)
    if result.typed != state.text:
        raise RaceError(ErrorCode.BAD_REQUEST, "the keystroke log does not reproduce the text")
    if not 0 < result.time_ms <= now_ms - state.start_at_ms + cfg.clock_slack_ms:
        raise RaceError(ErrorCode.BAD_REQUEST, "the finish's time does not fit the race clock")
    if not 0 < result.log_ms <= result.time_ms + cfg.clock_slack_ms:
        raise RaceError(ErrorCode.BAD_REQUEST, "the log's timing does not fit the race clock")
    if result.wpm > cfg.wpm_cap or _cap_chars(cfg, result.time_ms) < length:
        raise RaceError(ErrorCode.BAD_REQUEST, f"finish faster than {cfg.wpm_cap:g} WPM")
    if racer.pos < length - cfg.finish_tolerance_chars:
        raise RaceError(ErrorCode.BAD_REQUEST, "the finish disagrees with the live progress")
    flags = result.flags
    if not agrees(racer.trail, result.timeline, cfg):
        flags = (*flags, "progress_mismatch")
    place = 1 + sum(1 for r in state.racers.values() if r.score is not None)
    score = Score(
        result.wpm,
        result.raw_wpm,
        result.accuracy,
        result.consistency,
        result.time_ms,
        flags,
    )
    done = replace(racer, pos=length, updated_ms=now_ms, place=place, score=score, connected=True)
    new = _bump(state, racers={**state.racers, racer.user_id: done})
    data = {"race": state.race_id, "place": place, **score_wire(score)}
    rated = done.rated(new)
    enough = boards.enough_typing(
        result.time_ms,
        state.text.count(" ") + 1,
        min_seconds=cfg.board_min_seconds,
        min_words=cfg.board_min_words,
    )
    record = {
        **data,
        "user": racer.user_id,
        "guest": racer.guest,
        "rated": rated,
        # A board may take it (once it is not flagged): a generated text, enough typing.
        "ranked": not (racer.guest or state.custom) and enough,
        "custom": state.custom,
        "difficulty": state.difficulty,
        "lang": state.lang,
        "seed": state.seed,
        "chars": length,
        "tournament": state.tournament_id,
    }
    return new, [Reply("race.finished", data), RecordResult(racer.user_id, record)]


def agrees(trail: tuple[int, ...], timeline: tuple[int, ...], config: RaceConfig) -> bool:
    """Rule 7: whether each progress report of ``trail`` fits the log's ``timeline``."""
    times = timeline[::2]
    ahead = config.progress_tolerance_ms
    behind = config.progress_tolerance_ms + config.progress_delay_ms
    for at, pos in zip(trail[::2], trail[1::2], strict=True):
        most = _typed_by(times, timeline, at + ahead) + config.slack_chars
        least = _typed_by(times, timeline, at - behind) - config.slack_chars
        if not least <= pos <= most:
            return False
    return True


def _typed_by(times: tuple[int, ...], timeline: tuple[int, ...], at: int) -> int:
    """The log's correct prefix at log time ``at`` (0 before its first key)."""
    index = bisect_right(times, at)
    return timeline[2 * index - 1] if index else 0


def _settle(state: RaceState, now_ms: int) -> Step:
    """The moves time alone makes: run at start_at, expire dropped racers and no-shows,
    end the race."""
    if not _due(state, now_ms):
        return state, []
    if state.phase is Phase.COUNTDOWN and now_ms >= (state.start_at_ms or 0):
        state = _bump(state, phase=Phase.RUNNING)
    resume_ms = state.config.resume_ms
    no_show_at = _no_show_at(state)
    for racer in list(state.racers.values()):
        dropped = racer.dropped_at_ms
        if racer.done or racer.connected:
            continue
        if dropped is None:  # awaited (rule 5a): forfeited once running past no_show_at
            if no_show_at is not None and now_ms >= no_show_at:
                gone = replace(racer, forfeited=True)
                state = _bump(state, racers={**state.racers, racer.user_id: gone})
            continue
        if now_ms < dropped + resume_ms:
            continue
        if state.phase is Phase.LOBBY:
            state = _unseat(state, racer.user_id)
        elif state.phase is not Phase.FINISHED:  # counting down or running, as rule 4
            gone = replace(racer, forfeited=True)
            state = _bump(state, racers={**state.racers, racer.user_id: gone})
    deadline = state.deadline_ms
    over = deadline is not None and now_ms >= deadline
    started = state.phase in (Phase.COUNTDOWN, Phase.RUNNING)
    if not started or not (over or all(r.done for r in state.racers.values())):
        return state, []
    state = _bump(state, phase=Phase.FINISHED, ended_at_ms=now_ms)
    table = tuple(standings(state))
    return state, [
        Broadcast("race.result", {"race": state.race_id, "standings": list(table)}),
        RaceFinished(state.race_id, table, state.tournament_id, state.custom),
    ]


def due_at(state: RaceState) -> int | None:
    """The earliest ``now_ms`` from which time alone moves ``state`` (rules 3, 5 and 8),
    ``None`` if it never does. Until then a ``Tick`` on an unchanged state does nothing,
    so a shell may skip it."""
    phase = state.phase
    if phase is Phase.FINISHED:
        return None
    start_at = state.start_at_ms
    started = phase is not Phase.LOBBY
    due: int | None = None
    if phase is Phase.COUNTDOWN:
        due = start_at or 0
    elif started and start_at is not None:  # running: the time limit
        due = start_at + state.config.time_limit_ms
    resume_ms = state.config.resume_ms
    no_show_at = _no_show_at(state)
    all_done = True
    for racer in state.racers.values():
        if racer.forfeited or racer.score is not None:  # done
            continue
        all_done = False
        if racer.connected:
            continue
        dropped = racer.dropped_at_ms
        at = no_show_at if dropped is None else dropped + resume_ms
        if at is not None:
            due = at if due is None else min(due, at)
    if started and all_done:
        return -1  # nobody left typing: it ends at once
    return due


def _due(state: RaceState, now_ms: int) -> bool:
    """Whether ``_settle`` would change anything at ``now_ms``: ``now_ms >= due_at(state)``,
    spelled out with early exits because every progress report asks it."""
    phase = state.phase
    if phase is Phase.FINISHED:
        return False
    start_at = state.start_at_ms
    if phase is Phase.COUNTDOWN and now_ms >= (start_at or 0):
        return True
    started = phase is not Phase.LOBBY
    if started and start_at is not None and now_ms >= start_at + state.config.time_limit_ms:
        return True
    resume_ms = state.config.resume_ms
    all_done = True
    for racer in state.racers.values():
        if racer.forfeited or racer.score is not None:  # done
            continue
        all_done = False
        if racer.connected:
            continue
        dropped = racer.dropped_at_ms
        if dropped is not None and now_ms >= dropped + resume_ms:
            return True
        no_show = dropped is None and started and start_at is not None  # rule 5a
        if no_show and now_ms >= (start_at or 0) + state.config.no_show_ms:
            return True
    return started and all_done


def _no_show_at(state: RaceState) -> int | None:
    """When an awaited racer who never showed up is forfeited (rule 5a); None before
    the start is set."""
    start_at = state.start_at_ms
    if state.phase is Phase.LOBBY or start_at is None:
        return None
    return start_at + state.config.no_show_ms


# -- helpers ---------------------------------------------------------------------


def _bump(state: RaceState, **changes: Any) -> RaceState:
    return replace(state, seq=state.seq + 1, changed=True, **changes)


def _seated(state: RaceState, user_id: str, code: ErrorCode) -> Racer:
    racer = state.racers.get(user_id)
    if racer is None:
        raise RaceError(code, f"not a racer in {state.race_id}")
    return racer


def _unseat(state: RaceState, user_id: str) -> RaceState:
    racers = {u: r for u, r in state.racers.items() if u != user_id}
    host = state.host
    if host == user_id:
        host = min(racers.values(), key=lambda r: r.seat).user_id if racers else None
    return _bump(state, racers=racers, host=host)


def _cap_chars(config: RaceConfig, elapsed_ms: int) -> float:
    """Characters a typist at ``wpm_cap`` gets through in ``elapsed_ms`` (5 per word)."""
    return config.wpm_cap * max(elapsed_ms, 0) / 12_000
