from __future__ import annotations

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rest.auth import RegisterBody
from rest.routing import decode_body
from typogram.errors import AppError


def test_decodes_a_valid_body() -> None:
    body = decode_body(b'{"username":"ann","email":"a@b.co","password":"12345678"}', RegisterBody)
    assert isinstance(body, RegisterBody)


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (b'{"username":"a","email":"a@b.co","password":"12345678"}', "username"),
        (b'{"email":"a@b.co","password":"12345678"}', "username"),
        (b'{"username":"ann","email":"a@b.co","password":"12345678","x":1}', None),
    ],
)
def test_validation_errors_are_bad_request(raw: bytes, field: str | None) -> None:
    with pytest.raises(AppError) as caught:
        decode_body(raw, RegisterBody)
    assert caught.value.http_status == 400
    if field:
        assert caught.value.fields is not None and field in caught.value.fields


@given(st.binary(max_size=200))
def test_any_bytes_decode_or_give_bad_request(raw: bytes) -> None:
    try:
        decode_body(raw, RegisterBody)
    except AppError as exc:
        assert exc.http_status == 400


@given(st.dictionaries(st.text(max_size=10), st.one_of(st.none(), st.integers(), st.text())))
def test_any_object_decodes_or_gives_bad_request(doc: dict) -> None:  # type: ignore[type-arg]
    try:
        decode_body(msgspec.json.encode(doc), RegisterBody)
    except AppError as exc:
        assert exc.http_status == 400
