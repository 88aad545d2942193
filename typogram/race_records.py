"""A finished race as it is recorded: its standings (``race.result``) decoded, and its rows.

Pure.

Rules
-----
1. The standings (docs/events.md) are decoded once into ``FinishedRace``;
   a payload that does not fit raises ``ValueError`` (the worker's retries,
   then the DLQ, deal with it).
2. Every registered racer in the standings gets one ``race_results`` row
   (id ``<race>:<user>``): a finisher with the scores the server replayed
   (``results``), a racer who did not finish with ``finished = 0``, the
   progress-based WPM of the standings and no accuracy or time. Guests (a
   standing marked ``guest``, or a guest's id whatever it is marked) get no
   row.
3. A standing is rated when it is not a guest's and not marked
   ``"rated": false``; a race on a custom text rates nobody, whatever its
   standings say (``matchmaking.rating`` rule 1 drops the rest).
4. The ``races`` row keeps the race's text, so a history can show what was
   typed; an event from before texts were sent leaves it NULL.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

import msgspec

from typogram.tokens import GUEST_PREFIX

MAX_STANDINGS = 64
MAX_TEXT = 20_000


class Standing(msgspec.Struct):
    user: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    place: Annotated[int, msgspec.Meta(ge=0)]
    name: str = ""
    guest: bool = False
    wpm: float | None = None
    accuracy: float | None = None
    time_ms: int | None = None
    done: bool = False
    rated: bool | None = None  # absent from events older than the field (rule 3)

    def as_mapping(self) -> dict[str, Any]:
        return msgspec.structs.asdict(self) | ({} if self.rated is not None else {"rated": True})


class Score(msgspec.Struct):
    """A finisher's replayed score (``rooms.race_state.score_wire``)."""

    wpm: float
    raw_wpm: float
    accuracy: float
    consistency: float
    time_ms: int
    flags: list[str] = msgspec.field(default_factory=list)


class FinishedRace(msgspec.Struct):
    race: Annotated[str, msgspec.Meta(min_length=1, max_length=32)]
    standings: Annotated[list[Standing], msgspec.Meta(max_length=MAX_STANDINGS)]
    text: Annotated[str, msgspec.Meta(max_length=MAX_TEXT)] | None = None
    custom: bool = False
    results: dict[str, Score] = msgspec.field(default_factory=dict)
    tournament: Annotated[str, msgspec.Meta(max_length=32)] | None = None
    difficulty: Annotated[str, msgspec.Meta(max_length=8)] = ""
    lang: Annotated[str, msgspec.Meta(max_length=8)] = ""
    seed: int = 0
    started_at: int | None = None
    ended_at: int | None = None

    @property
    def registered(self) -> list[Standing]:
        return [s for s in self.standings if not s.guest and not s.user.startswith(GUEST_PREFIX)]

    def rated_standings(self) -> list[dict[str, Any]]:
        """Rule 3: what ``matchmaking.rating.update`` may rate (an empty list for custom)."""
        if self.custom:
            return []
        return [s.as_mapping() for s in self.registered if s.rated is not False]


def decode(data: Mapping[str, Any]) -> FinishedRace:
    """Rule 1."""
    try:
        return msgspec.convert(data, FinishedRace, strict=False)
    except msgspec.ValidationError as exc:
        raise ValueError(f"race standings: the event does not fit: {exc}") from exc


def race_row(race: FinishedRace, recorded_at: int) -> dict[str, Any]:
    """Rule 4."""
    return {
        "id": race.race,
        "text": race.text,
        "custom": int(race.custom),
        "difficulty": race.difficulty,
        "lang": race.lang,
        "seed": race.seed,
        "tournament_id": race.tournament,
        "players": len(race.standings),
        "started_at": race.started_at,
        "ended_at": race.ended_at if race.ended_at is not None else recorded_at,
        "recorded_at": recorded_at,
    }


def result_id(race_id: str, user_id: str) -> str:
    return f"{race_id}:{user_id}"[:100]


def result_rows(race: FinishedRace, recorded_at: int) -> list[dict[str, Any]]:
    """Rule 2: one row per registered racer, in standings order."""
    at = race.ended_at if race.ended_at is not None else recorded_at
    rows = []
    for s in race.registered:
        score = race.results.get(s.user) if s.done else None
        row: dict[str, Any] = {
            "id": result_id(race.race, s.user),
            "race_id": race.race,
            "user_id": s.user,
            "place": s.place,
            "guest": 0,
            "difficulty": race.difficulty,
            "lang": race.lang,
            "seed": race.seed,
            "tournament_id": race.tournament,
            "created_at": at,
            "finished": int(s.done),
            "flags": "",
            "wpm": float(s.wpm or 0.0),
            "raw_wpm": None,
            "accuracy": s.accuracy if s.done else None,
            "consistency": None,
            "time_ms": s.time_ms if s.done else None,
        }
        if score is not None:
            row |= {
                "wpm": score.wpm,
                "raw_wpm": score.raw_wpm,
                "accuracy": score.accuracy,
                "consistency": score.consistency,
                "time_ms": score.time_ms,
                "flags": ",".join(score.flags)[:255],
            }
        rows.append(row)
    return rows
