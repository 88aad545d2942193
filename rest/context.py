"""What a request handler reaches for: the platform, the caller's address, the caller."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request

from typogram.codes import ErrorCode
from typogram.errors import AppError
from typogram.proxies import client_address
from typogram.tokens import Claims, TokenType

if TYPE_CHECKING:
    from rest.routing import AuthMode
    from typogram.platform import Platform


_CLIENT_IP = "typogram.client_ip"  # request.state key: the address ``client_ip`` found


def platform_of(request: Request) -> Platform:
    platform: Platform = request.app.state.platform
    return platform


def client_ip(request: Request) -> str:
    """The client's address: the peer's, or from ``X-Forwarded-For`` when the peer is
    one of ``trusted_proxies`` (``typogram.proxies``). Computed once per request."""
    state = request.scope.setdefault("state", {})
    known: str | None = state.get(_CLIENT_IP)
    if known is None:
        peer = request.client.host if request.client else ""
        networks = request.app.state.trusted_proxies
        known = client_address(peer, request.headers.get("x-forwarded-for"), networks)
        state[_CLIENT_IP] = known
    return known


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


_VERIFIED = "typogram.claims"  # request.state key: (token, claims) verified by this request


def verified_claims(request: Request, token: str) -> Claims:
    """The token's claims, its signature checked once per request (any token type).

    The rate-limit middleware and ``authenticate`` both need them; the first
    caller verifies and leaves ``(token, claims)`` in the request's state
    (``scope["state"]``, one dict per request) for the second. A token that
    fails is not remembered: the second caller raises the same error again.
    """
    state = request.scope.setdefault("state", {})
    seen = state.get(_VERIFIED)
    if seen is not None and seen[0] == token:
        claims: Claims = seen[1]
        return claims
    claims = platform_of(request).tokens.verify(token)
    state[_VERIFIED] = (token, claims)
    return claims


async def authenticate(request: Request, mode: AuthMode) -> Claims:
    """Verify the bearer token; ``mode="user"`` refuses guests.

    A registered user's token must carry the current token version and a
    session not revoked (``typogram.revocation``), so a revocation holds on
    every process within its bound.
    """
    token = bearer_token(request)
    if token is None:
        raise AppError(ErrorCode.UNAUTHORIZED, "missing bearer token")
    platform = platform_of(request)
    accepted = (TokenType.ACCESS,) if mode == "user" else (TokenType.ACCESS, TokenType.GUEST)
    claims = verified_claims(request, token)
    if claims.type not in accepted:
        raise AppError(ErrorCode.UNAUTHORIZED, f"a {claims.type.value} token is not accepted here")
    await platform.revocation.check(claims)
    return claims


def require_role(claims: Claims, allowed: frozenset[str], what: str) -> None:
    """Refuse (403) a caller whose token's role is not in ``allowed`` (``typogram.roles``)."""
    if claims.role not in allowed:
        raise AppError(ErrorCode.FORBIDDEN, f"only {what} may do this")


async def staff_audit(
    request: Request,
    claims: Claims,
    action: str,
    detail: dict[str, Any],
    *,
    user_id: str | None = None,
    outcome: str = "ok",
) -> None:
    """Audit a staff action: ``actor_id`` is the caller; ``user_id`` the user acted on
    (default: the caller, for actions on content)."""
    await platform_of(request).accounts.audit(
        action,
        outcome,
        user_id=user_id or claims.subject,
        ip=client_ip(request),
        detail=detail,
        actor_id=claims.subject,
    )


def paging(request: Request, *, max_page: int, default: int = 20) -> tuple[int, str | None]:
    """``limit`` (1..``max_page``) and ``cursor`` from the query; 400 naming a bad one.
    The cursor is only checked for size here: its owner decodes it."""
    query = request.query_params
    try:
        limit = int(query.get("limit", str(default)))
    except ValueError:
        limit = 0
    if not 1 <= limit <= max_page:
        raise AppError(
            ErrorCode.BAD_REQUEST,
            f"limit must be an integer between 1 and {max_page}",
            fields={"limit": "invalid"},
        )
    cursor = query.get("cursor") or None
    if cursor is not None and len(cursor) > 200:
        raise AppError(ErrorCode.BAD_REQUEST, "invalid cursor", fields={"cursor": "invalid"})
    return limit, cursor
