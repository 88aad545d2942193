"""Liveness, readiness, metrics and the OpenAPI document."""

from __future__ import annotations

import asyncio

import msgspec
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import Response

from rest.context import platform_of
from rest.routing import Api, Reply

api = Api()


class Health(msgspec.Struct):
    status: str


class Readiness(msgspec.Struct):
    status: str
    backends: dict[str, str]


@api.route("GET", "/health", summary="The process is alive", tag="ops", response=Health)
async def health(request: Request) -> Reply:
    return Reply({"status": "ok"})


@api.route(
    "GET", "/ready", summary="Every backend answers", tag="ops", response=Readiness, errors=(503,)
)
async def ready(request: Request) -> Reply:
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
    healthy = all(state == "ok" for state in backends.values())
    return Reply(
        {"status": "ok" if healthy else "degraded", "backends": backends}, 200 if healthy else 503
    )


async def metrics(request: Request) -> Response:
    registry = platform_of(request).metrics.registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


async def openapi(request: Request) -> Response:
    return Response(request.app.state.openapi, media_type="application/json")
