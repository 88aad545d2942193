"""The Starlette application: routes, middleware stack and error handlers in one place."""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from rest import (
    account_mail,
    admin_posts,
    admin_reports,
    admin_users,
    auth,
    billing,
    blog,
    blog_pages,
    email,
    health,
    learning,
    records,
    results,
    reviews,
    solo,
    tournaments,
    typing_tests,
    users,
    web,
)
from rest.context import authenticate
from rest.middleware import (
    BodyLimitMiddleware,
    MetricsMiddleware,
    OutageMiddleware,
    RateLimitMiddleware,
)
from rest.openapi import build
from rest.routing import json_response
from rest.security_headers import SecurityHeadersMiddleware
from typogram.blog.services import reader_of
from typogram.codes import ErrorCode
from typogram.errors import AppError
from typogram.logs import get_logger
from typogram.proxies import trusted_networks

if TYPE_CHECKING:
    from typogram.platform import Platform

FEATURES = (
    health.api,
    auth.api,
    users.api,
    records.api,
    web.api,
    typing_tests.api,
    results.api,
    reviews.api,
    admin_reports.api,
    tournaments.api,
    *solo.APIS,
    *learning.APIS,
    *billing.APIS,
    blog.api,
    admin_posts.api,
    admin_users.api,
    account_mail.api,
    email.api,
)
log = get_logger("typogram.rest")

_HTTP_CODES = {
    400: ErrorCode.BAD_REQUEST,
    401: ErrorCode.UNAUTHORIZED,
    403: ErrorCode.FORBIDDEN,
    404: ErrorCode.NOT_FOUND,
    405: ErrorCode.BAD_REQUEST,
    409: ErrorCode.CONFLICT,
    413: ErrorCode.PAYLOAD_TOO_LARGE,
    429: ErrorCode.RATE_LIMITED,
}


async def _app_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, AppError)
    headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after else None
    return json_response(exc.body(), exc.http_status, headers)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = _HTTP_CODES.get(exc.status_code, ErrorCode.BAD_REQUEST)
    message = "method not allowed" if exc.status_code == 405 else str(exc.detail).lower()
    headers = dict(exc.headers) if exc.headers else None
    return json_response(
        {"error": {"code": code.value, "message": message}}, exc.status_code, headers
    )


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error", extra={"path": request.url.path})
    return json_response({"error": {"code": "internal", "message": "internal error"}}, 500)


def create_app(platform: Platform, *, ops_only: bool = False) -> Starlette:
    """The REST API; ``ops_only`` keeps just health, readiness and metrics.

    Gateway and worker processes serve the ``ops_only`` app on their HTTP
    port so every role can be probed and scraped the same way.
    """
    features = (health.api,) if ops_only else FEATURES
    endpoints = [ep for feature in features for ep in feature.endpoints]
    routes: list[BaseRoute] = [
        route for feature in features for route in feature.routes(authenticate)
    ]
    routes += [
        Route("/metrics", health.metrics, methods=["GET"]),
        Route("/api/v1/openapi.json", health.openapi, methods=["GET"]),
    ]
    if not ops_only:
        routes += blog_pages.routes()
        routes += email.routes()
        routes.append(web.web_mount())  # last: only paths no API route claims
    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(SecurityHeadersMiddleware),
            Middleware(MetricsMiddleware, platform=platform),
            Middleware(OutageMiddleware, retry_after_s=platform.settings.unavailable_retry_after_s),
            Middleware(BodyLimitMiddleware, max_bytes=platform.settings.max_body_bytes),
            Middleware(RateLimitMiddleware, platform=platform),
        ],
        exception_handlers={
            AppError: _app_error,
            HTTPException: _http_error,
            Exception: _unexpected,
        },
    )
    app.state.platform = platform
    app.state.trusted_proxies = trusted_networks(platform.settings.trusted_proxies)
    if not ops_only:
        app.state.blog_reader = blog = reader_of(platform)
        platform.metrics.components.add("blog", blog.statistics)
    app.state.openapi = msgspec.json.encode(build(endpoints))
    return app


def create_metrics_app(platform: Platform) -> Starlette:
    """The metrics listener's app: ``/metrics`` alone (``metrics_host:metrics_port``)."""
    app = Starlette(
        routes=[Route("/metrics", health.metrics_listener, methods=["GET"])],
        middleware=[Middleware(SecurityHeadersMiddleware)],
    )
    app.state.platform = platform
    return app
