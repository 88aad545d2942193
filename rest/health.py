"""Liveness, readiness, metrics and the OpenAPI document."""

from __future__ import annotations

import asyncio
import hmac

import msgspec
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import Response

from rest.context import platform_of
from rest.routing import Answer, Api, json_response

api = Api()


class Health(msgspec.Struct):
    status: str


class Readiness(msgspec.Struct):
    status: str
    backends: dict[str, str]
    # Lasting background tasks that died with an error: name -> ``error: <type>``.
    failed_tasks: dict[str, str]


@api.route("GET", "/health", summary="The process is alive", tag="ops", response=Health)
async def health(request: Request) -> Answer:
    return Answer({"status": "ok"})


@api.route(
    "GET",
    "/ready",
    summary="Every backend answers and no background task died",
    tag="ops",
    response=Readiness,
    errors=(503,),
)
async def ready(request: Request) -> Answer:
    platform = platform_of(request)
    checks = platform.backends()
    results = await asyncio.gather(
        *(asyncio.wait_for(check(), timeout=2.0) for check in checks.values()),
        return_exceptions=True,
    )
    backends = {
        name: "ok" if not isinstance(result, BaseException) else f"error: {type(result).__name__}"
        for name, result in zip(checks, results, strict=True)
    }
    failed_tasks = platform.tasks.failed
    healthy = not failed_tasks and all(state == "ok" for state in backends.values())
    return Answer(
        {
            "status": "ok" if healthy else "degraded",
            "backends": backends,
            "failed_tasks": failed_tasks,
        },
        200 if healthy else 503,
    )


def metrics_allowed(token: str, authorization: str, *, open_without_token: bool) -> bool:
    """Whether a scrape may read ``/metrics``: with ``metrics_token`` set, only a caller
    presenting it as a bearer token; without one, only where ``open_without_token`` (the
    metrics listener, loopback unless a token is set)."""
    if not token:
        return open_without_token
    scheme, _, presented = authorization.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        presented.strip().encode(), token.encode()
    )


async def _metrics(request: Request, *, open_without_token: bool) -> Response:
    platform = platform_of(request)
    token = platform.settings.metrics_token
    if not metrics_allowed(
        token, request.headers.get("authorization", ""), open_without_token=open_without_token
    ):
        # Without a token configured the HTTP port has no /metrics at all.
        if not token:
            return json_response({"error": {"code": "not_found", "message": "not found"}}, 404)
        return json_response(
            {"error": {"code": "unauthorized", "message": "metrics need the bearer token"}},
            401,
            {"WWW-Authenticate": 'Bearer realm="metrics"'},
        )
    return Response(generate_latest(platform.metrics.registry), media_type=CONTENT_TYPE_LATEST)


async def metrics(request: Request) -> Response:
    """``/metrics`` on the HTTP port: only with the bearer ``metrics_token``."""
    return await _metrics(request, open_without_token=False)


async def metrics_listener(request: Request) -> Response:
    """``/metrics`` on the metrics port (``metrics_host:metrics_port``)."""
    return await _metrics(request, open_without_token=True)


async def openapi(request: Request) -> Response:
    return Response(request.app.state.openapi, media_type="application/json")
