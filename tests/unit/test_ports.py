"""``Event`` on the wire: what ``encode`` writes, ``decode`` reads back, or refuses."""

from __future__ import annotations

import contextlib

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from typogram.ports import Event

JSON_SCALARS = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=20)
JSON_VALUES = st.recursive(
    JSON_SCALARS | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def test_encode_writes_every_field() -> None:
    event = Event("test.completed", {"wpm": 92}, key="u1", version=2, id="e1", ts=1700000000000)
    assert orjson.loads(event.encode()) == {
        "id": "e1",
        "type": "test.completed",
        "v": 2,
        "ts": 1700000000000,
        "key": "u1",
        "data": {"wpm": 92},
    }


def test_defaults_give_a_fresh_id_and_a_timestamp() -> None:
    first, second = Event("a", {}), Event("a", {})
    assert first.id != second.id and len(first.id) == 32
    assert first.ts > 1_600_000_000_000 and first.key is None and first.version == 1


@given(
    type_=st.text(max_size=30),
    data=st.dictionaries(st.text(max_size=10), JSON_VALUES, max_size=5),
    key=st.none() | st.text(max_size=30),
    version=st.integers(0, 1000),
    ts=st.integers(0, 2**62),
)
def test_decode_reads_back_what_encode_wrote(
    type_: str, data: dict[str, object], key: str | None, version: int, ts: int
) -> None:
    event = Event(type_, data, key=key, version=version, ts=ts)
    assert Event.decode(event.encode()) == event


def test_decode_defaults_a_missing_version_to_1() -> None:
    raw = b'{"id": "e", "type": "t", "ts": 5, "data": {}}'
    assert Event.decode(raw) == Event("t", {}, key=None, version=1, id="e", ts=5)


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"not json",
        b"\xff\xfe",
        b"[]",
        b'"text"',
        b"null",
        b'{"type": "t", "ts": 1, "data": {}}',  # no id
        b'{"id": "e", "ts": 1, "data": {}}',  # no type
        b'{"id": "e", "type": "t", "data": {}}',  # no ts
        b'{"id": "e", "type": "t", "ts": 1}',  # no data
        b'{"id": 1, "type": "t", "ts": 1, "data": {}}',
        b'{"id": "e", "type": ["t"], "ts": 1, "data": {}}',
        b'{"id": "e", "type": "t", "ts": "soon", "data": {}}',
        b'{"id": "e", "type": "t", "ts": [1], "data": {}}',
        b'{"id": "e", "type": "t", "ts": 1, "v": "two", "data": {}}',
        b'{"id": "e", "type": "t", "ts": 1, "v": null, "data": {}}',
        b'{"id": "e", "type": "t", "ts": 1, "data": []}',
        b'{"id": "e", "type": "t", "ts": 1, "data": {}, "key": 7}',
        b'{"id": "e", "type": "t", "ts": 1e400, "data": {}}',
    ],
)
def test_decode_refuses_malformed_input_with_value_error(raw: bytes) -> None:
    with pytest.raises(ValueError):
        Event.decode(raw)


@given(st.binary(max_size=200))
def test_decode_of_random_bytes_raises_only_value_error(raw: bytes) -> None:
    with contextlib.suppress(ValueError):  # anything else fails the test
        Event.decode(raw)


@given(
    st.dictionaries(
        st.sampled_from(["id", "type", "v", "ts", "key", "data", "extra"]), JSON_VALUES, max_size=7
    )
)
def test_decode_of_random_objects_raises_only_value_error(doc: dict[str, object]) -> None:
    try:
        event = Event.decode(orjson.dumps(doc))
    except ValueError:
        return
    assert isinstance(event.id, str) and isinstance(event.data, dict)
