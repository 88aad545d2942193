"""``gateway.races.messages``: the race inbox's typed messages keep the wire format
the dicts had, and anything else is refused as a whole."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.races import messages
from gateway.races.messages import Answer, Apply, Batch, Matched, Owner, Pushes, Settled

ids = st.text(max_size=12)
values = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=8)
commands = st.dictionaries(st.text(max_size=6), values, max_size=4)


@given(req=ids, sender=ids, race=ids, cmd=commands)
def test_apply_is_the_dict_it_replaces(
    req: str, sender: str, race: str, cmd: dict[str, Any]
) -> None:
    old = {"t": "apply", "req": req, "from": sender, "race": race, "cmd": cmd}
    assert messages.encode(Apply(req, sender, race, cmd)) == orjson.dumps(old)
    assert messages.decode(orjson.dumps(old)) == Apply(req, sender, race, cmd)


@given(sender=ids, cmds=st.lists(st.tuples(ids, ids, commands), max_size=4))
def test_batch_is_the_dict_it_replaces(
    sender: str, cmds: list[tuple[str, str, dict[str, Any]]]
) -> None:
    old = {"t": "batch", "from": sender, "cmds": cmds}
    assert messages.encode(Batch(sender, cmds)) == orjson.dumps(old)
    assert messages.decode(orjson.dumps(old)) == Batch(sender, cmds)


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
        b'{"t":"apply","req":"x","from":"n","race":"r","cmd":[]}',
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
