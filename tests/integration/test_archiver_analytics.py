"""Archiving cold analytics rows: SQLite and MariaDB into the archive port, nothing lost."""

from __future__ import annotations

import gzip
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import Table, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from rest.insights import insights_of
from tests.served import cli_env, run_cli
from typogram import topics
from typogram.db.archiver import DAY_MS, archive_analytics, archive_cold
from typogram.db.database import Database
from typogram.db.schema import user_bigram_stats, user_confusions, user_key_stats, user_trend
from typogram.insights import HOT_DAYS
from typogram.platform import Platform
from typogram.ports import Event
from workers.groups import GROUPS

pytestmark = pytest.mark.integration

NOW = int(time.time() * 1000)
OLD = NOW - (HOT_DAYS + 5) * DAY_MS  # past the hot window
RECENT = NOW - 3 * DAY_MS
CUTOFF = NOW - HOT_DAYS * DAY_MS
USER = "c" * 32


def _analysed(result_id: str, created_at: int, keys: dict[str, int]) -> Event:
    data = {
        "result_id": result_id, "user_id": USER, "wpm": 60.0, "accuracy": 95.0,
        "consistency": 70.0, "created_at": created_at,
        "keys": {k: {"hits": n, "misses": 1, "total_ms": 100 * n, "samples": n}
                 for k, n in keys.items()},
        "bigrams": {k + k: {"total_ms": 300, "samples": 3} for k in keys},
        "confusions": {k: {"x": 1} for k in keys},
    }  # fmt: skip
    return Event(type="analytics.result", data=data, key=USER, id=result_id)


async def _analyse(
    platform: Platform, result_id: str, created_at: int, keys: dict[str, int]
) -> None:
    event = _analysed(result_id, created_at, keys)
    await GROUPS["analytics"].handle(platform, topics.KEYSTROKE_ANALYTICS, event)


async def _age(platform: Platform, key: str, stamp: int) -> None:
    """Make one key's counters (key, bigram, confusion) look untouched since ``stamp``."""
    async with platform.db.write() as conn:
        for table, column, value in (
            (user_key_stats, "key", key),
            (user_bigram_stats, "bigram", key + key),
            (user_confusions, "expected", key),
        ):
            await conn.execute(
                update(table)
                .where(table.c[column] == value)
                .values(created_at=stamp, updated_at=stamp)
            )


async def _rows(platform: Platform, table: Table) -> list[dict[str, Any]]:
    async with platform.db.read(primary=True) as conn:
        return [dict(r) for r in (await conn.execute(select(table))).mappings()]


async def _archived(platform: Platform, prefix: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for key in await platform.archive.list(prefix):
        data = await platform.archive.get(key)
        assert data is not None
        rows.extend(orjson.loads(line) for line in gzip.decompress(data).splitlines())
    return rows


async def _seed(platform: Platform) -> None:
    """An old result that typed a, b; a recent one that typed b, c; then a, b aged out."""
    await _analyse(platform, "1" * 32, OLD, {"a": 4, "b": 4})
    await _analyse(platform, "2" * 32, RECENT, {"b": 6, "c": 6})
    await _age(platform, "a", OLD)


async def test_cold_rows_move_and_hot_rows_stay(platform: Platform) -> None:
    await _seed(platform)
    planned = await archive_analytics(platform.db, platform.archive, NOW, dry_run=True)
    assert planned == {
        "user_key_stats": 1,
        "user_bigram_stats": 1,
        "user_confusions": 1,
        "user_trend": 1,
    }
    assert await platform.archive.list() == []  # a dry run writes nothing
    moved = await archive_analytics(platform.db, platform.archive, NOW)
    assert moved == planned
    assert {r["key"] for r in await _rows(platform, user_key_stats)} == {"b", "c"}
    assert {r["bigram"] for r in await _rows(platform, user_bigram_stats)} == {"bb", "cc"}
    assert {r["expected"] for r in await _rows(platform, user_confusions)} == {"b", "c"}
    assert [r["result_id"] for r in await _rows(platform, user_trend)] == ["2" * 32]
    # What left the database is in the archive, whole.
    [key_row] = await _archived(platform, "user_key_stats/")
    assert key_row == {
        "user_id": USER, "key": "a", "hits": 4, "misses": 1, "samples": 4,
        "latency_ms": 100.0, "created_at": OLD, "updated_at": OLD,
    }  # fmt: skip
    [trend_row] = await _archived(platform, "user_trend/")
    assert trend_row["result_id"] == "1" * 32 and trend_row["created_at"] == OLD
    # Running again finds nothing and writes nothing.
    keys_before = await platform.archive.list()
    assert set((await archive_analytics(platform.db, platform.archive, NOW)).values()) == {0}
    assert await platform.archive.list() == keys_before


async def test_insights_show_only_hot_data_after_the_job(platform: Platform) -> None:
    await _seed(platform)
    await archive_analytics(platform.db, platform.archive, NOW)
    doc = await insights_of(platform, USER)
    assert {k["key"] for k in doc["keys"]} == {"b", "c"}
    assert {c["expected"] for c in doc["confusions"]} == {"b", "c"}
    assert [p["at"] for p in doc["trend"]["points"]] == [RECENT]


async def test_insights_leave_out_cold_rows_before_the_job_runs(platform: Platform) -> None:
    await _seed(platform)  # "a" is past the hot window but still in the database
    doc = await insights_of(platform, USER)
    assert {k["key"] for k in doc["keys"]} == {"b", "c"}
    assert {c["expected"] for c in doc["confusions"]} == {"b", "c"}


async def test_batches_are_bounded(platform: Platform) -> None:
    await _analyse(platform, "1" * 32, OLD, dict.fromkeys("abcdefg", 2))
    for key in "abcdefg":
        await _age(platform, key, OLD)
    moved = await archive_cold(
        platform.db, platform.archive, user_key_stats, "updated_at", CUTOFF, batch_rows=3
    )
    assert moved == 7
    assert len(await platform.archive.list("user_key_stats/")) == 3  # 3 + 3 + 1
    assert sorted(r["key"] for r in await _archived(platform, "user_key_stats/")) == list("abcdefg")
    assert await _rows(platform, user_key_stats) == []


class _CrashBeforeDelete:
    """The database as the job sees it, dying at its first delete (after the object is written)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def read(self, *, primary: bool = False) -> Any:
        return self._db.read(primary=primary)

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        raise ConnectionError("killed between the archive write and the delete")
        yield  # pragma: no cover


async def test_a_crash_between_write_and_delete_loses_and_duplicates_nothing(
    platform: Platform,
) -> None:
    await _analyse(platform, "1" * 32, OLD, dict.fromkeys("abcde", 2))
    for key in "abcde":
        await _age(platform, key, OLD)
    crashing: Any = _CrashBeforeDelete(platform.db)
    with pytest.raises(ConnectionError):
        await archive_cold(
            crashing, platform.archive, user_key_stats, "updated_at", CUTOFF, batch_rows=2
        )
    written = await platform.archive.list("user_key_stats/")
    assert len(written) == 1
    assert len(await _rows(platform, user_key_stats)) == 5  # nothing deleted
    moved = await archive_cold(
        platform.db, platform.archive, user_key_stats, "updated_at", CUTOFF, batch_rows=2
    )
    assert moved == 5
    # The rerun rewrote the same first object: every row is archived exactly once.
    assert set(written) <= set(await platform.archive.list("user_key_stats/"))
    assert sorted(r["key"] for r in await _archived(platform, "user_key_stats/")) == list("abcde")
    assert await _rows(platform, user_key_stats) == []


class _TouchedMeanwhile:
    """An archive whose put lets the analytics worker update key ``a`` before the delete."""

    def __init__(self, platform: Platform) -> None:
        self._platform = platform
        self.puts = 0

    async def put(self, key: str, data: bytes) -> None:
        await self._platform.archive.put(key, data)
        self.puts += 1
        await _age(self._platform, "a", RECENT)

    async def get(self, key: str) -> bytes | None:
        return await self._platform.archive.get(key)


async def test_a_row_updated_before_the_delete_stays(platform: Platform) -> None:
    await _analyse(platform, "1" * 32, OLD, {"a": 2, "b": 2})
    await _age(platform, "a", OLD)
    await _age(platform, "b", OLD)
    archive: Any = _TouchedMeanwhile(platform)
    moved = await archive_cold(platform.db, archive, user_key_stats, "updated_at", CUTOFF)
    assert moved == 1 and archive.puts == 1
    [row] = await _rows(platform, user_key_stats)
    assert row["key"] == "a" and row["updated_at"] == RECENT
    # Its archived copy is the older snapshot; a later run archives the newer one.
    assert {(r["key"], r["updated_at"]) for r in await _archived(platform, "user_key_stats/")} == {
        ("a", OLD),
        ("b", OLD),
    }


def test_the_partitions_command_archives_cold_analytics_rows(tmp_path: Path) -> None:
    import sqlite3

    env = cli_env(tmp_path)
    assert run_cli(env, "migrate").returncode == 0
    with sqlite3.connect(tmp_path / "typogram.sqlite3") as db:
        db.execute(
            "INSERT INTO user_trend VALUES (?, ?, 60, 95, 70, ?), (?, ?, 61, 96, 71, ?)",
            (USER, "1" * 32, OLD, USER, "2" * 32, RECENT),
        )
    dry = run_cli(env, "partitions", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert not (tmp_path / "archive" / "user_trend").exists()
    done = run_cli(env, "partitions")
    assert done.returncode == 0, done.stderr
    [path] = (tmp_path / "archive" / "user_trend").rglob("*.jsonl.gz")
    [line] = gzip.decompress(path.read_bytes()).splitlines()
    assert orjson.loads(line)["result_id"] == "1" * 32
    with sqlite3.connect(tmp_path / "typogram.sqlite3") as db:
        assert db.execute("SELECT result_id FROM user_trend").fetchall() == [("2" * 32,)]
