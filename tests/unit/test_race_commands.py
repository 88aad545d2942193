"""``RaceCommand``: one typed value for a race command, on the owning node and on the wire.

Every kind round-trips, reads what the dicts it replaced wrote (so a node of
the version before can still talk to one of this version), turns into its
``rooms.race`` event by its class, and anything malformed is refused with a
clear ``ValueError`` -- never a crash.
"""

from __future__ import annotations

from typing import Any

import msgspec
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.races import messages
from gateway.races.commands import read_only, to_event
from gateway.races.messages import RaceCommand
from rooms import race
from rooms.race_state import Phase
from tests.typing_logs import by_hand
from tests.unit.test_race import GO, TEXT, running
from typogram.anticheat import limits_from
from typogram.codes import ErrorCode
from typogram.errors import AppError
from typogram.protocol import Keystroke
from typogram.settings import Settings

RULES = limits_from(Settings(), whole_text=True)
ids = st.text(max_size=12)
ints = st.integers(-(2**53), 2**53)
wpm = st.none() | st.floats(allow_nan=False, allow_infinity=False)
keystrokes = st.lists(st.tuples(st.integers(-(2**31), 2**31), st.text(max_size=2)), max_size=5)
race_commands: st.SearchStrategy[RaceCommand] = st.one_of(
    st.builds(messages.Join, ids, ids, st.booleans()),
    st.builds(messages.Leave, ids),
    st.builds(messages.Disconnect, ids),
    st.builds(messages.Reconnect, ids),
    st.builds(messages.Start, st.none() | ids),
    st.builds(messages.Progress, ids, ints, ints),
    st.builds(messages.Finish, ids, keystrokes, st.none() | ints, wpm, wpm),
)
json_values = st.recursive(
    st.none() | st.booleans() | ints | st.floats(allow_nan=False) | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=8,
)


def wire(command: RaceCommand) -> bytes:
    return messages.encode(messages.Apply("q", "n", "r", command))


@given(command=race_commands)
def test_every_kind_round_trips(command: RaceCommand) -> None:
    assert messages.decode_command(msgspec.json.encode(command)) == command
    assert messages.decode(wire(command)) == messages.Apply("q", "n", "r", command)


# What the gateway of the version before built, and the command it means.
OLD: list[tuple[dict[str, Any], RaceCommand]] = [
    ({"k": "join", "user": "ada", "name": "Ada", "guest": False}, messages.Join("ada", "Ada")),
    (
        {"k": "join", "user": "g1", "name": "Guest", "guest": True},
        messages.Join("g1", "Guest", True),
    ),
    ({"k": "leave", "user": "ada"}, messages.Leave("ada")),
    ({"k": "disconnect", "user": "ada"}, messages.Disconnect("ada")),
    ({"k": "reconnect", "user": "ada"}, messages.Reconnect("ada")),
    ({"k": "start", "user": "ada"}, messages.Start("ada")),
    ({"k": "start"}, messages.Start()),
    ({"k": "progress", "user": "ada", "pos": 12, "errors": 1}, messages.Progress("ada", 12, 1)),
    (
        {"k": "finish", "user": "g1", "keys": [[0, "a"], [90, "b"]], "at": 7},
        messages.Finish("g1", [(0, "a"), (90, "b")], 7),
    ),
    (
        {"k": "finish", "user": "ada", "keys": [], "at": 7, "best": 61.5, "record": None},
        messages.Finish("ada", [], 7, best=61.5),
    ),
]


@pytest.mark.parametrize(("old", "typed"), OLD)
def test_the_dicts_of_the_version_before_read_and_write_the_same(
    old: dict[str, Any], typed: RaceCommand
) -> None:
    assert messages.decode_command(orjson.dumps(old)) == typed
    # What this version writes, the version before read the same: only nulls are left out.
    assert orjson.loads(msgspec.json.encode(typed)) == {
        k: v for k, v in old.items() if v is not None
    }


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"[]",
        b"{}",
        b'{"user":"ada"}',  # no kind
        b'{"k":"fly","user":"ada"}',  # an unknown kind
        b'{"k":"join","user":"ada"}',  # no name
        b'{"k":"leave"}',
        b'{"k":"progress","user":"ada","pos":"12","errors":0}',
        b'{"k":"progress","user":"ada","pos":1.5,"errors":0}',
        b'{"k":"finish","user":"ada","at":1}',  # no log
        b'{"k":"finish","user":"ada","keys":[[1]]}',
        b'{"k":"finish","user":"ada","keys":[[4294967296,"a"]]}',
        b'{"k":"finish","user":"ada","keys":[],"best":true}',
        b'{"k":"start","user":7}',
        b"[" * 100_000,
    ],
)
def test_a_malformed_command_is_refused_clearly(payload: bytes) -> None:
    with pytest.raises(ValueError, match="bad race command"):
        messages.decode_command(payload)


@given(value=json_values)
def test_no_json_crashes_the_decoder(value: Any) -> None:
    try:
        command = messages.decode_command(orjson.dumps(value))
    except ValueError:
        return
    assert isinstance(command, RaceCommand)


def test_each_command_is_its_event() -> None:
    state = running("ada")
    pairs: list[tuple[RaceCommand, race.Event]] = [
        (messages.Join("bob", "Bob", True), race.Join("bob", "Bob", True)),
        (messages.Leave("ada"), race.Leave("ada")),
        (messages.Disconnect("ada"), race.Disconnect("ada")),
        (messages.Reconnect("ada"), race.Reconnect("ada")),
        (messages.Start("ada"), race.Start("ada")),
        (messages.Start(""), race.Start(None)),  # the version before sent "" for a system actor
        (messages.Start(), race.Start(None)),
        (messages.Progress("ada", 3, 1), race.Progress("ada", 3, 1)),
    ]
    for command, event in pairs:
        assert to_event(state, command, RULES, GO) == event


def test_a_finish_is_replayed_and_timed_from_the_start_to_when_it_was_received() -> None:
    log = msgspec.convert(by_hand(TEXT, wpm=70, seed=5, typo_at=None), list[Keystroke])
    state, _ = race.handle(running("ada"), race.Progress("ada", len(TEXT), 0), GO + 5_000)
    event = to_event(state, messages.Finish("ada", log, GO + 30_000), RULES, GO + 40_000)
    assert isinstance(event, race.Finish) and event.result.time_ms == 30_000
    later = to_event(state, messages.Finish("ada", log, GO + 50_000), RULES, GO + 40_000)
    assert isinstance(later, race.Finish) and later.result.time_ms == 40_000  # never after now
    unknown = to_event(state, messages.Finish("ada", log), RULES, GO + 40_000)
    assert isinstance(unknown, race.Finish) and unknown.result.time_ms == 40_000


def test_a_bad_finish_log_is_a_bad_request() -> None:
    state = running("ada")
    with pytest.raises(AppError) as caught:
        to_event(state, messages.Finish("ada", [(5, "a"), (1, "b")], GO + 1_000), RULES, GO + 1_000)
    assert caught.value.code is ErrorCode.BAD_REQUEST


def test_anything_but_a_command_is_a_bad_request_not_a_crash() -> None:
    with pytest.raises(AppError) as caught:
        to_event(running("ada"), "start", RULES, GO)  # type: ignore[arg-type]
    assert caught.value.code is ErrorCode.BAD_REQUEST


def test_a_finished_race_answers_from_its_stored_state() -> None:
    state = running("ada")
    state, _ = race.handle(state, race.Leave("ada"), GO + 1)
    assert state.phase is Phase.FINISHED
    [(kind, joined)] = read_only(state, messages.Reconnect("ada"), RULES, GO + 2)
    assert kind == "race.joined" and joined["phase"] == "finished"
    with pytest.raises(AppError) as caught:
        read_only(state, messages.Progress("ada", 1, 0), RULES, GO + 2)
    assert caught.value.code is ErrorCode.CONFLICT
