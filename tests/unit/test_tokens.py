from __future__ import annotations

import time

import jwt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from typogram.errors import AppError
from typogram.settings import load
from typogram.tokens import TokenService, TokenType

SETTINGS = load(env={}, jwt_secret="unit-test-secret-" + "s" * 64)
SERVICE = TokenService(SETTINGS)


def test_round_trip_carries_claims() -> None:
    token, issued = SERVICE.issue("u1", TokenType.ACCESS, version=3, name="ann", role="admin")
    claims = SERVICE.verify(token, TokenType.ACCESS)
    assert claims == issued
    assert claims.version == 3
    assert not claims.is_guest


def test_tokens_carry_their_login_session() -> None:
    access, issued = SERVICE.issue("u1", TokenType.ACCESS, sid="login-1")
    assert SERVICE.verify(access).sid == issued.sid == "login-1"
    _, fresh = SERVICE.issue("u1", TokenType.ACCESS)
    _, other = SERVICE.issue("u1", TokenType.ACCESS)
    assert fresh.sid and fresh.sid != other.sid  # no sid given: a new session each


def _signed(**changes: object) -> str:
    now = int(time.time())
    payload = {
        "sub": "u1", "typ": "access", "jti": "j", "iat": now, "exp": now + 60,
        "iss": SETTINGS.jwt_issuer, "aud": SETTINGS.jwt_audience, **changes,
    }  # fmt: skip
    return jwt.encode(payload, SETTINGS.jwt_secret, algorithm="HS256")


def test_a_token_from_before_sessions_has_none() -> None:
    assert SERVICE.verify(_signed()).sid == ""


@pytest.mark.parametrize("sid", ["s" * 65, ["a"], {"a": 1}])
def test_a_malformed_session_id_is_an_invalid_token(sid: object) -> None:
    with pytest.raises(AppError, match="invalid token"):
        SERVICE.verify(_signed(sid=sid))


def test_type_is_enforced() -> None:
    refresh, _ = SERVICE.issue("u1", TokenType.REFRESH)
    with pytest.raises(AppError, match="not accepted"):
        SERVICE.verify(refresh, TokenType.ACCESS, TokenType.GUEST)


def test_a_verified_token_is_remembered_but_its_type_still_checked() -> None:
    service = TokenService(SETTINGS)
    refresh, issued = service.issue("u1", TokenType.REFRESH)
    assert service.verify(refresh) == issued  # checked and remembered
    with pytest.raises(AppError, match="not accepted"):
        service.verify(refresh, TokenType.ACCESS)  # answered from the cache, still refused
    assert service.verify(refresh, TokenType.REFRESH) == issued


def test_the_verified_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("typogram.tokens.VERIFIED_CACHE_SIZE", 3)
    service = TokenService(SETTINGS)
    tokens = [service.issue(f"u{i}", TokenType.ACCESS)[0] for i in range(5)]
    for token in tokens:
        service.verify(token)
    assert list(service._verified) == tokens[2:]  # the oldest went first


def test_a_tampered_token_is_not_answered_from_the_cache() -> None:
    service = TokenService(SETTINGS)
    token, _ = service.issue("u1", TokenType.ACCESS)
    service.verify(token)
    with pytest.raises(AppError):
        service.verify(token[:-2] + ("AA" if not token.endswith("AA") else "BB"))


def test_guest_tokens() -> None:
    token, claims = SERVICE.issue_guest("speedy")
    assert claims.subject.startswith("guest:")
    assert SERVICE.verify(token, TokenType.GUEST).is_guest


def test_expired_token_refused() -> None:
    token, _ = SERVICE.issue("u1", TokenType.ACCESS, now=0)
    with pytest.raises(AppError, match="expired"):
        SERVICE.verify(token)


def _payload() -> dict[str, object]:
    token, _ = SERVICE.issue("u1", TokenType.ACCESS)
    return jwt.decode(token, options={"verify_signature": False})


@pytest.mark.parametrize(
    "mutate",
    [
        lambda p: p.update(aud="someone-else"),
        lambda p: p.update(iss="someone-else"),
        lambda p: p.pop("typ"),
        lambda p: p.update(typ="superuser"),
        lambda p: p.pop("exp"),
    ],
)
def test_claims_are_checked(mutate) -> None:  # type: ignore[no-untyped-def]
    payload = _payload()
    mutate(payload)
    token = jwt.encode(payload, SETTINGS.jwt_secret, algorithm="HS256")
    with pytest.raises(AppError):
        SERVICE.verify(token)


def test_alg_none_and_other_algorithms_refused() -> None:
    payload = _payload()
    with pytest.raises(AppError):
        SERVICE.verify(jwt.encode(payload, None, algorithm="none"))
    with pytest.raises(AppError):
        SERVICE.verify(jwt.encode(payload, SETTINGS.jwt_secret, algorithm="HS512"))


@given(st.text(max_size=300))
def test_garbage_never_raises_anything_but_unauthorized(garbage: str) -> None:
    with pytest.raises(AppError) as caught:
        SERVICE.verify(garbage)
    assert caught.value.code.value == "unauthorized"
