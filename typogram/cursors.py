"""Opaque keyset cursors: ``[kind, number, text]`` as URL-safe base64. Pure.

A cursor names its ``kind`` (which order it continues), so a cursor of one
listing is refused by another instead of paging it wrongly. Anything a
client edits or invents decodes to a 400 naming ``cursor``, never a 500.
"""

from __future__ import annotations

import base64
import binascii

import orjson

from typogram.codes import ErrorCode
from typogram.errors import AppError

MAX_TEXT = 64


def encode_cursor(kind: str, first: float | int, text: str) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([kind, first, text])).decode().rstrip("=")


def decode_cursor(cursor: str, kind: str) -> tuple[float, str]:
    """``(number, text)``; raises ``AppError`` (400) for a cursor not written for ``kind``."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        tag, first, text = orjson.loads(raw)
    except (binascii.Error, ValueError, TypeError) as exc:
        raise bad_cursor() from exc
    if (
        tag != kind
        or isinstance(first, bool)
        or not isinstance(first, int | float)
        or not isinstance(text, str)
        or len(text) > MAX_TEXT
    ):
        raise bad_cursor()
    return first, text


def bad_cursor() -> AppError:
    return AppError(ErrorCode.BAD_REQUEST, "invalid cursor", fields={"cursor": "invalid"})
