"""The SQL port: one primary for writes and read-your-writes, replicas for reads.

``Database`` is an async context manager over SQLAlchemy async engines
(aiomysql for MySQL/MariaDB, aiosqlite for the embedded file). Callers take a
connection with ``write()`` (a transaction on the primary) or ``read()`` (a
replica, round robin, the primary when there is none).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Self

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import PoolResetState

from typogram.errors import BackendUnavailable

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


def _engine(url: str, pool_size: int) -> AsyncEngine:
    full = async_url(url)
    if full.startswith("sqlite"):
        path = make_url(full).database
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(full, connect_args={"timeout": 30})

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
    trip after each ``write()`` that has just committed. Skipped when the
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
        self, primary_url: str, replica_urls: Sequence[str] = (), *, pool_size: int = 20
    ) -> None:
        self.primary_url = primary_url
        self.replica_urls = tuple(replica_urls)
        self._pool_size = pool_size
        self._primary: AsyncEngine | None = None
        self._replicas: list[AsyncEngine] = []
        self._next_replica: itertools.cycle[AsyncEngine] | None = None
        self._closed = False
        self._writer = asyncio.Lock() if self.dialect == "sqlite" else None
        self._queries = 0
        self._query_seconds = 0.0

    @property
    def dialect(self) -> str:
        return "sqlite" if async_url(self.primary_url).startswith("sqlite") else "mysql"

    async def __aenter__(self) -> Self:
        if self._closed:
            raise RuntimeError("Database is closed")
        self._primary = _engine(self.primary_url, self._pool_size)
        self._replicas = [_engine(url, self._pool_size) for url in self.replica_urls]
        self._next_replica = itertools.cycle(self._replicas) if self._replicas else None
        for url, engine in [
            (self.primary_url, self._primary),
            *zip(self.replica_urls, self._replicas, strict=True),
        ]:
            try:
                async with engine.connect() as conn:
                    await conn.execute(text("SELECT 1"))
            except Exception as exc:
                await self._dispose()
                raise BackendUnavailable("database", redact(url), _reason(exc)) from exc
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._dispose()
        self._closed = True

    async def _dispose(self) -> None:
        for engine in [self._primary, *self._replicas]:
            if engine is not None:
                await engine.dispose()
        self._primary, self._replicas = None, []

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
                    async with self._engine_for_write().begin() as conn:
                        yield conn
                finally:
                    self._writer.release()
        finally:
            self._count(started)

    @asynccontextmanager
    async def read(self, *, primary: bool = False) -> AsyncIterator[AsyncConnection]:
        """A connection for reads; ``primary=True`` for read-your-writes."""
        engine = self._engine_for_write()
        if not primary and self._next_replica is not None:
            engine = next(self._next_replica)
        started = time.perf_counter()
        try:
            async with engine.connect() as conn:
                yield conn
        finally:
            self._count(started)

    def _count(self, started: float) -> None:
        self._queries += 1
        self._query_seconds += time.perf_counter() - started

    async def ping(self) -> None:
        async with self.read(primary=True) as conn:
            await conn.execute(text("SELECT 1"))

    def statistics(self) -> dict[str, float]:
        return {
            "blocks": self._queries,
            "seconds": self._query_seconds,
            "replicas": len(self._replicas),
        }


def _reason(exc: BaseException) -> str:
    message = str(exc).strip().splitlines()
    return message[0][:200] if message else type(exc).__name__
