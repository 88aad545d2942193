"""The pure parts of ``typogram.revocation``: the refusal rules and the revoke notice."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from typogram.revocation import (
    RevokeNotice,
    TokenState,
    decode_notice,
    encode_notice,
    refusal,
)
from typogram.tokens import Claims, TokenType

NOW = 1_000_000.0


def claims(
    *, version: int = 2, sid: str = "s1", expires_at: int = 1_000_600, guest: bool = False
) -> Claims:
    kind = TokenType.GUEST if guest else TokenType.ACCESS
    return Claims("u1", kind, version, "ann", "user", "j", expires_at, sid)


STATE = TokenState(version=2, revoked={"gone": NOW + 60, "forgotten": NOW - 1})


@pytest.mark.parametrize(
    ("token", "state", "reason"),
    [
        (claims(), STATE, None),
        (claims(version=3), STATE, None),  # issued after a revocation seen here late
        (claims(version=1), STATE, "token has been revoked"),
        (claims(), None, "token has been revoked"),  # the user is gone
        (claims(sid="gone"), STATE, "session has been revoked"),
        (claims(sid="forgotten"), STATE, None),  # remembered only while tokens may live
        (claims(sid=""), STATE, None),  # from before sessions: revoked with its user only
        (claims(expires_at=int(NOW)), STATE, "token expired"),
        (claims(version=1, expires_at=int(NOW) - 5), STATE, "token expired"),
        (claims(guest=True, version=0), None, None),  # guests have no state
        (claims(guest=True, expires_at=int(NOW)), None, "token expired"),
    ],
)
def test_refusal(token: Claims, state: TokenState | None, reason: str | None) -> None:
    assert refusal(state, token, NOW) == reason


@pytest.mark.parametrize(
    ("notice", "version", "sid", "covers"),
    [
        (RevokeNotice(version=3), 2, "s1", True),
        (RevokeNotice(version=3), 3, "s1", False),  # the token that came with the change
        (RevokeNotice(sid="s1"), 9, "s1", True),
        (RevokeNotice(sid="s1"), 9, "s2", False),
        (RevokeNotice(sid="s1"), 9, "", False),
        (RevokeNotice(sid=""), 9, "", False),  # an empty sid names no session
        (RevokeNotice(), 0, "", False),
    ],
)
def test_what_a_notice_covers(notice: RevokeNotice, version: int, sid: str, covers: bool) -> None:
    assert notice.covers(claims(version=version, sid=sid)) is covers


def test_a_notice_round_trips_in_the_user_channel_format() -> None:
    notice = RevokeNotice(version=4, reason="password_change")
    assert encode_notice(notice) == b'{"t":"revoke","d":{"version":4,"reason":"password_change"}}'
    assert decode_notice(encode_notice(notice)) == notice
    # The format gateways spoke before sessions still reads.
    assert decode_notice(b'{"t":"revoke","d":{"version":2}}') == RevokeNotice(version=2)


@pytest.mark.parametrize(
    "payload",
    [b"", b"{}", b'{"t":"takeover","d":{}}', b'{"t":"revoke","d":{"version":"x"}}', b"[1]"],
)
def test_other_payloads_are_not_notices(payload: bytes) -> None:
    with pytest.raises(ValueError, match="not a revoke notice"):
        decode_notice(payload)


@given(st.binary(max_size=200))
def test_decoding_any_bytes_raises_only_value_error(payload: bytes) -> None:
    with contextlib.suppress(ValueError):
        decode_notice(payload)
