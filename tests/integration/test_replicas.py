"""Read replicas for real: a MariaDB primary and a GTID replica started by the tests.

Each test leaves the replica applying and caught up. Replica checks run by
hand (``check_replicas``) so the tests never wait on the monitor's clock.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from sqlalchemy import text

from tests.clusters import MariaDBPair
from tests.conftest import cheap_passwords, make_settings
from typogram.db.database import Database
from typogram.metrics import KernelMetrics
from typogram.platform import open_platform

pytestmark = pytest.mark.integration

NEVER_S = 3_600.0  # the monitor's own checks never run during a test


@pytest.fixture(scope="module")
def urls(mariadb_pair: MariaDBPair) -> Iterator[tuple[str, str]]:
    """A database of its own on the primary (replicated), and its URL on each server."""
    name = f"typogram_repl_{uuid.uuid4().hex[:8]}"
    mariadb_pair.sql("primary", f"CREATE DATABASE `{name}`")
    mariadb_pair.sql("primary", f"CREATE TABLE `{name}`.notes (id INT PRIMARY KEY, body TEXT)")
    mariadb_pair.wait_caught_up()
    yield f"{mariadb_pair.primary_server}/{name}", f"{mariadb_pair.replica_server}/{name}"
    mariadb_pair.sql("primary", f"DROP DATABASE `{name}`")


@pytest.fixture
def pair(mariadb_pair: MariaDBPair) -> Iterator[MariaDBPair]:
    yield mariadb_pair
    mariadb_pair.resume_applying()  # whatever the test did, leave it caught up
    mariadb_pair.wait_caught_up()


async def _open(primary: str, replica: str, max_lag_s: float) -> Database:
    db = Database(primary, [replica], replica_max_lag_s=max_lag_s, replica_check_s=NEVER_S)
    return await db.__aenter__()


@pytest.fixture
async def db(urls: tuple[str, str], pair: MariaDBPair) -> AsyncIterator[Database]:
    database = await _open(*urls, max_lag_s=0.5)
    try:
        yield database
    finally:
        await database.__aexit__(None, None, None)


async def server_id(db: Database, **how: object) -> int:
    async with db.read(**how) as conn:  # type: ignore[arg-type]
        return int((await conn.execute(text("SELECT @@server_id"))).scalar_one())


async def note(db: Database, note_id: int, **how: object) -> str | None:
    async with db.read(**how) as conn:  # type: ignore[arg-type]
        found = await conn.execute(text("SELECT body FROM notes WHERE id = :id"), {"id": note_id})
        return found.scalar_one_or_none()


async def write_note(db: Database, note_id: int, body: str) -> None:
    async with db.write() as conn:
        await conn.execute(
            text("REPLACE INTO notes (id, body) VALUES (:id, :body)"), {"id": note_id, "body": body}
        )


async def test_reads_go_to_the_replica_writes_to_the_primary(
    db: Database, pair: MariaDBPair
) -> None:
    assert await server_id(db) == 2
    assert await server_id(db, primary=True) == 1
    await write_note(db, 1, "hello")
    await asyncio.to_thread(pair.wait_caught_up)
    assert await note(db, 1) == "hello"  # replicated, read on the replica


async def test_a_lagging_replica_is_skipped_and_its_lag_exported(
    db: Database, pair: MariaDBPair
) -> None:
    registry = CollectorRegistry()
    KernelMetrics(registry).watch(db, _NoEvents())
    await asyncio.to_thread(pair.stop_applying)
    await write_note(db, 2, "after the replica stopped")
    await db.check_replicas()
    await asyncio.sleep(0.7)  # past the 0.5 s limit
    await db.check_replicas()

    (replica,) = db.replica_members()
    assert replica.lag_s > 0.5
    assert not db.replica_usable(replica)
    assert await server_id(db) == 1  # the primary serves what the replica would not
    assert await note(db, 2) == "after the replica stopped"
    exported = generate_latest(registry).decode()
    assert f'typogram_db_replica_lag_seconds{{replica="{replica.name}"}}' in exported
    assert f'typogram_db_replica_usable{{replica="{replica.name}"}} 0.0' in exported

    await asyncio.to_thread(pair.resume_applying)
    await asyncio.to_thread(pair.wait_caught_up)
    await db.check_replicas()
    assert replica.lag_s == 0.0
    assert await server_id(db) == 2


async def test_an_idle_primary_never_makes_the_replica_look_behind(db: Database) -> None:
    await db.check_replicas()
    await asyncio.sleep(0.7)
    await db.check_replicas()
    (replica,) = db.replica_members()
    assert replica.lag_s == 0.0
    assert await server_id(db) == 2


async def test_a_read_since_a_write_goes_only_where_the_write_is(
    urls: tuple[str, str], pair: MariaDBPair
) -> None:
    db = await _open(*urls, max_lag_s=60.0)  # lag allowed: the replica stays in use
    try:
        await asyncio.to_thread(pair.stop_applying)
        await write_note(db, 3, "mine")
        written = time.time()
        await db.check_replicas()
        assert await note(db, 3) is None  # a read that tolerates lag sees the replica
        assert await note(db, 3, since=written) == "mine"  # read-your-writes: the primary

        await asyncio.to_thread(pair.resume_applying)
        await asyncio.to_thread(pair.wait_caught_up)
        await db.check_replicas()
        assert await server_id(db, since=written) == 2  # the replica has it now
    finally:
        await db.__aexit__(None, None, None)


async def test_a_replica_that_is_down_is_skipped(db: Database, pair: MariaDBPair) -> None:
    await asyncio.to_thread(pair.kill_replica)
    try:
        # Before any check notices: the read finds the replica gone and uses the primary.
        assert await server_id(db) == 1
        (replica,) = db.replica_members()
        assert not replica.reachable
        await db.check_replicas()
        assert await server_id(db) == 1
    finally:
        await asyncio.to_thread(pair.restart_replica)
    await asyncio.to_thread(pair.wait_caught_up)
    await db.check_replicas()
    assert await server_id(db) == 2


async def test_a_profile_is_read_back_after_a_write_while_the_replica_lags(
    urls: tuple[str, str], pair: MariaDBPair, tmp_path: object
) -> None:
    """The attack: change a profile while the replica lags, read it back at once.

    Dropping the cached profile on write let the next read fill it from the
    replica, which still had the old one, and cache that for an hour.
    """
    primary, replica = urls
    settings = make_settings(
        data_dir=str(tmp_path),
        database_url=primary,
        database_replica_urls=(replica,),
        database_replica_check_s=NEVER_S,
    )
    async with open_platform(settings, migrate=True, passwords=cheap_passwords()) as platform:
        accounts = platform.accounts
        name = f"u{uuid.uuid4().hex[:10]}"
        user = await accounts.create_user(name, f"{name}@example.com", "x")
        await asyncio.to_thread(pair.wait_caught_up)
        await platform.db.check_replicas()
        assert (await accounts.get(user.id)) is not None  # cached

        await asyncio.to_thread(pair.stop_applying)
        await accounts.update_profile(user.id, {"bio": "changed"})
        await platform.db.check_replicas()  # lagging, but within the 5 s limit: in use
        (member,) = platform.db.replica_members()
        assert platform.db.replica_usable(member)
        for _ in range(3):  # the first read fills the cache, the others read it
            found = await accounts.get(user.id)
            assert found is not None and found.bio == "changed"


class _NoEvents:
    def consumer_lag(self) -> dict[tuple[str, str], int]:
        return {}
