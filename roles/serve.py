"""The long-running roles: REST, the gateway, worker groups, or all of them (``serve``).

``run`` opens the platform (``typogram.platform``: one adapter per port),
hands it to each role's server, and runs them in one task group until
SIGTERM or SIGINT sets the stop event; the one-shot jobs (``jobs.py``) run
inside the same platform and return.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import uvicorn

from roles import jobs
from typogram import logs
from typogram.errors import BackendUnavailable
from typogram.platform import open_platform

if TYPE_CHECKING:
    from starlette.types import ASGIApp

    from typogram.platform import Platform
    from typogram.settings import Settings

log = logs.get_logger("typogram")


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: our stop event decides."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _tune_gc() -> None:
    """Freeze start-up objects and raise the young-generation threshold.

    Full collections over many long-lived objects paused the loop for tens of
    milliseconds under load; frozen objects are never scanned again.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)


def _stop_on_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)


async def _run_rest(platform: Platform, stop: asyncio.Event, *, ops_only: bool = False) -> None:
    from rest.app import create_app

    settings = platform.settings
    await _serve_http(
        create_app(platform, ops_only=ops_only), settings.host, settings.http_port, stop
    )


async def _run_metrics(platform: Platform, stop: asyncio.Event) -> None:
    """``/metrics`` on its own listener (``metrics_host:metrics_port``)."""
    from rest.app import create_metrics_app

    settings = platform.settings
    await _serve_http(
        create_metrics_app(platform), settings.metrics_host, settings.metrics_port, stop
    )


#: Seconds an idle HTTP keep-alive connection stays open. Longer than the idle
#: timeouts of the clients and proxies in front (httpx 5 s, nginx upstream and
#: cloud load balancers 60 s), so the other side always closes first: a server
#: that closes first races the client's next request on that connection, which
#: then fails (a 502 at a proxy, a read error at a client).
KEEP_ALIVE_S = 75


def http_config(app: ASGIApp, host: str, port: int) -> uvicorn.Config:
    """How every HTTP listener of ours is served (REST, metrics; tests use it too)."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        loop="none",
        lifespan="off",
        log_config=None,
        access_log=False,
        server_header=False,
        timeout_keep_alive=KEEP_ALIVE_S,
        # Client addresses come from ``rest.context.client_ip`` (``trusted_proxies``),
        # never from uvicorn's own reading of X-Forwarded-For.
        proxy_headers=False,
    )


async def _serve_http(app: ASGIApp, host: str, port: int, stop: asyncio.Event) -> None:
    config = http_config(app, host, port)
    server = _Server(config)

    async def watch() -> None:
        await stop.wait()
        server.should_exit = True

    async with asyncio.TaskGroup() as group:
        watcher = group.create_task(watch())
        await server.serve()
        if not server.started:
            stop.set()
            raise BackendUnavailable("HTTP listener", f"{host}:{port}", "could not bind")
        watcher.cancel()


async def _run_gateway(platform: Platform, stop: asyncio.Event) -> None:
    from gateway.server import gateway_of

    async with gateway_of(platform) as gateway:
        # typogram_component{component="gateway"|"races",stat=...} on /metrics
        platform.metrics.components.add("gateway", gateway.statistics)
        platform.metrics.components.add("races", gateway.races.statistics)
        await gateway.serve(stop)


async def _run_workers(platform: Platform, names: Sequence[str], stop: asyncio.Event) -> None:
    from workers.groups import GROUPS
    from workers.runtime import GroupRunner

    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(GroupRunner(platform, GROUPS[name]).run()) for name in names]
        await stop.wait()
        for task in tasks:
            task.cancel()


async def run(settings: Settings, roles: Sequence[str], worker_groups: Sequence[str]) -> None:
    stop = asyncio.Event()
    _stop_on_signals(stop)
    _tune_gc()
    migrate = bool({"serve", "migrate", "seed-courses", "seed-courses-replace"} & set(roles))
    async with open_platform(settings, migrate=migrate) as platform:
        if "migrate" in roles:
            log.info("migrations applied", extra={"database": platform.db.dialect})
            return
        if "seed-courses" in roles or "seed-courses-replace" in roles:
            await jobs.seed_courses(platform, replace="seed-courses-replace" in roles)
            return
        if "subscriptions-expire" in roles:
            await jobs.expire_subscriptions(platform)
            return
        if "partitions" in roles or "partitions-dry-run" in roles:
            await jobs.maintain_partitions(platform, dry_run="partitions-dry-run" in roles)
            return
        async with asyncio.TaskGroup() as group:
            if "rest" in roles or "serve" in roles:
                group.create_task(_run_rest(platform, stop))
                log.info(
                    "REST listening", extra={"url": f"http://{settings.host}:{settings.http_port}"}
                )
            else:
                # Other roles still answer /health and /ready on the HTTP port (and
                # /metrics there only with the bearer metrics token).
                group.create_task(_run_rest(platform, stop, ops_only=True))
            if settings.metrics_port:
                group.create_task(_run_metrics(platform, stop))
            if "gateway" in roles or "serve" in roles:
                group.create_task(_run_gateway(platform, stop))
                log.info(
                    "gateway listening",
                    extra={"url": f"ws://{settings.host}:{settings.ws_port}/ws"},
                )
            if worker_groups:
                group.create_task(_run_workers(platform, worker_groups, stop))
                log.info("workers running", extra={"groups": list(worker_groups)})
