"""JWT access, refresh and guest tokens.

Rules:
* one algorithm (HS256) is accepted; ``alg=none`` and every other is refused;
* ``exp``, ``iat``, ``iss``, ``aud``, ``sub`` and ``typ`` are required and checked;
* ``typ`` separates ``access``, ``refresh`` and ``guest`` tokens, so a refresh
  token never opens a socket and an access token never refreshes;
* ``ver`` carries the user's token version: a bump (logout-all) makes every
  older token invalid, which the caller checks against the store;
* ``sid`` names the login session the token belongs to (one login and its
  chain of refreshes share it), so one session can be revoked alone
  (``typogram.revocation``). A token issued before sessions existed has none
  (``""``) and is revoked with its user only.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from enum import StrEnum

import jwt

from typogram.codes import ErrorCode
from typogram.errors import AppError
from typogram.settings import Settings

ALGORITHM = "HS256"
GUEST_PREFIX = "guest:"
# Tokens whose signature this process has checked, kept until they expire.
VERIFIED_CACHE_SIZE = 4096


class TokenType(StrEnum):
    ACCESS = "access"
    REFRESH = "refresh"
    GUEST = "guest"


@dataclass(frozen=True, slots=True)
class Claims:
    """What a verified token says. ``jti`` identifies refresh tokens for rotation;
    ``sid`` the login session (``""`` when the token carries none)."""

    subject: str
    type: TokenType
    version: int
    name: str
    role: str
    jti: str
    expires_at: int
    sid: str = ""

    @property
    def is_guest(self) -> bool:
        return self.type is TokenType.GUEST


class TokenService:
    def __init__(self, settings: Settings) -> None:
        self._secret = settings.jwt_secret
        self._issuer = settings.jwt_issuer
        self._audience = settings.jwt_audience
        self._ttl = {
            TokenType.ACCESS: settings.access_token_ttl_s,
            TokenType.REFRESH: settings.refresh_token_ttl_s,
            TokenType.GUEST: settings.guest_token_ttl_s,
        }
        # token -> claims, oldest first. A client sends the same access token
        # on every request; checking its HMAC and claims again costs ~60 µs.
        self._verified: dict[str, Claims] = {}

    def issue(
        self,
        subject: str,
        token_type: TokenType,
        *,
        version: int = 0,
        name: str = "",
        role: str = "user",
        jti: str | None = None,
        sid: str | None = None,
        now: float | None = None,
    ) -> tuple[str, Claims]:
        """A signed token; ``sid`` defaults to a new session (``uuid4().hex``)."""
        issued = int(time.time() if now is None else now)
        claims = Claims(
            subject=subject,
            type=token_type,
            version=version,
            name=name,
            role=role,
            jti=jti or uuid.uuid4().hex,
            expires_at=issued + self._ttl[token_type],
            sid=sid or uuid.uuid4().hex,
        )
        payload = {
            "sub": subject,
            "typ": token_type.value,
            "ver": version,
            "name": name,
            "role": role,
            "jti": claims.jti,
            "sid": claims.sid,
            "iat": issued,
            "exp": claims.expires_at,
            "iss": self._issuer,
            "aud": self._audience,
        }
        return jwt.encode(payload, self._secret, algorithm=ALGORITHM), claims

    def issue_guest(self, name: str) -> tuple[str, Claims]:
        return self.issue(
            f"{GUEST_PREFIX}{uuid.uuid4().hex}", TokenType.GUEST, name=name, role="guest"
        )

    def verify(self, token: str, *accepted: TokenType) -> Claims:
        """Decode and check a token; raises ``AppError(unauthorized)`` on any fault.

        A token that verified before is answered from a bounded cache until its
        ``exp`` (the same bytes under the same key give the same claims); the
        caller still checks the token version against the store.
        """
        claims = self._verified.get(token) if isinstance(token, str) else None
        if claims is None or claims.expires_at <= time.time():
            claims = self._decode(token)
            if len(self._verified) >= VERIFIED_CACHE_SIZE:
                del self._verified[next(iter(self._verified))]
            self._verified[token] = claims
        if accepted and claims.type not in accepted:
            raise AppError(
                ErrorCode.UNAUTHORIZED, f"a {claims.type.value} token is not accepted here"
            )
        return claims

    def _decode(self, token: str) -> Claims:
        if not isinstance(token, str) or not token or len(token) > 4096:
            raise AppError(ErrorCode.UNAUTHORIZED, "missing or malformed token")
        try:
            payload = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                audience=self._audience,
                issuer=self._issuer,
                options={"require": ["exp", "iat", "iss", "aud", "sub", "typ", "jti"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise AppError(ErrorCode.UNAUTHORIZED, "token expired") from exc
        except jwt.PyJWTError as exc:
            raise AppError(ErrorCode.UNAUTHORIZED, "invalid token") from exc
        sid = payload.get("sid", "")
        if not isinstance(sid, str) or len(sid) > 64:
            raise AppError(ErrorCode.UNAUTHORIZED, "invalid token")
        try:
            token_type = TokenType(payload["typ"])
            claims = Claims(
                subject=str(payload["sub"]),
                type=token_type,
                version=int(payload.get("ver", 0)),
                name=str(payload.get("name", "")),
                role=str(payload.get("role", "user")),
                jti=str(payload["jti"]),
                expires_at=int(payload["exp"]),
                sid=sid,
            )
        except (ValueError, TypeError) as exc:
            raise AppError(ErrorCode.UNAUTHORIZED, "invalid token") from exc
        return claims
