"""Wire decoding and encoding: typed structs in, bytes out, ProtocolError for the rest."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from typogram.codes import ErrorCode
from typogram.protocol import (
    INBOUND,
    Auth,
    ChatAppoint,
    ChatDelete,
    ChatReport,
    ChatSend,
    Hello,
    Inbound,
    Ping,
    PresenceQuery,
    PresenceSet,
    ProtocolError,
    Push,
    Resume,
    RoomJoin,
    decode,
    decode_server,
    encode,
    error,
    parse_push,
    push_payload,
)


def frame(t: Any, d: Any = None, **extra: Any) -> bytes:
    body: dict[str, Any] = {"t": t, **extra}
    if d is not None:
        body["d"] = d
    return orjson.dumps(body)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (frame("hello", {"token": "abc"}, id=1), Inbound("hello", 1, Hello("abc"))),
        (
            frame("hello", {"token": "t", "resume": {"session": "s", "seq": 41}}),
            Inbound("hello", None, Hello("t", Resume("s", 41))),
        ),
        (
            frame("room.join", {"room": "lobby-1"}, id=2),
            Inbound("room.join", 2, RoomJoin("lobby-1")),
        ),
        (
            frame("chat.send", {"room": "r", "text": "hi", "extra": 1}),
            Inbound("chat.send", None, ChatSend("r", "hi")),
        ),
        (
            frame("presence.set", {"status": "away"}),
            Inbound("presence.set", None, PresenceSet("away")),
        ),
        (
            frame("presence.query", {"users": ["a", "b"]}),
            Inbound("presence.query", None, PresenceQuery(["a", "b"])),
        ),
        (
            frame("chat.report", {"room": "lobby", "id": "m_1-x"}, id=3),
            Inbound("chat.report", 3, ChatReport("lobby", "m_1-x")),
        ),
        (
            frame("chat.delete", {"room": "lobby", "id": "a" * 64}),
            Inbound("chat.delete", None, ChatDelete("lobby", "a" * 64)),
        ),
        (
            frame("chat.appoint", {"room": "den", "user": "bob"}),
            Inbound("chat.appoint", None, ChatAppoint("den", "bob")),
        ),
        (frame("ping"), Inbound("ping", None, Ping())),
        (frame("auth", {"token": "fresh"}, id=9), Inbound("auth", 9, Auth("fresh"))),
        (frame("ping").decode(), Inbound("ping", None, Ping())),  # text frames too
    ],
)
def test_valid_frames_decode_to_typed_structs(raw: bytes | str, expected: Inbound) -> None:
    assert decode(raw) == expected


@pytest.mark.parametrize(
    ("raw", "re"),
    [
        (b"", None),
        (b"not json", None),
        (b"[1, 2]", None),
        (b'"hello"', None),
        (frame("hello", {"token": "x"}, id=-1), None),
        (frame("hello", {"token": "x"}, id=2**60), None),
        (frame("hello", {"token": "x"}, id=True), None),
        (frame("hello", {"token": "x"}, id="7"), None),
        (frame("nope", {}, id=3), 3),
        (frame(None, {}, id=4), 4),
        (frame(5, {}, id=5), 5),
        (frame("hello", {}, id=6), 6),  # token missing
        (frame("hello", {"token": ""}, id=7), 7),
        (frame("hello", {"token": "t", "resume": {"session": "s", "seq": -1}}, id=8), 8),
        (frame("room.join", {"room": "has space"}, id=9), 9),
        (frame("room.join", {"room": "x" * 65}, id=10), 10),
        (frame("chat.send", {"room": "r", "text": "x" * 4001}, id=11), 11),
        (frame("presence.set", {"status": "asleep"}, id=12), 12),
        (frame("presence.query", {"users": ["u"] * 101}, id=13), 13),
        (frame("ping", [1], id=14), 14),
        (frame("auth", {}, id=15), 15),  # token missing
        (frame("auth", {"token": ""}, id=16), 16),
        (frame("auth", {"token": 7}, id=17), 17),
        (frame("auth", {"token": "x" * 4097}, id=18), 18),
        (frame("auth", "token", id=19), 19),
        (frame("chat.delete", {"room": "lobby", "id": "m1\n"}, id=20), 20),  # no $ leniency
        (frame("chat.delete", {"room": "lobby", "id": ""}, id=21), 21),
        (frame("chat.delete", {"room": "lobby", "id": "x" * 65}, id=22), 22),
        (frame("chat.delete", {"room": "lobby"}, id=23), 23),
        (frame("chat.report", {"room": "lobby", "id": "m1", "reason": "x" * 201}, id=24), 24),
        (frame("chat.report", {"room": "lobby", "id": "a/b"}, id=25), 25),
        (frame("chat.report", {"room": "lobby", "id": "m1", "reason": "a\u202eb"}, id=28), 28),
        (frame("chat.appoint", {"room": "den"}, id=26), 26),
        (frame("chat.unappoint", {"room": "den", "user": "x" * 129}, id=27), 27),
    ],
)
def test_malformed_frames_raise_protocol_error_with_the_id(raw: bytes, re: int | None) -> None:
    with pytest.raises(ProtocolError) as raised:
        decode(raw)
    assert raised.value.code is ErrorCode.BAD_REQUEST
    assert raised.value.id == re
    assert raised.value.message


def test_deep_nesting_is_refused_not_crashed() -> None:
    with pytest.raises(ProtocolError):
        decode(b"[" * 500_000)
    nested = b'{"t": "ping", "id": 15, "d": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    with pytest.raises(ProtocolError):
        decode(nested)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
frames = st.fixed_dictionaries(
    {},
    optional={
        "t": st.sampled_from([*INBOUND, "x", ""]) | json_values,
        "id": st.integers() | json_values,
        "d": st.fixed_dictionaries(
            {},
            optional={
                "token": st.text(max_size=5) | json_values,
                "room": st.text(max_size=5) | json_values,
                "text": st.text(max_size=5) | json_values,
                "status": st.sampled_from(["online", "away", "racing", "x"]) | json_values,
                "users": st.lists(st.text(max_size=3), max_size=3) | json_values,
                "resume": json_values,
                "user": json_values,
            },
        )
        | json_values,
    },
)


def _check(raw: bytes | str) -> None:
    try:
        result = decode(raw)
    except ProtocolError as exc:
        assert exc.code is ErrorCode.BAD_REQUEST
        assert exc.id is None or isinstance(exc.id, int)
        return
    assert isinstance(result, Inbound)
    assert isinstance(result.body, INBOUND[result.type])


@settings(max_examples=2000, deadline=None)
@given(frames)
def test_fuzzed_json_frames_decode_or_raise_protocol_error(doc: dict[str, Any]) -> None:
    try:
        raw = orjson.dumps(doc)
    except (TypeError, orjson.JSONEncodeError):
        return  # floats like inf, huge ints: not JSON a client could send
    _check(raw)


@settings(max_examples=1000, deadline=None)
@given(st.binary(max_size=200) | st.text(max_size=200))
def test_fuzzed_bytes_decode_or_raise_protocol_error(raw: bytes | str) -> None:
    _check(raw)


# -- outbound -----------------------------------------------------------------------------


def test_encode_and_error_frames() -> None:
    assert orjson.loads(encode("pong", {"ts": 1}, re=3)) == {"t": "pong", "re": 3, "d": {"ts": 1}}
    assert orjson.loads(encode("welcome", {})) == {"t": "welcome", "d": {}}
    assert orjson.loads(error(ErrorCode.FORBIDDEN, "no", re=2)) == {
        "t": "error",
        "re": 2,
        "d": {"code": "forbidden", "message": "no"},
    }
    detailed = error(ErrorCode.CONFLICT, "matched", re=4, details={"race": "r1"})
    assert orjson.loads(detailed)["d"] == {
        "code": "conflict",
        "message": "matched",
        "details": {"race": "r1"},
    }


def test_a_push_is_encoded_once_and_numbered_per_recipient() -> None:
    payload = push_payload("chat.message", {"room": "r", "text": "hé"})
    push = parse_push(payload)
    assert isinstance(push, Push) and push.type == "chat.message"
    for seq in (1, 42):
        assert orjson.loads(push.frame(seq)) == {
            "t": "chat.message",
            "d": {"room": "r", "text": "hé"},
            "s": seq,
        }


@pytest.mark.parametrize("payload", [b"", b"{}", b'{"t": 1, "d": {}}', b"[]", b'{"t":"x"}'])
def test_malformed_pushes_are_refused(payload: bytes) -> None:
    with pytest.raises(ProtocolError):
        parse_push(payload)


def test_server_frames_decode_for_clients() -> None:
    frame_ = decode_server(b'{"t":"chat.message","s":4,"d":{"text":"x"}}')
    assert (frame_.t, frame_.s, frame_.re, frame_.d) == ("chat.message", 4, None, {"text": "x"})
    with pytest.raises(ProtocolError):
        decode_server(b'{"d":1}')
