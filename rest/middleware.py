"""The REST middleware: metrics, outages, body-size limit, shared rate limits (pure ASGI)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rest.context import bearer_token, client_ip, verified_claims
from rest.routing import json_response
from typogram import keys
from typogram.codes import ErrorCode
from typogram.errors import AppError
from typogram.logs import get_logger
from typogram.outages import unavailable_backend
from typogram.tokens import TokenType

if TYPE_CHECKING:
    from typogram.platform import Platform


# Methods a metric may name; any other (a client may send any token) counts as ``other``.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class MetricsMiddleware:
    """Counts requests and times them by route template (never by raw path) and by
    method (from a fixed set): no label takes a value the client chose."""

    def __init__(self, app: ASGIApp, platform: Platform) -> None:
        self.app = app
        self.metrics = platform.metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            route = scope.get("route")
            template = route.path if isinstance(route, Route) else "unmatched"
            method = scope["method"] if scope["method"] in METHODS else "other"
            self.metrics.http_latency.labels(method, template).observe(
                time.perf_counter() - started
            )
            self.metrics.http_requests.labels(method, template, str(status)).inc()


log = get_logger("typogram.rest")


class OutageMiddleware:
    """A backend unreachable for now (``typogram.outages``) answers ``503 unavailable``
    with ``Retry-After``, from a route or from the middleware inside (rate limits).

    Anything else propagates to the ``500`` handler. A response already started
    cannot be changed: then the error propagates too (the server drops the
    connection, which a client treats like a 503). An outage logs one line
    per backend every ``LOG_EVERY_S`` at most, with how many answers it stands for.
    """

    LOG_EVERY_S = 1.0

    def __init__(self, app: ASGIApp, retry_after_s: int) -> None:
        self.app = app
        self.retry_after = str(retry_after_s)
        self._logged: dict[str, tuple[float, int]] = {}  # backend → (logged at, answers since)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watch_start(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watch_start)
        except Exception as exc:
            backend = unavailable_backend(exc)
            if backend is None or started:
                raise
            self._log(backend, scope["path"], exc)
            error = AppError(ErrorCode.UNAVAILABLE, f"{backend} is unavailable for now; retry")
            response = json_response(error.body(), 503, {"Retry-After": self.retry_after})
            await response(scope, receive, send)

    def _log(self, backend: str, path: str, exc: Exception) -> None:
        # No traceback, and not one line per request: an outage is expected and
        # may last seconds at thousands of requests a second.
        now = time.monotonic()
        logged_at, answers = self._logged.get(backend, (-self.LOG_EVERY_S, 0))
        if now - logged_at < self.LOG_EVERY_S:
            self._logged[backend] = (logged_at, answers + 1)
            return
        self._logged[backend] = (now, 0)
        log.warning(
            "backend unavailable",
            extra={
                "backend": backend,
                "path": path,
                "reason": repr(exc)[:200],
                "answers_since_last_line": answers,
            },
        )


class BodyLimitMiddleware:
    """Refuses bodies over ``max_body_bytes`` with 413, declared or streamed."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        too_large = AppError(
            ErrorCode.PAYLOAD_TOO_LARGE, f"request body exceeds {self.max_bytes} bytes"
        )
        if declared is not None:
            try:
                length = int(declared)
            except ValueError:
                length = -1
            if length < 0 or length > self.max_bytes:
                error = (
                    too_large
                    if length >= 0
                    else AppError(ErrorCode.BAD_REQUEST, "invalid Content-Length")
                )
                await json_response(error.body(), error.http_status)(scope, receive, send)
                return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise too_large
            return message

        await self.app(scope, counting_receive, send)


class RateLimitMiddleware:
    """Fixed one-minute windows per IP and per user, counted in the shared cache.

    The user limit keys on the token's subject once its signature checks;
    an unverifiable token falls back to the IP limit alone (the endpoint
    will refuse it anyway). The verified claims stay in the request's state,
    so ``authenticate`` does not check the signature a second time; a user's
    token version that this process does not hold is read in the counters'
    round trip, so ``authenticate`` finds it here.
    """

    def __init__(self, app: ASGIApp, platform: Platform) -> None:
        self.app = app
        self.platform = platform
        self.revocation = platform.revocation

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/api/"):
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        settings = self.platform.settings
        now = time.time()
        window = int(now // 60)
        retry_after = max(1, (window + 1) * 60 - int(now))
        checks = [("ip", client_ip(request) or "unknown", settings.rate_limit_ip_per_min)]
        token = bearer_token(request)
        user: str | None = None  # a registered user whose token version is not known here
        if token is not None:
            try:
                claims = verified_claims(request, token)
                checks.append(("user", claims.subject, settings.rate_limit_user_per_min))
                if claims.type is TokenType.ACCESS and not self.revocation.knows(claims.subject):
                    user = claims.subject
            except AppError:
                pass
        # Every counter in one round trip (the Redis adapter shares it with other requests).
        counting = self.platform.cache.incr_each(
            [keys.rate_limit(scope_name, subject, window) for scope_name, subject, _ in checks],
            ttl=61,
        )
        if user is None:
            counts = await counting
        else:
            # The version ``authenticate`` checks next rides along with the counters.
            counts, _ = await asyncio.gather(counting, self._look_up_version(user))
        for (scope_name, _, limit), count in zip(checks, counts, strict=True):
            if count > limit:
                self.platform.metrics.rate_limited.labels(scope_name).inc()
                error = AppError(
                    ErrorCode.RATE_LIMITED,
                    f"rate limit of {limit} requests per minute per {scope_name} exceeded",
                )
                response = json_response(error.body(), 429, {"Retry-After": str(retry_after)})
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)

    async def _look_up_version(self, user_id: str) -> None:
        # Only a head start: on a failure ``authenticate`` asks again and answers for it.
        with contextlib.suppress(Exception):
            await self.revocation.state(user_id)
