"""``typogram.race_events``: the two race events told apart by name and version, the
names of version 1 (swapped) read as they were meant."""

from __future__ import annotations

from dataclasses import replace

import orjson
import pytest

from typogram import race_events, topics
from typogram.ports import Event

FINISH = {"race": "r1", "user": "u1", "place": 1, "wpm": 80.0}
STANDINGS = {"race": "r1", "standings": [{"user": "u1", "place": 1}]}


def test_the_names_mean_what_they_mean_on_the_websocket() -> None:
    finish = race_events.finish_event("r1", FINISH)
    standings = race_events.standings_event("r1", STANDINGS)
    assert (finish.type, standings.type) == ("race.finished", "race.result")
    assert finish.version == standings.version == topics.RACE_EVENTS_VERSION == 2
    assert finish.key == standings.key == standings.id == "r1" != finish.id
    assert race_events.kind_of(finish) == race_events.FINISH
    assert race_events.kind_of(standings) == race_events.STANDINGS


def test_version_one_events_are_read_with_their_old_meaning() -> None:
    """What a gateway published before the rename, decoded as a consumer gets it."""
    finish = {"id": "x", "type": "race.result", "v": 1, "ts": 1, "data": FINISH}
    standings = {"id": "r1", "type": "race.finished", "ts": 1, "data": STANDINGS}
    old_finish = Event.decode(orjson.dumps(finish))
    old_standings = Event.decode(orjson.dumps(standings))
    assert old_standings.version == 1  # no ``v``: version 1
    assert race_events.kind_of(old_finish) == race_events.FINISH
    assert race_events.kind_of(old_standings) == race_events.STANDINGS


@pytest.mark.parametrize(
    "event",
    [
        Event(topics.RACE_FINISHED, STANDINGS, version=2),  # the shape contradicts the name
        Event(topics.RACE_RESULT, FINISH, version=2),
        Event(topics.RACE_RESULT, STANDINGS, version=1),
        Event(topics.RACE_FINISHED, FINISH, version=3),  # a version not known here
        Event(topics.TOURNAMENT_RACE, STANDINGS, version=1),
        Event("race.state", FINISH, version=2),
    ],
)
def test_anything_else_is_no_race_event(event: Event) -> None:
    assert race_events.kind_of(event) is None


def test_standings_keep_one_id_per_race_whatever_the_version() -> None:
    """A failover may publish a race twice, once per release: consumers dedupe by id."""
    new = race_events.standings_event("r9", STANDINGS)
    old = replace(new, type=topics.RACE_FINISHED, version=race_events.LEGACY_VERSION)
    assert new.id == old.id == "r9"
    assert race_events.kind_of(new) == race_events.kind_of(old) == race_events.STANDINGS
