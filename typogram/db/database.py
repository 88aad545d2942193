"""The SQL port: one primary for writes and read-your-writes, replicas for reads.

``Database`` is an async context manager over SQLAlchemy async engines
(aiomysql for MySQL/MariaDB, aiosqlite for the embedded file). Callers take a
connection with ``write()`` (a transaction on the primary) or ``read()``: a
usable replica in turn (``typogram.db.replicas``: reachable and at most
``replica_max_lag_s`` behind), the primary when there is none or when the
caller asks for it. ``read(since=t)`` is read-your-writes without the
primary: a replica only once it has applied every write committed before
``t``. Every statement's time is kept per family (``typogram.db.timing``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any, Self

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import PoolResetState, QueuePool

from typogram.db.replicas import Replica, Replicas
from typogram.db.timing import QueryTimes
from typogram.errors import BackendUnavailable
from typogram.tasks import Supervisor

log = logging.getLogger(__name__)

WRITER_WAIT_S = 30.0
# ``info`` mark on a pooled connection whose transaction ``write()`` just committed.
_COMMITTED = "typogram.committed"


def async_url(url: str) -> str:
    """``mysql://`` → ``mysql+aiomysql://``, ``sqlite:///`` → ``sqlite+aiosqlite:///``."""
    for plain, driver in (
        ("mysql+aiomysql://", "mysql+aiomysql://"),
        ("mysql://", "mysql+aiomysql://"),
        ("mariadb://", "mysql+aiomysql://"),
        ("sqlite+aiosqlite://", "sqlite+aiosqlite://"),
        ("sqlite://", "sqlite+aiosqlite://"),
    ):
        if url.startswith(plain):
            return driver + url[len(plain) :]
    raise ValueError(f"unsupported database URL scheme: {url.split(':', 1)[0]}")


def redact(url: str) -> str:
    """The URL without its password, for logs and error lines."""
    return make_url(url).render_as_string(hide_password=True)


def server_name(url: str) -> str:
    """``host:port`` of a database URL: a replica's label in metrics and logs."""
    parsed = make_url(async_url(url))
    return f"{parsed.host or 'localhost'}:{parsed.port or 3306}"


def _engine(url: str, pool_size: int) -> AsyncEngine:
    full = async_url(url)
    if full.startswith("sqlite"):
        path = make_url(full).database
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(
            full,
            connect_args={"timeout": 30},
            pool_reset_on_return=None,  # ``_reset`` below decides
        )
        event.listen(engine.sync_engine, "reset", _reset)

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            # WAL lets readers run beside the writer; busy_timeout rides out short locks.
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=5000")
            cursor.close()

        return engine
    engine = create_async_engine(
        full,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_recycle=1800,
        pool_pre_ping=True,
        pool_reset_on_return=None,  # ``_reset`` below decides
        connect_args={"charset": "utf8mb4", "connect_timeout": 5},
    )
    event.listen(engine.sync_engine, "reset", _reset)
    return engine


def _reset(dbapi_conn: Any, record: Any, state: PoolResetState) -> None:
    """Roll back a connection going back to the pool unless nothing can be open.

    The pool's default rolls back every returned connection: one more round
    trip after each ``write()`` that has just committed (on SQLite a hop to
    aiosqlite's thread and back through a busy event loop). Skipped when the
    transaction was committed by ``write()`` (marked in the record's
    ``info``) or already rolled back by ``Connection.close()``; everything
    else (an abandoned connection, a failed commit) is rolled back as before.
    """
    committed = record is not None and record.info.pop(_COMMITTED, False)
    if committed or state.transaction_was_reset or state.terminate_only:
        return
    if state.asyncio_safe:
        dbapi_conn.rollback()


class Database:
    def __init__(
        self,
        primary_url: str,
        replica_urls: Sequence[str] = (),
        *,
        pool_size: int = 20,
        replica_max_lag_s: float = 5.0,
        replica_check_s: float = 1.0,
        timeout_s: float = 5.0,
        tasks: Supervisor | None = None,
    ) -> None:
        self.primary_url = primary_url
        self.replica_urls = tuple(replica_urls)
        self._pool_size = pool_size
        self._replica_max_lag_s = replica_max_lag_s
        self._replica_check_s = replica_check_s
        self._timeout_s = timeout_s
        self._primary: AsyncEngine | None = None
        self._replicas: Replicas | None = None
        self._tasks = tasks if tasks is not None else Supervisor()
        self._monitor: asyncio.Task[None] | None = None
        self._closed = False
        self._writer = asyncio.Lock() if self.dialect == "sqlite" else None
        self._queries = 0
        self._query_seconds = 0.0
        self.query_times = QueryTimes()

    @property
    def dialect(self) -> str:
        return "sqlite" if async_url(self.primary_url).startswith("sqlite") else "mysql"

    async def __aenter__(self) -> Self:
        if self._closed:
            raise RuntimeError("Database is closed")
        self._primary = _engine(self.primary_url, self._pool_size)
        self.query_times.attach(self._primary, "primary")
        try:
            async with self._primary.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception as exc:
            await self._dispose()
            raise BackendUnavailable("database", redact(self.primary_url), _reason(exc)) from exc
        if self.replica_urls:
            await self._open_replicas(self._primary)
        return self

    async def _open_replicas(self, primary: AsyncEngine) -> None:
        """Replicas down at start are skipped (and checked again), never fatal."""
        members = []
        for url in self.replica_urls:
            engine = _engine(url, self._pool_size)
            members.append(Replica(server_name(url), engine))
            self.query_times.attach(engine, "replica")
        self._replicas = Replicas(
            primary,
            members,
            max_lag_s=self._replica_max_lag_s,
            check_s=self._replica_check_s,
            timeout_s=self._timeout_s,
        )
        try:
            await self._replicas.check()
        except Exception as exc:  # the primary answered a moment ago: checks go on
            log.warning("first replica check failed: %s", _reason(exc))
        self._monitor = self._tasks.start("replica-monitor", self._replicas.run(), lasting=True)

    async def __aexit__(self, *exc: object) -> None:
        if self._monitor is not None:
            self._monitor.cancel()
            await asyncio.wait([self._monitor])  # never swallows our own cancellation
        await self._dispose()
        self._closed = True

    async def _dispose(self) -> None:
        replicas = self._replicas.members if self._replicas else []
        for engine in [self._primary, *(r.engine for r in replicas)]:
            if engine is not None:
                await engine.dispose()
        self._primary, self._replicas = None, None

    def _engine_for_write(self) -> AsyncEngine:
        if self._primary is None:
            raise RuntimeError("Database is not open")
        return self._primary

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A transaction on the primary, committed when the block exits cleanly.

        Do not open a ``write()`` inside another: on SQLite the second would
        wait for the first forever (and time out after ``WRITER_WAIT_S``).
        """
        started = time.perf_counter()
        try:
            if self._writer is None:
                async with self._engine_for_write().connect() as conn:
                    async with conn.begin():
                        yield conn
                    # Committed: returning it to the pool needs no rollback.
                    conn.sync_connection.connection.info[_COMMITTED] = True  # type: ignore[union-attr]
            else:
                # SQLite has one writer per file. Queueing writers here, in the
                # one process that owns the file, replaces busy-waiting on the
                # file lock (and "database is locked" errors) with a fair queue.
                async with asyncio.timeout(WRITER_WAIT_S):
                    await self._writer.acquire()
                try:
                    async with self._engine_for_write().connect() as conn:
                        async with conn.begin():
                            yield conn
                        conn.sync_connection.connection.info[_COMMITTED] = True  # type: ignore[union-attr]
                finally:
                    self._writer.release()
        finally:
            self._count(started)

    @asynccontextmanager
    async def read(
        self, *, primary: bool = False, since: float | None = None
    ) -> AsyncIterator[AsyncConnection]:
        """A connection for reads.

        ``primary=True`` reads the primary. ``since`` (epoch seconds) asks
        for every write committed before then: a replica that has applied
        them, else the primary. Otherwise any usable replica, else the
        primary. A replica that cannot hand out a connection is marked down
        and the primary serves the read.
        """
        primary_engine = self._engine_for_write()
        replicas = self._replicas
        replica = None if primary or replicas is None else replicas.choose(since)
        started = time.perf_counter()
        try:
            async with AsyncExitStack() as stack:
                conn: AsyncConnection | None = None
                if replica is not None:
                    assert replicas is not None
                    try:
                        conn = await stack.enter_async_context(replica.engine.connect())
                    except (DBAPIError, OSError) as exc:
                        replicas.mark_down(replica, exc)
                        replicas.fallbacks += 1
                if conn is None:
                    conn = await stack.enter_async_context(primary_engine.connect())
                yield conn
        finally:
            self._count(started)

    def _count(self, started: float) -> None:
        self._queries += 1
        self._query_seconds += time.perf_counter() - started

    async def ping(self) -> None:
        async with self.read(primary=True) as conn:
            await conn.execute(text("SELECT 1"))

    @property
    def read_your_writes_s(self) -> float:
        """How long after a commit a usable replica may still lack it: the lag limit
        plus two checks (one second without replicas)."""
        if not self.replica_urls:
            return 1.0
        return self._replica_max_lag_s + 2 * self._replica_check_s

    async def check_replicas(self) -> None:
        """One replica check now (the monitor runs one every ``replica_check_s``)."""
        if self._replicas is not None:
            await self._replicas.check()

    def replica_members(self) -> list[Replica]:
        return list(self._replicas.members) if self._replicas else []

    def replica_usable(self, replica: Replica) -> bool:
        return replica.usable(self._replica_max_lag_s)

    def pool_use(self) -> dict[str, tuple[int, int]]:
        """Connections in use and the most the pool hands out, per engine (MySQL only)."""
        if self.dialect != "mysql":
            return {}
        engines = [("primary", self._primary)]
        engines += [(r.name, r.engine) for r in self.replica_members()]
        use: dict[str, tuple[int, int]] = {}
        for name, engine in engines:
            if engine is not None and isinstance(engine.pool, QueuePool):
                use[name] = (engine.pool.checkedout(), 2 * self._pool_size)
        return use

    def statistics(self) -> dict[str, float]:
        stats: dict[str, float] = {"blocks": self._queries, "seconds": self._query_seconds}
        if self._replicas is not None:
            stats.update(self._replicas.statistics())
        else:
            stats["replicas"] = 0
        return stats


def _reason(exc: BaseException) -> str:
    message = str(exc).strip().splitlines()
    return message[0][:200] if message else type(exc).__name__
