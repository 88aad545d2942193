"""The direct-write framing must produce exactly what ``websockets`` would send."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from websockets.frames import Frame, Opcode

from gateway.connection.wire import text_frame, text_header


def _reference(payload: bytes) -> bytes:
    return Frame(Opcode.TEXT, payload).serialize(mask=False, extensions=[])


@given(st.binary(max_size=70_000))
def test_text_frame_matches_websockets(payload: bytes) -> None:
    assert text_frame(payload) == _reference(payload)


def test_length_boundaries() -> None:
    for length in (0, 125, 126, 127, 65_535, 65_536, 1 << 20):
        payload = b"x" * length
        assert text_frame(payload) == _reference(payload)
        expected = 2 if length < 126 else 4 if length < 65_536 else 10
        assert len(text_header(length)) == expected
