"""The data of a race: ``RaceState`` and its parts, its wire views and its storage form.

``rooms.race`` holds the rules and the transitions; this module holds what they
act on, what a client is shown (``snapshot``, ``standings``, ``joined``) and the
bytes kept in ``race:{id}:state`` (``encode``/``decode``) for failover.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import msgspec

TRAIL_EVERY_MS = 1_000
TRAIL_MAX = 256


class Phase(StrEnum):
    LOBBY = "lobby"
    COUNTDOWN = "countdown"
    RUNNING = "running"
    FINISHED = "finished"


@dataclass(frozen=True, slots=True)
class RaceConfig:
    max_players: int = 5
    min_players: int = 1  # the matchmaker already insists on two
    countdown_ms: int = 5_000
    time_limit_ms: int = 180_000
    wpm_cap: float = 300.0
    resume_ms: int = 120_000
    # A seat the matchmaker gave that nobody took up by ``start_at`` + this is forfeited
    # (rule 5a of ``rooms.race``): long enough for a backend outage of a few seconds.
    no_show_ms: int = 15_000
    slack_chars: int = 10
    finish_tolerance_chars: int = 30
    clock_slack_ms: int = 1_000
    # A finish log must agree with the progress reports (rule 7 of ``rooms.race``): a
    # report may be this far ahead of the log's timeline, and behind it by this plus
    # ``progress_delay_ms`` (a report held up in the network), ``slack_chars`` aside.
    progress_tolerance_ms: int = 2_000
    progress_delay_ms: int = 3_000
    # Boards take a finish only after this much typing (``boards.enough_typing``).
    board_min_seconds: int = 15
    board_min_words: int = 10


@dataclass(frozen=True, slots=True)
class ReplayedResult:
    """What the shell got by replaying a ``race.finish`` keystroke log.

    Scored on the server's clock: ``time_ms`` is the race time (ms since
    ``start_at``) when the server received the finish, and ``wpm``,
    ``raw_wpm`` and ``consistency`` run over it. ``typed`` is the text the log
    produces, ``log_ms`` the log's own time of the keystroke that completed it
    and ``timeline`` when the log's correct prefix grew (``(t, pos, ...)``,
    ``typing.progress_timeline``); ``flags`` name suspicious-but-possible
    traits for review.
    """

    typed: str
    wpm: float
    raw_wpm: float
    accuracy: float
    consistency: float
    time_ms: int
    log_ms: int = 0
    flags: tuple[str, ...] = ()
    timeline: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class Score:
    """An accepted result, as stored in the state (without the typed text)."""

    wpm: float
    raw_wpm: float
    accuracy: float
    consistency: float
    time_ms: int
    flags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Racer:
    user_id: str
    name: str
    seat: int
    guest: bool = False
    connected: bool = True
    dropped_at_ms: int | None = None
    pos: int = 0
    errors: int = 0
    updated_ms: int | None = None
    forfeited: bool = False
    place: int | None = None
    score: Score | None = None
    # Progress reports as received, ``(ms since start_at, pos, ...)`` flattened: at
    # most one per ``TRAIL_EVERY_MS``, thinned to half when ``TRAIL_MAX`` are kept.
    trail: tuple[int, ...] = ()

    @property
    def done(self) -> bool:
        return self.forfeited or self.score is not None

    @property
    def awaited(self) -> bool:
        """Seated by the matchmaker and not shown up yet (rule 5a of ``rooms.race``)."""
        return not self.connected and self.dropped_at_ms is None and not self.done

    def rated(self, state: RaceState) -> bool:
        """Whether this racer's result may change a rating or reach a board: a
        registered user, in a race on a generated text, not finished with flags."""
        return not (self.guest or state.custom or (self.score is not None and self.score.flags))

    def wire(self) -> dict[str, Any]:
        return {"id": self.user_id, "name": self.name, "guest": self.guest, "seat": self.seat}

    def advanced(self, pos: int, errors: int, now_ms: int, elapsed_ms: int) -> Racer:
        """This racer after a progress report (``elapsed_ms`` into the race): moved,
        connected, no longer dropped, the report kept in ``trail`` when it is due.

        ``dataclasses.replace`` does the same several times slower; this is the
        hot path (every ``race.progress``). Every field is passed, in order.
        """
        trail = self.trail
        if not trail or elapsed_ms - trail[-2] >= TRAIL_EVERY_MS:
            if len(trail) >= 2 * TRAIL_MAX:  # full: keep every other point
                trail = tuple(v for i in range(0, len(trail), 4) for v in trail[i : i + 2])
            trail = (*trail, elapsed_ms, pos)
        return Racer(
            self.user_id,
            self.name,
            self.seat,
            self.guest,
            True,  # connected
            None,  # dropped_at_ms
            pos,
            errors,
            now_ms,  # updated_ms
            self.forfeited,
            self.place,
            self.score,
            trail,
        )


@dataclass(frozen=True, slots=True)
class RaceState:
    """One race. Treat ``racers`` as read-only: every transition copies."""

    race_id: str
    text: str
    seed: int
    difficulty: str
    lang: str
    config: RaceConfig = RaceConfig()
    tournament_id: str | None = None
    code: str | None = None  # private races: the short join code
    custom: bool = False  # a private race on its host's own text: unrated, off the boards
    phase: Phase = Phase.LOBBY
    racers: Mapping[str, Racer] = field(default_factory=dict)
    host: str | None = None
    start_at_ms: int | None = None
    ended_at_ms: int | None = None
    seq: int = 0
    changed: bool = False  # since the last race.state snapshot

    @property
    def is_empty(self) -> bool:
        return not self.racers

    def awaited(self) -> set[str]:
        """The racers whose seats nobody has taken up yet; none once the race is over."""
        if self.phase is Phase.FINISHED:
            return set()
        return {user for user, racer in self.racers.items() if racer.awaited}

    @property
    def deadline_ms(self) -> int | None:
        if self.start_at_ms is None:
            return None
        return self.start_at_ms + self.config.time_limit_ms

    # The two copies made on every progress report and every changed tick, spelled out
    # (every field, in order) because ``dataclasses.replace`` costs several times more.

    def with_racer(self, racer: Racer) -> RaceState:
        """A change: ``racer`` replaces the racer of the same user; ``seq`` rises."""
        racers = dict(self.racers)
        racers[racer.user_id] = racer
        return self._copy(racers, self.seq + 1, True)

    def snapshotted(self) -> RaceState:
        """The same race once its ``race.state`` went out (``changed`` cleared, same ``seq``)."""
        return self._copy(self.racers, self.seq, False)

    def _copy(self, racers: Mapping[str, Racer], seq: int, changed: bool) -> RaceState:
        return RaceState(
            self.race_id,
            self.text,
            self.seed,
            self.difficulty,
            self.lang,
            self.config,
            self.tournament_id,
            self.code,
            self.custom,
            self.phase,
            racers,
            self.host,
            self.start_at_ms,
            self.ended_at_ms,
            seq,
            changed,
        )


# -- views -----------------------------------------------------------------------


def live_wpm(state: RaceState, racer: Racer) -> float:
    """A finisher's verified WPM, else ``pos`` over the time to the last update."""
    if racer.score is not None:
        return racer.score.wpm
    if state.start_at_ms is None or racer.updated_ms is None:
        return 0.0
    elapsed = racer.updated_ms - state.start_at_ms
    if elapsed <= 0:
        return 0.0
    # The slack for batching can put an estimate over the cap; never show that.
    return round(min(racer.pos * 12_000 / elapsed, state.config.wpm_cap), 1)


def snapshot(state: RaceState) -> dict[str, Any]:
    """The ``race.state`` payload."""
    players = []
    for r in sorted(state.racers.values(), key=lambda r: r.seat):
        entry = {
            "user": r.user_id,
            "name": r.name,
            "seat": r.seat,
            "pos": r.pos,
            "wpm": live_wpm(state, r),
            "done": r.done,
            "connected": r.connected,
        }
        if r.place is not None:
            entry["place"] = r.place
        players.append(entry)
    return {"race": state.race_id, "phase": str(state.phase), "seq": state.seq, "players": players}


def standings(state: RaceState) -> list[dict[str, Any]]:
    """Finishers by place, then everyone else by progress (equal progress, equal place)."""
    finishers = sorted((r for r in state.racers.values() if r.place), key=lambda r: r.place or 0)
    rest = sorted((r for r in state.racers.values() if not r.place), key=lambda r: (-r.pos, r.seat))
    table = [_standing(state, r, r.place or 0) for r in finishers]
    place, previous = 0, -1
    for index, racer in enumerate(rest):
        if racer.pos != previous:
            place, previous = len(finishers) + index + 1, racer.pos
        table.append(_standing(state, racer, place))
    return table


def joined(state: RaceState) -> dict[str, Any]:
    """The ``race.joined`` payload: all a (re)joining client needs to draw the race."""
    data: dict[str, Any] = {
        "race": state.race_id,
        "code": state.code,
        "text": state.text,
        "phase": str(state.phase),
        "start_at": state.start_at_ms,
        "host": state.host,
        "players": [r.wire() for r in sorted(state.racers.values(), key=lambda r: r.seat)],
    }
    if state.phase is Phase.FINISHED:
        data["standings"] = standings(state)
    return data


# -- storage (race:{id}:state) ---------------------------------------------------------


def encode(state: RaceState) -> bytes:
    return msgspec.json.encode(state)


def decode(data: bytes) -> RaceState:
    """The inverse of ``encode``; raises ``msgspec.DecodeError`` on a foreign blob."""
    return msgspec.json.decode(data, type=RaceState)


def score_wire(score: Score) -> dict[str, Any]:
    return {
        "wpm": score.wpm,
        "raw_wpm": score.raw_wpm,
        "accuracy": score.accuracy,
        "consistency": score.consistency,
        "time_ms": score.time_ms,
        "flags": list(score.flags),
    }


def _standing(state: RaceState, racer: Racer, place: int) -> dict[str, Any]:
    score = racer.score
    return {
        "user": racer.user_id,
        "name": racer.name,
        "guest": racer.guest,
        "place": place,
        "wpm": live_wpm(state, racer),
        "accuracy": score.accuracy if score else None,
        "time_ms": score.time_ms if score else None,
        "done": score is not None,
        "pos": racer.pos,
        "rated": racer.rated(state),
    }
