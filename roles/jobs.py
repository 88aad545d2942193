"""One-shot jobs on an open platform: starter catalog, subscription expiry, retention.

Each is one command (``seed-courses``, ``subscriptions expire``,
``partitions``) for an operator, cron or a Kubernetes CronJob; each is safe
to run again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from typogram import logs

if TYPE_CHECKING:
    from typogram.platform import Platform

log = logs.get_logger("typogram")


async def seed_courses(platform: Platform, *, replace: bool) -> None:
    """Add the starter catalog and plans where missing (``replace``: rewrite the starter
    courses' fields and lessons; learners' progress is kept, lesson ids are stable)."""
    from typogram.courses.services import editor_of
    from typogram.courses.starter import COURSES, PLANS

    done = await editor_of(platform).seed(COURSES, PLANS, replace=replace)
    log.info("starter catalog loaded", extra=done)


async def expire_subscriptions(platform: Platform) -> None:
    """One pass of the ``courses`` worker's schedule (for cron or a Kubernetes CronJob)."""
    from workers.courses import expire_and_prune

    expired = await expire_and_prune(platform)
    log.info("subscriptions expired", extra={"count": expired})


async def maintain_partitions(platform: Platform, *, dry_run: bool) -> None:
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
