"""``gateway.races.messages``: the race inbox's typed messages keep the wire format
the dicts had, and anything else is refused as a whole."""

from __future__ import annotations

from typing import Any

import msgspec
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.races import messages
from gateway.races.messages import (
    Answer,
    Apply,
    Batch,
    Matched,
    Owner,
    Progress,
    Pushes,
    RaceCommand,
    Refused,
    Settled,
)
from tests.unit.test_race_commands import json_values, race_commands

ids = st.text(max_size=12)


def as_dict(command: RaceCommand) -> dict[str, Any]:
    """The command as the dict it replaces (``orjson`` keeps the key order)."""
    decoded: dict[str, Any] = orjson.loads(msgspec.json.encode(command))
    return decoded


@given(req=ids, sender=ids, race=ids, cmd=race_commands)
def test_apply_is_the_dict_it_replaces(req: str, sender: str, race: str, cmd: RaceCommand) -> None:
    old = {"t": "apply", "req": req, "from": sender, "race": race, "cmd": as_dict(cmd)}
    assert orjson.loads(messages.encode(Apply(req, sender, race, cmd))) == old
    assert messages.decode(orjson.dumps(old)) == Apply(req, sender, race, cmd)


@given(sender=ids, cmds=st.lists(st.tuples(ids, ids, race_commands), max_size=4))
def test_batch_is_the_dict_it_replaces(
    sender: str, cmds: list[tuple[str, str, RaceCommand]]
) -> None:
    old = {"t": "batch", "from": sender, "cmds": [[q, r, as_dict(c)] for q, r, c in cmds]}
    assert orjson.loads(messages.encode(Batch(sender, cmds))) == old
    assert messages.decode(orjson.dumps(old)) == Batch(sender, cmds)


def test_a_progress_batch_is_byte_for_byte_the_dict_it_replaces() -> None:
    old = {
        "t": "batch",
        "from": "b",
        "cmds": [["q1", "r1", {"k": "progress", "user": "ada", "pos": 3, "errors": 0}]],
    }
    assert messages.encode(Batch("b", [("q1", "r1", Progress("ada", 3, 0))])) == orjson.dumps(old)


def test_answers_settled_owner_and_matched_are_the_dicts_they_replace() -> None:
    pairs: list[tuple[messages.InboxMessage, dict[str, Any]]] = [
        (Answer("q1", error=("bad_request", "no")), {"error": ["bad_request", "no"]}),
        (Answer("q1", moved=True), {"moved": True}),
        (
            Answer("q1", replies=[("race.joined", {"race": "r"})]),
            {"replies": [["race.joined", {"race": "r"}]]},
        ),
    ]
    for typed, rest in pairs:
        assert messages.encode(typed) == orjson.dumps({"t": "answer", "req": "q1", **rest})
    assert messages.encode(Settled(["q1", "q2"])) == b'{"t":"settled","reqs":["q1","q2"]}'
    assert messages.encode(Owner("r1", "n1")) == b'{"t":"owner","race":"r1","node":"n1"}'
    matched = orjson.dumps({"t": "matched", "user": "u", "race": "r", "payload": "{}"})
    assert messages.encode(Matched("u", "r", "{}")) == matched
    again = Matched("u", "r", "{}", again=True)  # sent again: the seat is still awaited
    assert messages.encode(again) == matched[:-1] + b',"again":true}'
    assert messages.decode(messages.encode(again)) == again


def test_pushes_keep_each_push_as_its_bytes() -> None:
    decoded = messages.decode(b'{"t":"pushes","p":[["r1","race.state",{"seq":3}]]}')
    assert isinstance(decoded, Pushes)
    assert [(r, k, bytes(p)) for r, k, p in decoded.p] == [("r1", "race.state", b'{"seq":3}')]


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"[]",
        b'{"t":"nope"}',
        b'{"t":"apply","req":"x","from":"n"}',  # no race, no command
        b'{"t":"settled","reqs":[1]}',
        b'{"t":"answer","req":"x","error":["only the code"]}',
        b'{"t":"pushes","p":"nope"}',
        b'{"t":"pushes","p":[["r1","race.state",{"seq":',
        b'{"t":"owner","race":"r1"}',
        b'{"t":"matched","user":"u","race":"r"}',
        b"[" * 100_000,
    ],
)
def test_anything_else_is_refused_as_a_whole(payload: bytes) -> None:
    with pytest.raises(ValueError):
        messages.decode(payload)


def test_an_apply_whose_command_does_not_decode_is_refused_to_its_sender() -> None:
    refused = messages.decode(b'{"t":"apply","req":"x","from":"n","race":"r","cmd":{"k":"fly"}}')
    assert isinstance(refused, Refused) and refused.sender == "n" and refused.rest is None
    [(request, reason)] = refused.errors
    assert request == "x" and "bad race command" in reason and "fly" in reason


def test_a_batch_keeps_its_good_commands_and_refuses_the_bad_ones() -> None:
    good = {"k": "progress", "user": "ada", "pos": 3, "errors": 0}
    payload = orjson.dumps(
        {
            "t": "batch",
            "from": "n",
            "cmds": [["q1", "r1", good], ["q2", "r1", {**good, "pos": "3"}], ["q3", "r2", good]],
        }
    )
    refused = messages.decode(payload)
    assert isinstance(refused, Refused) and [q for q, _ in refused.errors] == ["q2"]
    assert refused.rest == Batch(
        "n", [("q1", "r1", Progress("ada", 3, 0)), ("q3", "r2", Progress("ada", 3, 0))]
    )
    only_bad = orjson.dumps({"t": "batch", "from": "n", "cmds": [["q2", "r1", {"k": 1}]]})
    assert messages.decode(only_bad) == Refused(
        "n", [("q2", "bad race command: Expected `str` - at `$.k`")]
    )


@given(cmd=json_values)
def test_whatever_command_an_apply_carries_it_is_served_or_refused(cmd: Any) -> None:
    payload = orjson.dumps({"t": "apply", "req": "x", "from": "n", "race": "r", "cmd": cmd})
    decoded = messages.decode(payload)
    if not isinstance(decoded, Apply):
        assert isinstance(decoded, Refused) and decoded.rest is None
        assert [request for request, _ in decoded.errors] == ["x"]
