"""Assemble the backends a role needs from settings, as one async context manager.

An empty ``database_url`` / ``redis_url`` / ``kafka_bootstrap`` picks the
embedded adapter for that port; a set one picks the distributed adapter.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import NamedTuple

from prometheus_client import CollectorRegistry

from typogram.accounts import Accounts
from typogram.adapters.archive import archive_from_settings
from typogram.adapters.memory import (
    InProcessEventLog,
    MemoryCache,
    MemoryMatchQueues,
    MemoryPubSub,
)
from typogram.adapters.memory_scripts import (
    MemoryFencedWrites,
    MemoryPushLog,
    MemoryScoreWrites,
)
from typogram.adapters.search import search_for
from typogram.db.database import Database
from typogram.db.migrate import create_database_if_missing, upgrade
from typogram.fencing import FencedWrites
from typogram.leaderboards import ScoreWrites
from typogram.mail.port import MailTransport
from typogram.mail.transport import transport_from_settings
from typogram.match_queues import MatchQueues
from typogram.metrics import KernelMetrics
from typogram.passwords import Passwords
from typogram.payments.provider import PaymentProvider, provider_from_settings
from typogram.ports import Archive, Cache, EventLog, PubSub, Search
from typogram.process_metrics import GcPauses, LoopMonitor
from typogram.push_log import PushLog
from typogram.ratings import Ratings
from typogram.records import Records
from typogram.revocation import Revocation
from typogram.settings import Settings
from typogram.tasks import Supervisor
from typogram.tokens import TokenService


@dataclass(frozen=True, slots=True)
class Platform:
    settings: Settings
    db: Database
    cache: Cache
    pubsub: PubSub
    events: EventLog
    archive: Archive
    match_queues: MatchQueues  # matchmaking tickets and where each player is
    # The features' atomic scripts, each on the cache's keys:
    fences: FencedWrites  # writes under a lease (session and race records)
    push_log: PushLog  # chat rooms' numbered pushes
    score_writes: ScoreWrites  # leaderboard raises
    search: Search  # full-text search over the SQL port: FTS5 or FULLTEXT
    tokens: TokenService
    passwords: Passwords
    accounts: Accounts
    revocation: Revocation  # the one way tokens are revoked, and the check of every token
    ratings: Ratings
    records: Records
    metrics: KernelMetrics
    payments: PaymentProvider  # the payment provider: sandbox (development) or Stripe
    mail: MailTransport  # outgoing e-mail: a Maildir (development) or SMTP
    # Every background task of the process (``typogram.tasks``): the backends' own, the
    # gateway's; a lasting one that died makes ``/ready`` fail.
    tasks: Supervisor

    def backends(self) -> dict[str, Callable[[], Awaitable[None]]]:
        """A reachability check per backend, for ``/ready``."""
        return {
            "database": self.db.ping,
            "cache": self.cache.ping,
            "pubsub": self.pubsub.ping,
            "events": self.events.ping,
            "archive": self.archive.ping,
            "match_queues": self.match_queues.ping,
        }


class _OnCache(NamedTuple):
    """The cache and the ports that act on its keys, through its connection."""

    cache: Cache
    fences: FencedWrites
    push_log: PushLog
    score_writes: ScoreWrites
    match_queues: MatchQueues


def _cache(settings: Settings) -> _OnCache:
    """The cache and the ports over it (not entered yet): the features' script ports and
    the match queues. On Redis they share the cache's connection."""
    if settings.uses_redis:
        from typogram.adapters.redis import RedisCache
        from typogram.adapters.redis_queues import RedisMatchQueues
        from typogram.adapters.redis_scripts import (
            RedisFencedWrites,
            RedisPushLog,
            RedisScoreWrites,
        )

        redis = RedisCache.from_settings(settings)
        return _OnCache(
            redis,
            RedisFencedWrites(redis),
            RedisPushLog(redis),
            RedisScoreWrites(redis),
            RedisMatchQueues(redis),
        )
    memory = MemoryCache.from_settings(settings)
    return _OnCache(
        memory,
        MemoryFencedWrites(memory),
        MemoryPushLog(memory),
        MemoryScoreWrites(memory),
        MemoryMatchQueues(),
    )


def _pubsub(settings: Settings, tasks: Supervisor) -> PubSub:
    if settings.uses_redis:
        from typogram.adapters.redis import RedisPubSub

        return RedisPubSub.from_settings(settings, tasks=tasks)
    return MemoryPubSub.from_settings(settings)


def _events(settings: Settings) -> EventLog:
    if settings.kafka_bootstrap:
        from typogram.adapters.kafka import KafkaEventLog

        return KafkaEventLog.from_settings(settings)
    return InProcessEventLog.from_settings(settings)


@asynccontextmanager
async def open_platform(
    settings: Settings,
    *,
    migrate: bool = False,
    registry: CollectorRegistry | None = None,
    passwords: Passwords | None = None,
) -> AsyncIterator[Platform]:
    """Connect every backend (raising ``BackendUnavailable`` naming the first that fails)."""
    async with AsyncExitStack() as stack:
        metrics = KernelMetrics(registry or CollectorRegistry())
        # Entered first, so left last: what a backend left running is stopped after it.
        tasks = await stack.enter_async_context(Supervisor(metrics.task_failures))
        if migrate:
            await create_database_if_missing(settings.sql_url)
        db = await stack.enter_async_context(
            Database(
                settings.sql_url,
                settings.database_replica_urls,
                pool_size=settings.database_pool_size,
                replica_max_lag_s=settings.database_replica_max_lag_s,
                replica_check_s=settings.database_replica_check_s,
                timeout_s=settings.backend_connect_timeout_s,
                tasks=tasks,
            )
        )
        if migrate:
            await upgrade(db)
        cache, fences, push_log, score_writes, match_queues = _cache(settings)
        await stack.enter_async_context(cache)
        pubsub = await stack.enter_async_context(_pubsub(settings, tasks))
        events = await stack.enter_async_context(_events(settings))
        await stack.enter_async_context(match_queues)
        archive: Archive = await stack.enter_async_context(archive_from_settings(settings))
        payments = await stack.enter_async_context(provider_from_settings(settings, tasks=tasks))
        mail = await stack.enter_async_context(transport_from_settings(settings))
        search = search_for(db)
        ratings = Ratings(
            db,
            cache,
            ttl_s=settings.rating_cache_ttl_s,
            rank_histogram_s=settings.rating_rank_histogram_s,
        )
        accounts = Accounts(db, cache, profile_ttl_s=settings.profile_cache_ttl_s)
        session_ttl_s = max(settings.access_token_ttl_s, settings.refresh_token_ttl_s)
        revocation = Revocation(db, cache, pubsub, accounts, session_ttl_s=session_ttl_s)
        for name, component in (
            ("db", db),
            ("cache", cache),
            ("pubsub", pubsub),
            ("events", events),
            ("archive", archive),
            ("match_queues", match_queues),
            ("search", search),
            ("ratings", ratings),
            ("payments", payments),
            ("mail", mail),
        ):
            metrics.components.add(name, component.statistics)
        metrics.watch(db, events)
        await stack.enter_async_context(LoopMonitor(metrics.loop_lag, tasks=tasks))
        stack.enter_context(GcPauses(metrics.gc_pause))
        yield Platform(
            settings=settings,
            db=db,
            cache=cache,
            pubsub=pubsub,
            events=events,
            archive=archive,
            match_queues=match_queues,
            fences=fences,
            push_log=push_log,
            score_writes=score_writes,
            search=search,
            tokens=TokenService(settings),
            passwords=passwords or Passwords(),
            accounts=accounts,
            revocation=revocation,
            ratings=ratings,
            records=Records(
                db,
                cache,
                ratings,
                ttl_s=settings.records_cache_ttl_s,
                recent=settings.records_recent_races,
            ),
            metrics=metrics,
            payments=payments,
            mail=mail,
            tasks=tasks,
        )
