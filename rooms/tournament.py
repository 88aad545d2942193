"""Tournaments as a pure state machine: ``handle(state, event, now_ms) -> (state, effects)``.

No I/O, no clock: ``now_ms`` (server epoch milliseconds) comes in with the call.
The shell feeds ``RaceCompleted`` from the ``tournament-scores`` topic, keeps
the state in ``tournament:{id}:state`` and carries out the effects.

Rules
-----
1. Phases run scheduled -> open -> running -> finished by the clock alone:
   open at ``opens_at_ms``, running at ``starts_at_ms``, finished at
   ``ends_at_ms + grace_ms`` (the grace lets races started before the end
   finish and count). ``opens_at <= starts_at < ends_at``. Finished is
   final: an event carrying an earlier clock (a late one, or a process
   whose clock lags) never reopens a tournament whose standings are final.
2. Joining is open from ``opens_at`` until ``ends_at``, once per user, up to
   ``max_participants``; guests only if ``allow_guests``; a rating inside
   ``[min_rating, max_rating]`` when those are set.
3. A race counts once (by race id), only while running, and only if it
   started in ``[starts_at, ends_at)``. Only participants score, and only
   with an accepted finish: a race on a custom text counts for nobody, and a
   flagged finish (``flags`` in its row, or a registered racer's row marked
   ``"rated": false``) counts as no race and scores nothing -- the standings
   stay what the boards and ratings accept. A guest's row is unrated by
   nature and counts where guests may play.
4. Scoring "best_wpm": a participant's best WPM over the races they finished.
   Scoring "points": ``points_by_place[place - 1]`` per race (0 beyond the
   table), ``place`` less the flagged rows placed ahead: a flagged winner
   takes nobody's place. No points without typing: a racer who neither
   finished nor got past the first character (a seat left in the countdown,
   never taken up, or idle) scores nothing, though the race counts for
   them -- otherwise a heat whose racers all walk away would share first
   place, and a colluding heat would out-score honest ones.
5. Rankings: score high to low; ties go to whoever reached the score first,
   then to the earlier joiner. Only participants with a counted race rank.
6. ``tournament.state`` is broadcast on every phase change and join;
   ``tournament.rankings`` whenever the top ``top_n`` changes, and at the end.
7. An illegal event raises ``TournamentError`` and changes nothing; ``handle``
   returns the very same state object when nothing changed.
8. An ``Edit`` (admins) changes the fields in ``EDITABLE`` until the
   tournament finishes; the schedule (``opens_at_ms``, ``starts_at_ms``) and
   the scoring only before it runs; ``ends_at_ms`` never to a time already
   past; ``max_participants`` never below the participants already in. The
   result must pass ``validate``; the clock then settles the phase again.

Transition table ("settle" = rule 1's clock moves, before every event)
---------------------------------------------------------------------
event          phase (else conflict)  precondition (code)                effects
-------------  ---------------------  ---------------------------------  --------------------------
Join           open, running          before ends_at (conflict); not in  Reply tournament.joined,
                                      (conflict); room (conflict);       Broadcast tournament.state
                                      rule 2 entry (forbidden)
RaceCompleted  running                not counted (conflict); started    top changed: Broadcast
                                      in the window (bad_request)        tournament.rankings
Edit           not finished           rule 8 (conflict, bad_request)     Broadcast tournament.state
                                                                         (+ settle)
Tick           any                    -                                  -
(settle)       -                      phase change                       Broadcast tournament.state;
                                                                         end: + rankings,
                                                                         TournamentFinished
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

import msgspec

from rooms.effects import Broadcast as Broadcast  # re-exported: callers match on it
from rooms.effects import Refused
from rooms.effects import Reply as Reply
from typogram.codes import ErrorCode


class TournamentError(Refused):
    """An event the tournament refuses; the state it was given is unchanged."""


class Phase(StrEnum):
    SCHEDULED = "scheduled"
    OPEN = "open"
    RUNNING = "running"
    FINISHED = "finished"


class Scoring(StrEnum):
    BEST_WPM = "best_wpm"
    POINTS = "points"


@dataclass(frozen=True, slots=True)
class Participant:
    user_id: str
    name: str
    joined_at_ms: int
    score: float = 0.0
    races: int = 0
    achieved_at_ms: int | None = None  # when ``score`` was reached


@dataclass(frozen=True, slots=True)
class TournamentState:
    """One tournament. Treat the mappings as read-only: every transition copies."""

    tournament_id: str
    title: str
    opens_at_ms: int
    starts_at_ms: int
    ends_at_ms: int
    max_participants: int = 100
    scoring: Scoring = Scoring.BEST_WPM
    points_by_place: tuple[int, ...] = (10, 8, 6, 5, 4)
    allow_guests: bool = False
    min_rating: float | None = None
    max_rating: float | None = None
    grace_ms: int = 180_000  # a race's time limit
    top_n: int = 10
    phase: Phase = Phase.SCHEDULED
    participants: Mapping[str, Participant] = field(default_factory=dict)
    counted_races: frozenset[str] = frozenset()
    seq: int = 0


# -- events and effects --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Join:
    user_id: str
    name: str
    guest: bool = False
    rating: float | None = None


@dataclass(frozen=True, slots=True)
class RaceCompleted:
    """A race of this tournament ended; ``standings`` as ``rooms.race_state.standings``."""

    race_id: str
    started_at_ms: int
    ended_at_ms: int
    standings: Sequence[Mapping[str, Any]]
    custom: bool = False  # a private race on its host's own text: it counts for nobody


@dataclass(frozen=True, slots=True)
class Tick:
    pass


# Rule 8: what an admin may edit, and what only before the tournament runs.
EDITABLE = frozenset(
    {
        "title",
        "opens_at_ms",
        "starts_at_ms",
        "ends_at_ms",
        "max_participants",
        "scoring",
        "points_by_place",
        "allow_guests",
        "min_rating",
        "max_rating",
    }
)
BEFORE_START_ONLY = frozenset({"opens_at_ms", "starts_at_ms", "scoring", "points_by_place"})


@dataclass(frozen=True, slots=True)
class Edit:
    """New values by ``TournamentState`` field name (a subset of ``EDITABLE``)."""

    values: Mapping[str, Any]


Event = Join | RaceCompleted | Edit | Tick


@dataclass(frozen=True, slots=True)
class TournamentFinished:
    """Final rankings: award, archive, then drop the cached state."""

    tournament_id: str
    rankings: tuple[Mapping[str, Any], ...]


Effect = Broadcast | Reply | TournamentFinished
Step = tuple[TournamentState, list[Effect]]


def validate(state: TournamentState) -> None:
    """Refuse (``bad_request``) a tournament an admin may not create."""
    problems = []
    if not state.opens_at_ms <= state.starts_at_ms < state.ends_at_ms:
        problems.append("need opens_at <= starts_at < ends_at")
    if state.max_participants < 1 or state.top_n < 1 or state.grace_ms < 0:
        problems.append("max_participants and top_n >= 1, grace_ms >= 0")
    if any(p < 0 for p in state.points_by_place):
        problems.append("points are not negative")
    if None not in (state.min_rating, state.max_rating) and (
        (state.min_rating or 0) > (state.max_rating or 0)
    ):
        problems.append("min_rating above max_rating")
    if not state.title.strip():
        problems.append("a title is needed")
    if problems:
        raise TournamentError(ErrorCode.BAD_REQUEST, "; ".join(problems))


def handle(state: TournamentState, event: Event, now_ms: int) -> Step:
    """Apply one event; raises ``TournamentError`` (state unchanged) when the rules forbid it."""
    state, effects = _settle(state, now_ms)
    match event:
        case Join():
            state, more = _join(state, event, now_ms)
        case RaceCompleted():
            state, more = _race_completed(state, event)
        case Edit():
            state, more = _edit(state, event, now_ms)
        case Tick():
            more = []
    return state, effects + more


def _edit(state: TournamentState, event: Edit, now_ms: int) -> Step:
    """Rule 8."""
    unknown = set(event.values) - EDITABLE
    if unknown:
        raise TournamentError(ErrorCode.BAD_REQUEST, f"not editable: {', '.join(sorted(unknown))}")
    if not event.values:
        raise TournamentError(ErrorCode.BAD_REQUEST, "nothing to change")
    if state.phase is Phase.FINISHED:
        raise TournamentError(ErrorCode.CONFLICT, "the tournament is finished")
    changed = {k: v for k, v in event.values.items() if getattr(state, k) != v}
    late = sorted(BEFORE_START_ONLY & set(changed))
    if late and state.phase is Phase.RUNNING:
        raise TournamentError(ErrorCode.CONFLICT, f"{', '.join(late)}: only before it starts")
    if "ends_at_ms" in changed and int(changed["ends_at_ms"]) <= now_ms:
        raise TournamentError(ErrorCode.BAD_REQUEST, "ends_at is already past")
    if int(changed.get("max_participants", state.max_participants)) < len(state.participants):
        raise TournamentError(ErrorCode.BAD_REQUEST, "fewer places than participants")
    if not changed:
        return state, []
    values = dict(changed)
    if "scoring" in values:
        values["scoring"] = Scoring(values["scoring"])
    if "points_by_place" in values:
        values["points_by_place"] = tuple(values["points_by_place"])
    new = replace(state, **values, seq=state.seq + 1)
    validate(new)
    new, moved = _settle(new, now_ms)  # a moved phase broadcasts the state itself
    return new, moved or [Broadcast("tournament.state", snapshot(new))]


def _join(state: TournamentState, event: Join, now_ms: int) -> Step:
    if state.phase not in (Phase.OPEN, Phase.RUNNING) or now_ms >= state.ends_at_ms:
        raise TournamentError(ErrorCode.CONFLICT, "registration is not open")
    if event.user_id in state.participants:
        raise TournamentError(ErrorCode.CONFLICT, "already joined")
    if len(state.participants) >= state.max_participants:
        raise TournamentError(ErrorCode.CONFLICT, "the tournament is full")
    if event.guest and not state.allow_guests:
        raise TournamentError(ErrorCode.FORBIDDEN, "sign in to join this tournament")
    low, high = state.min_rating, state.max_rating
    if (low is not None or high is not None) and (
        event.rating is None
        or (low is not None and event.rating < low)
        or (high is not None and event.rating > high)
    ):
        raise TournamentError(ErrorCode.FORBIDDEN, "your rating is outside this tournament's")
    joined = Participant(event.user_id, event.name, now_ms)
    new = replace(
        state, participants={**state.participants, event.user_id: joined}, seq=state.seq + 1
    )
    reply = Reply("tournament.joined", {"tournament": state.tournament_id, "user": event.user_id})
    return new, [reply, Broadcast("tournament.state", snapshot(new))]


def _race_completed(state: TournamentState, event: RaceCompleted) -> Step:
    if state.phase is not Phase.RUNNING:
        raise TournamentError(ErrorCode.CONFLICT, f"the tournament is {state.phase}")
    if event.race_id in state.counted_races:
        raise TournamentError(ErrorCode.CONFLICT, f"race {event.race_id} already counted")
    if not state.starts_at_ms <= event.started_at_ms < state.ends_at_ms:
        raise TournamentError(ErrorCode.BAD_REQUEST, "the race started outside the tournament")
    participants = dict(state.participants)
    counted = [] if event.custom else [row for row in event.standings if accepted(row)]
    # Rule 4: a row moves up one place per flagged row ahead of it (ties stay ties).
    dropped = sorted(int(row["place"]) for row in event.standings if not accepted(row))
    for row in counted:
        old = participants.get(row["user"])
        if old is not None:
            place = int(row["place"]) - bisect_left(dropped, int(row["place"]))
            participants[old.user_id] = _score(state, old, {**row, "place": place}, event)
    new = replace(
        state,
        participants=participants,
        counted_races=state.counted_races | {event.race_id},
        seq=state.seq + 1,
    )
    top = rankings(new)
    if top == rankings(state):
        return new, []
    return new, [Broadcast("tournament.rankings", {"tournament": state.tournament_id, "top": top})]


def accepted(row: Mapping[str, Any]) -> bool:
    """Rule 3: whether a standing's finish may count (not flagged)."""
    if row.get("flags"):
        return False
    return not (row.get("rated") is False and not row.get("guest"))


def _score(
    state: TournamentState, old: Participant, row: Mapping[str, Any], race: RaceCompleted
) -> Participant:
    counted = replace(old, races=old.races + 1)
    if state.scoring is Scoring.BEST_WPM:
        wpm = row.get("wpm")
        if not row.get("done") or wpm is None or (old.races and wpm <= old.score):
            return counted
        time_ms = row.get("time_ms")
        at = race.started_at_ms + time_ms if time_ms is not None else race.ended_at_ms
        return replace(counted, score=float(wpm), achieved_at_ms=at)
    if not row.get("done") and not row.get("pos"):
        return counted  # no points without typing
    place = int(row["place"])
    table = state.points_by_place
    points = table[place - 1] if 1 <= place <= len(table) else 0
    if not points:
        return counted
    return replace(counted, score=old.score + points, achieved_at_ms=race.ended_at_ms)


def _settle(state: TournamentState, now_ms: int) -> Step:
    """Rule 1: the phase the clock says, with a broadcast for each move."""
    if state.phase is Phase.FINISHED:
        return state, []
    phase = Phase.SCHEDULED
    if now_ms >= state.opens_at_ms:
        phase = Phase.OPEN
    if now_ms >= state.starts_at_ms:
        phase = Phase.RUNNING
    if now_ms >= state.ends_at_ms + state.grace_ms:
        phase = Phase.FINISHED
    if phase is state.phase:
        return state, []
    state = replace(state, phase=phase, seq=state.seq + 1)
    effects: list[Effect] = [Broadcast("tournament.state", snapshot(state))]
    if phase is Phase.FINISHED:
        final = rankings(state, limit=None)
        top = final[: state.top_n]
        effects.append(
            Broadcast("tournament.rankings", {"tournament": state.tournament_id, "top": top})
        )
        effects.append(TournamentFinished(state.tournament_id, tuple(final)))
    return state, effects


# -- views and storage -------------------------------------------------------------------


def rankings(state: TournamentState, limit: int | None = -1) -> list[dict[str, Any]]:
    """Rule 5; the top ``top_n`` by default, everyone with ``limit=None``."""
    ranked = sorted(
        (p for p in state.participants.values() if p.races),
        key=lambda p: (-p.score, p.achieved_at_ms is None, p.achieved_at_ms or 0, p.joined_at_ms),
    )
    count = state.top_n if limit == -1 else limit
    return [
        {"rank": n, "user": p.user_id, "name": p.name, "score": p.score, "races": p.races}
        for n, p in enumerate(ranked[:count], start=1)
    ]


def snapshot(state: TournamentState) -> dict[str, Any]:
    """The ``tournament.state`` payload."""
    return {
        "tournament": state.tournament_id,
        "title": state.title,
        "phase": str(state.phase),
        "opens_at": state.opens_at_ms,
        "starts_at": state.starts_at_ms,
        "ends_at": state.ends_at_ms,
        "scoring": str(state.scoring),
        "participants": len(state.participants),
        "max_participants": state.max_participants,
        "seq": state.seq,
    }


def encode(state: TournamentState) -> bytes:
    return msgspec.json.encode(state)


def decode(data: bytes) -> TournamentState:
    """The inverse of ``encode``; raises ``msgspec.DecodeError`` on a foreign blob."""
    return msgspec.json.decode(data, type=TournamentState)
