"""The SDK's pure helpers (the client itself: ``tests/integration/test_gateway_client.py``)."""

from __future__ import annotations

import pytest

from typogram.client import token_expiry
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
