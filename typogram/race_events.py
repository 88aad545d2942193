"""The two events on ``race-events``: built by the race's owner, told apart by consumers.

Rules
-----
1. From version 2 (``topics.RACE_EVENTS_VERSION``) the names mean what they
   mean on the WebSocket (docs/protocol.md): ``race.finished`` is one racer's
   accepted finish (a random id), ``race.result`` a race's final standings
   (id = the race id, so a second owner's copy after a failover is dropped
   as a duplicate).
2. Version 1 events, published before the rename, had the two names the
   other way round. They may still be read (retention, a lagging group, a
   dead letter replayed), so ``kind_of`` reads an event by its name *and*
   its version: a consumer handles a version 1 event as it did before,
   exactly once, whichever release is reading.
3. The payload must have the shape of its kind (a finish has a ``place``,
   standings have ``standings``); an event whose shape contradicts its name
   and version, or a version this module does not know, is no race event a
   consumer acts on: ``kind_of`` answers ``None`` and it is ignored.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, Literal

from typogram import topics
from typogram.ports import Event

Kind = Literal["finish", "standings"]
FINISH: Final = "finish"
STANDINGS: Final = "standings"
LEGACY_VERSION: Final = 1

_KINDS: Final[dict[tuple[str, int], Kind]] = {
    (topics.RACE_FINISHED, topics.RACE_EVENTS_VERSION): FINISH,
    (topics.RACE_RESULT, topics.RACE_EVENTS_VERSION): STANDINGS,
    # Rule 2: before the rename.
    (topics.RACE_RESULT, LEGACY_VERSION): FINISH,
    (topics.RACE_FINISHED, LEGACY_VERSION): STANDINGS,
}
_SHAPE: Final[dict[Kind, str]] = {FINISH: "place", STANDINGS: "standings"}


def kind_of(event: Event) -> Kind | None:
    """Which race event ``event`` is (rules 1-3), ``None`` for anything else."""
    kind = _KINDS.get((event.type, event.version))
    if kind is None or _SHAPE[kind] not in event.data:
        return None
    return kind


def finish_event(race_id: str, data: Mapping[str, Any]) -> Event:
    """One racer's accepted finish (``rooms.race.RecordResult``'s data)."""
    return Event(
        type=topics.RACE_FINISHED, data=dict(data), key=race_id, version=topics.RACE_EVENTS_VERSION
    )


def standings_event(race_id: str, data: Mapping[str, Any]) -> Event:
    """A race's final standings; its id is the race's (rule 1)."""
    return Event(
        type=topics.RACE_RESULT,
        data=data,
        key=race_id,
        version=topics.RACE_EVENTS_VERSION,
        id=race_id,
    )
