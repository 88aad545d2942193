"""Declared endpoints: one decorator gives a route, body validation, auth and OpenAPI.

A handler is ``async def handler(request, **kwargs) -> Answer``. When the
endpoint declares ``body=SomeStruct`` the JSON body is decoded and validated
once into that type and passed as ``body``; ``auth="user"`` (a registered
user) or ``auth="any"`` (user or guest) passes the verified ``claims``.
``roles`` (with ``auth``) refuses, with 403 and before the body is read, any
caller whose token's role is not among them, guests included.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from typogram.codes import ErrorCode
from typogram.errors import AppError
from typogram.roles import STAFF

AuthMode = Literal["user", "any"] | None
Handler = Callable[..., Awaitable["Answer"]]

_JSON = msgspec.json.Encoder()
_FIELD_PATH = re.compile(r"at `\$\.([A-Za-z_][A-Za-z0-9_]*)")


@dataclass(frozen=True, slots=True)
class Answer:
    """What a handler answers: a JSON body (encoded by the router), its status and any
    extra headers. (``rooms.effects.Reply`` is the game rules' answer to a client.)"""

    body: Any
    status: int = 200
    headers: dict[str, str] | None = None


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(_JSON.encode(body), status, headers, media_type="application/json")


@dataclass(slots=True)
class Endpoint:
    method: str
    path: str
    handler: Handler
    summary: str
    tag: str
    body: type | None = None
    response: type | None = None
    status: int = 200
    auth: AuthMode = None
    errors: tuple[int, ...] = ()
    query: dict[str, str] = field(default_factory=dict)
    roles: frozenset[str] | None = None


class Api:
    """Collects endpoints for the router and the OpenAPI document."""

    def __init__(self) -> None:
        self.endpoints: list[Endpoint] = []

    def route(
        self,
        method: str,
        path: str,
        *,
        summary: str,
        tag: str,
        body: type | None = None,
        response: type | None = None,
        status: int = 200,
        auth: AuthMode = None,
        errors: tuple[int, ...] = (),
        query: dict[str, str] | None = None,
        roles: frozenset[str] | None = None,
    ) -> Callable[[Handler], Handler]:
        if roles is not None and auth is None:
            raise ValueError(f"{path}: roles need auth")

        def register(handler: Handler) -> Handler:
            self.endpoints.append(
                Endpoint(
                    method,
                    path,
                    handler,
                    summary,
                    tag,
                    body,
                    response,
                    status,
                    auth,
                    errors,
                    query or {},
                    roles,
                )
            )
            return handler

        return register

    def staff_decision(
        self,
        path: str,
        *,
        summary: str,
        body: type,
        response: type,
        errors: tuple[int, ...],
    ) -> Callable[[Handler], Handler]:
        """``POST path``: staff (``roles.STAFF``) decide on one item, with a note in ``body``."""
        return self.route(
            "POST",
            path,
            summary=summary,
            tag="admin",
            body=body,
            response=response,
            auth="user",
            roles=STAFF,
            errors=errors,
        )

    def routes(self, authenticate: Callable[[Request, AuthMode], Awaitable[Any]]) -> list[Route]:
        return [
            Route(ep.path, _endpoint_app(ep, authenticate), methods=[ep.method])
            for ep in self.endpoints
        ]


def decode_body(raw: bytes, body_type: type) -> Any:
    """Decode and validate a JSON body; a fault becomes ``bad_request`` naming the field."""
    if not raw.strip():
        # An absent body is an empty object: fine when every field is optional.
        raw = b"{}"
    try:
        return msgspec.json.decode(raw, type=body_type)
    except msgspec.ValidationError as exc:
        message = str(exc)
        match = _FIELD_PATH.search(message)
        fields = {match.group(1): message.split(" - at ")[0]} if match else None
        if fields is None and "missing required field" in message:
            name = message.rsplit("`", 2)[-2] if message.count("`") >= 2 else ""
            fields = {name: "required"} if name else None
        raise AppError(ErrorCode.BAD_REQUEST, message, fields=fields) from exc
    except msgspec.DecodeError as exc:
        raise AppError(ErrorCode.BAD_REQUEST, f"malformed JSON: {exc}") from exc


def _endpoint_app(
    ep: Endpoint, authenticate: Callable[[Request, AuthMode], Awaitable[Any]]
) -> Callable[[Request], Awaitable[Response]]:
    async def app(request: Request) -> Response:
        kwargs: dict[str, Any] = {}
        if ep.auth is not None:
            # A guest token is a caller too: with roles it gets 403 like any other role.
            claims = await authenticate(request, "any" if ep.roles is not None else ep.auth)
            if ep.roles is not None and claims.role not in ep.roles:
                allowed = " and ".join(sorted(ep.roles))
                raise AppError(ErrorCode.FORBIDDEN, f"only the roles {allowed} may do this")
            kwargs["claims"] = claims
        if ep.body is not None:
            kwargs["body"] = decode_body(await request.body(), ep.body)
        reply = await ep.handler(request, **kwargs)
        return json_response(reply.body, reply.status, reply.headers)

    app.__name__ = ep.handler.__name__
    return app
