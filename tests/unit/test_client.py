"""The SDK's pure helpers (the client itself: ``tests/integration/test_gateway_client.py``)."""

from __future__ import annotations

import pytest

from typogram.client import ClientError, TypogramClient, _client_error, token_expiry
from typogram.protocol import ServerFrame
from typogram.settings import load
from typogram.tokens import TokenService, TokenType


def test_token_expiry_reads_exp_without_the_secret() -> None:
    service = TokenService(load(env={}, jwt_secret="client-test-secret-" + "c" * 40))
    token, claims = service.issue("u1", TokenType.ACCESS)
    assert token_expiry(token) == claims.expires_at


@pytest.mark.parametrize(
    "token", ["", "abc", "a.b.c", "a.eyJleHAiOiJzb29uIn0.c", "a.bnVsbA.c", "a.W10.c"]
)
def test_token_expiry_of_garbage_is_none(token: str) -> None:
    assert token_expiry(token) is None


def test_the_client_tracks_the_rooms_and_races_it_would_rejoin() -> None:
    client = TypogramClient("ws://a/ws", "t", fallback_urls=["ws://b/ws", "ws://a/ws"])
    assert client._urls == ["ws://a/ws", "ws://b/ws"]
    frames = [
        ("room.joined", {"room": "lobby", "members": [], "history": []}),
        ("room.joined", {"room": "other"}),
        ("room.left", {"room": "other"}),
        ("race.created", {"race": "r1", "code": "ABCD"}),
        ("match.found", {"race": "r2"}),
        ("race.result", {"race": "r1", "standings": []}),
        ("race.joined", {"race": 7}),  # malformed: ignored
        ("chat.message", {"room": "x"}),
        ("error", {"code": "not_found"}),
    ]
    for t, d in frames:
        client._track(ServerFrame(t, d))
    assert client.rooms == {"lobby"} and client.races == {"r2"}


def test_an_error_frame_gives_its_details_to_the_client_error() -> None:
    crossed = {"code": "conflict", "message": "matched already", "details": {"race": "r9"}}
    error = _client_error(ServerFrame("error", crossed, re=3))
    assert isinstance(error, ClientError)
    assert (error.code, error.message, error.details) == (
        "conflict",
        "matched already",
        {"race": "r9"},
    )
    assert str(error) == "conflict: matched already"
    plain = _client_error(ServerFrame("error", {"code": "not_found", "message": "no"}))
    assert plain.details == {}
    odd = _client_error(ServerFrame("error", {"code": "conflict", "details": "r9"}))
    assert odd.details == {}  # not an object: nothing to act on
