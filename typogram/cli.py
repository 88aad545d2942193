"""The ``typogram`` command: ``serve`` (everything, embedded) or one role each.

This module is the composition root: the only kernel module that reaches up
into ``rest``, ``gateway`` and ``workers``, and only inside the commands.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import signal
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import uvicorn
import uvloop

from typogram import admin_cli, logs
from typogram.errors import BackendUnavailable
from typogram.platform import open_platform
from typogram.settings import Settings, SettingsError, load

if TYPE_CHECKING:
    from starlette.types import ASGIApp

    from typogram.platform import Platform

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


async def _serve_http(app: ASGIApp, host: str, port: int, stop: asyncio.Event) -> None:
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        loop="none",
        lifespan="off",
        log_config=None,
        access_log=False,
        server_header=False,
        # Client addresses come from ``rest.context.client_ip`` (``trusted_proxies``),
        # never from uvicorn's own reading of X-Forwarded-For.
        proxy_headers=False,
    )
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
    from gateway.server import Gateway
    from workers.tournament_store import TournamentStore

    async with Gateway(
        platform.settings,
        tokens=platform.tokens,
        cache=platform.cache,
        fences=platform.fences,
        pushes=platform.push_log,
        pubsub=platform.pubsub,
        events=platform.events,
        queues=platform.match_queues,
        revocation=platform.revocation,
        sync_appear_offline=platform.accounts.sync_appear_offline,
        registry=platform.metrics.registry,
        ratings=platform.ratings,
        tournaments=TournamentStore.of(platform),
    ) as gateway:
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


async def _main(settings: Settings, roles: Sequence[str], worker_groups: Sequence[str]) -> None:
    stop = asyncio.Event()
    _stop_on_signals(stop)
    _tune_gc()
    migrate = bool({"serve", "migrate", "seed-courses", "seed-courses-replace"} & set(roles))
    async with open_platform(settings, migrate=migrate) as platform:
        if "migrate" in roles:
            log.info("migrations applied", extra={"database": platform.db.dialect})
            return
        if "seed-courses" in roles or "seed-courses-replace" in roles:
            await _seed_courses(platform, replace="seed-courses-replace" in roles)
            return
        if "subscriptions-expire" in roles:
            await _expire_subscriptions(platform)
            return
        if "partitions" in roles or "partitions-dry-run" in roles:
            await _maintain_partitions(platform, dry_run="partitions-dry-run" in roles)
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


async def _seed_courses(platform: Platform, *, replace: bool) -> None:
    """Add the starter catalog and plans where missing (``replace``: rewrite the starter
    courses' fields and lessons; learners' progress is kept, lesson ids are stable)."""
    from typogram.courses.services import editor_of
    from typogram.courses.starter import COURSES, PLANS

    done = await editor_of(platform).seed(COURSES, PLANS, replace=replace)
    log.info("starter catalog loaded", extra=done)


async def _expire_subscriptions(platform: Platform) -> None:
    """One pass of the ``courses`` worker's schedule (for cron or a Kubernetes CronJob)."""
    from workers.courses import expire_and_prune

    expired = await expire_and_prune(platform)
    log.info("subscriptions expired", extra={"count": expired})


async def _maintain_partitions(platform: Platform, *, dry_run: bool) -> None:
    """The retention job: archive whole months past retention, then reshape partitions,
    then archive the analytics rows untouched for ``HOT_DAYS`` and delete archived
    analytics older than ``analytics_cold_days``.

    Rows reach the archive (and are read back) before any is deleted or any
    partition dropped, so running it again after a failure is always safe.
    """
    import datetime as dt

    from typogram.db import partitions
    from typogram.db.archiver import (
        archive_analytics,
        archive_older_than,
        expire_cold_analytics,
    )
    from typogram.db.schema import metadata

    settings = platform.settings
    now = dt.datetime.now(dt.UTC)
    for name in sorted(partitions.PARTITIONED_TABLES):
        cutoff = now - dt.timedelta(days=partitions.retention_days(settings, name))
        if dry_run:
            log.info("would archive months before", extra={"table": name, "cutoff": str(cutoff)})
            continue
        moved = await archive_older_than(
            platform.db, platform.archive, metadata.tables[name], cutoff
        )
        log.info("archived", extra={"table": name, "rows_per_month": moved})
    done = await partitions.maintain(
        platform.db, settings, int(now.timestamp() * 1000), dry_run=dry_run
    )
    for table, statements in done.items():
        for statement in statements:
            log.info(
                "partition statement", extra={"table": table, "sql": statement, "dry_run": dry_run}
            )
    cold = await archive_analytics(
        platform.db, platform.archive, int(now.timestamp() * 1000), dry_run=dry_run
    )
    message = "would archive cold analytics rows" if dry_run else "archived cold analytics rows"
    log.info(message, extra={"rows_per_table": cold})
    expired = await expire_cold_analytics(
        platform.archive,
        int(now.timestamp() * 1000),
        cold_days=settings.analytics_cold_days,
        dry_run=dry_run,
    )
    message = "would expire archived analytics" if dry_run else "expired archived analytics"
    log.info(message, extra={"objects_per_table": expired})


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="typogram", description=__doc__)
    parser.add_argument(
        "--config", help="TOML settings file (default: TYPOGRAM_CONFIG or built-ins)"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="gateway, REST and workers in one process, embedded backends")
    commands.add_parser("rest", help="the REST API")
    commands.add_parser("gateway", help="the WebSocket gateway")
    worker = commands.add_parser("worker", help="one consumer group, or all of them")
    worker.add_argument("group", help="a group name or 'all'")
    commands.add_parser("migrate", help="create the database if missing and apply migrations")
    partitions = commands.add_parser(
        "partitions",
        help="archive months past retention, add upcoming and drop emptied partitions, "
        "archive analytics rows untouched for 90 days",
    )
    partitions.add_argument("--dry-run", action="store_true", help="print, change nothing")
    seed = commands.add_parser(
        "seed-courses", help="add the starter courses and plans that are missing"
    )
    seed.add_argument(
        "--replace", action="store_true", help="rewrite the starter courses and their lessons"
    )
    subscriptions = commands.add_parser("subscriptions", help="subscription maintenance")
    subscriptions.add_argument(
        "action", choices=["expire"], help="expire subscriptions whose period has ended"
    )
    _add_dlq_commands(commands)
    _add_backup_commands(commands)
    admin_cli.add_commands(commands)
    return parser


def _add_backup_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    backup = commands.add_parser(
        "backup", help="dump MariaDB (with its GTID position) and snapshot Redis into a folder"
    )
    backup.add_argument("--to", required=True, help="folder that receives typogram-<time>/")
    backup.add_argument("--no-redis", action="store_true", help="the database only")
    restore = commands.add_parser(
        "restore", help="load a backup folder into an empty database; place its Redis snapshot"
    )
    restore.add_argument("folder", help="a typogram-<time>/ folder written by typogram backup")
    restore.add_argument(
        "--database-url", help="restore into this database (default: TYPOGRAM_DATABASE_URL)"
    )
    restore.add_argument(
        "--redis-rdb", help="write the Redis snapshot here (the stopped server's dump.rdb)"
    )
    restore.add_argument(
        "--force", action="store_true", help="load even if the database already has tables"
    )


def _backup(settings: Settings, args: argparse.Namespace) -> int:
    """``typogram backup`` / ``restore``: 0 done, 1 a client or check failed."""
    import datetime as dt

    from typogram import backup

    try:
        if args.command == "backup":
            now = dt.datetime.now(dt.UTC)
            folder = backup.backup(settings, Path(args.to), redis=not args.no_redis, now=now)
            print(folder)
            return 0
        url = args.database_url or settings.sql_url
        manifest = backup.restore_database(Path(args.folder), url, force=args.force)
        print(f"restored {manifest.database} as of {manifest.created_at}")
        if manifest.gtid_position:
            print(f"replay binary logs from GTID {manifest.gtid_position} for later writes")
        if args.redis_rdb:
            backup.restore_redis(Path(args.folder), Path(args.redis_rdb))
            print(f"Redis snapshot written to {args.redis_rdb}: start the server on it")
        return 0
    except (backup.BackupError, OSError) as exc:
        print(f"typogram: {exc}", file=sys.stderr)
        return 1


def _add_dlq_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    dlq = commands.add_parser(
        "dlq", help="list and replay dead letters (<topic>.dlq) on Kafka; see docs/operations.md"
    )
    actions = dlq.add_subparsers(dest="dlq_command", required=True)
    listing = actions.add_parser("list", help="counts per dead-letter topic and their entries")
    listing.add_argument("topic", nargs="?", help="a topic, with or without .dlq (default: all)")
    replay = actions.add_parser(
        "replay", help="republish dead letters to their topic for the consumers to process again"
    )
    replay.add_argument("topic", help="a topic, with or without .dlq")
    which = replay.add_mutually_exclusive_group(required=True)
    which.add_argument(
        "--id", dest="ids", action="append", metavar="ID", help="an event id (repeatable)"
    )
    which.add_argument("--all", action="store_true", help="every pending entry")
    replay.add_argument("--dry-run", action="store_true", help="print, change nothing")


def _dlq(settings: Settings, args: argparse.Namespace) -> int:
    """``typogram dlq``: 0 done, 1 an entry refused or Kafka unreachable, 2 bad input."""
    import time

    from aiokafka.errors import KafkaError

    from typogram.adapters.kafka import KafkaEventLog
    from workers import dlq

    try:
        topic = None if args.topic is None else dlq.source_topic(args.topic)
    except dlq.UnknownTopic as exc:
        print(f"typogram: {exc}", file=sys.stderr)
        return 2
    if not settings.kafka_bootstrap:
        print(
            "typogram: dlq reads Kafka: set TYPOGRAM_KAFKA_BOOTSTRAP (typogram serve keeps "
            "its dead letters inside its own process)",
            file=sys.stderr,
        )
        return 2

    async def run() -> int:
        async with KafkaEventLog.from_settings(settings) as events:
            if args.dlq_command == "list":
                return await dlq.list_command(
                    events, topic, max_records=settings.worker_dlq_read_max, out=print
                )
            assert topic is not None, "replay requires a topic"
            return await dlq.replay_command(
                events,
                topic,
                None if args.all else args.ids,
                dry_run=args.dry_run,
                limit=settings.worker_dlq_replay_limit,
                max_records=settings.worker_dlq_read_max,
                at_ms=int(time.time() * 1000),
                out=print,
            )

    try:
        return uvloop.run(run())
    except dlq.UnknownIds as exc:
        print(f"typogram: {exc}", file=sys.stderr)
        return 2
    except (BackendUnavailable, KafkaError, OSError) as exc:  # TimeoutError is an OSError
        print(f"typogram: {str(exc) or type(exc).__name__}", file=sys.stderr)
        return 1


def _default_config(command: str) -> str | None:
    """``serve`` reads configs/default.toml when it is there and nothing else is named."""
    candidate = Path("configs/default.toml")
    return str(candidate) if command == "serve" and candidate.is_file() else None


def _startup_failure(exc: BaseException) -> BaseException | None:
    """The backend or socket failure inside ``exc`` (possibly an exception group)."""
    if isinstance(exc, BackendUnavailable | OSError | SettingsError):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            if (found := _startup_failure(inner)) is not None:
                return found
    return None


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load(args.config or _default_config(args.command))
    except SettingsError as exc:
        print(f"typogram: configuration error: {exc}", file=sys.stderr)
        return 2
    logs.configure(settings.log_level, settings.log_json)
    if args.command == "dlq":
        return _dlq(settings, args)
    if args.command in ("backup", "restore"):
        return _backup(settings, args)
    if args.command == "admin":
        return admin_cli.run(settings, args)
    from workers.groups import GROUPS

    groups: list[str] = []
    if args.command == "serve":
        groups = list(GROUPS)
    elif args.command == "worker":
        if args.group != "all" and args.group not in GROUPS:
            print(
                f"typogram: unknown worker group {args.group!r}; known: {', '.join(GROUPS)}, all",
                file=sys.stderr,
            )
            return 2
        groups = list(GROUPS) if args.group == "all" else [args.group]
    try:
        role = "partitions-dry-run" if getattr(args, "dry_run", False) else args.command
        if args.command == "seed-courses" and args.replace:
            role = "seed-courses-replace"
        elif args.command == "subscriptions":
            role = f"subscriptions-{args.action}"
        uvloop.run(_main(settings, [role], groups))
    except BaseException as exc:
        failure = _startup_failure(exc)
        if failure is None:
            raise
        print(f"typogram: {failure}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
