"""Move old rows from a table to the archive port, then delete them.

Every archive object is gzip'd JSON lines, one row (column name → value) a
line, and every object goes through ``store``: written, read back and
compared byte for byte before a single row is deleted. A failure at any
point leaves the rows in place, and running the job again is always safe.

Two jobs share that path:

1. **Months** (``archive_month``, ``archive_older_than``) of the monthly
   partitioned tables: ``<table>/<YYYY-MM>.jsonl.gz``, every row whose
   ``created_at`` falls in that month. A rerun overwrites the same key. On
   MySQL the partition maintenance drops the emptied partition afterwards.
2. **Cold rows** (``archive_cold``, ``archive_analytics``) of the analytics
   tables, which are keyed by user rather than partitioned: rows whose stamp
   (``created_at`` for ``user_trend``, ``updated_at`` for the per-key,
   bigram and confusion counters) is older than the cutoff, ``batch_rows``
   at a time in primary-key order. Each batch is one object
   ``<table>/<YYYY-MM>/<digest>.jsonl.gz``: the month of the newest stamp in
   it and a digest of its content, so a rerun that finds the same rows
   writes the same key again. Only rows still cold are deleted, matched by
   primary key.

3. **Expiry** (``expire_cold_analytics``): the strategy keeps analytics hot
   for 90 days (in the database) and cold for a year (in the archive); an
   analytics object whose month ended more than ``cold_days`` ago holds only
   rows older than that, and is deleted.

Reading cold objects: a row is identified by its primary key and
``created_at``. The same row can appear in two objects (a crash between the
write and the delete, then a rerun whose batch starts elsewhere; or a
counter updated between the two); keep the one with the newest
``updated_at``. A counter archived and then typed again starts a new row
with a new ``created_at``: the two count separate periods and add up.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Column, ColumnElement, Row, Table, and_, delete, func, or_, select, tuple_

from typogram.db.database import Database
from typogram.db.schema import user_bigram_stats, user_confusions, user_key_stats, user_trend
from typogram.insights import HOT_DAYS
from typogram.ports import Archive

CHUNK_ROWS = 5_000  # rows fetched per round trip while a month is read
BATCH_ROWS = 1_000  # rows per cold-row object (and per delete statement)
DAY_MS = 86_400_000

# Analytics tables and the column that says when a row was last touched.
ANALYTICS_STAMPS: tuple[tuple[Table, str], ...] = (
    (user_key_stats, "updated_at"),
    (user_bigram_stats, "updated_at"),
    (user_confusions, "updated_at"),
    (user_trend, "created_at"),
)


@dataclass(frozen=True, slots=True)
class Month:
    year: int
    month: int

    @classmethod
    def of(cls, moment: dt.datetime) -> Month:
        return cls(moment.year, moment.month)

    @classmethod
    def of_ms(cls, epoch_ms: int) -> Month:
        return cls.of(dt.datetime.fromtimestamp(epoch_ms / 1000, tz=dt.UTC))

    def next(self) -> Month:
        return Month(self.year + self.month // 12, self.month % 12 + 1)

    def start_ms(self) -> int:
        start = dt.datetime(self.year, self.month, 1, tzinfo=dt.UTC)
        return int(start.timestamp() * 1000)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"


def archive_key(table: Table, month: Month) -> str:
    return f"{table.name}/{month}.jsonl.gz"


def encode(row: Row[Any]) -> bytes:
    """One archive line."""
    # Column names are str subclasses (quoted_name), which orjson needs told about.
    return orjson.dumps(row._asdict(), option=orjson.OPT_NON_STR_KEYS)


async def store(archive: Archive, key: str, lines: Sequence[bytes]) -> None:
    """Write ``lines`` as one object and read it back; raises unless it holds them exactly."""
    body = b"\n".join(lines) + b"\n"
    await archive.put(key, gzip.compress(body))
    stored = await archive.get(key)
    if stored is None or gzip.decompress(stored) != body:
        raise RuntimeError(f"archive object {key} does not hold the {len(lines)} rows written")


async def archive_month(db: Database, archive: Archive, table: Table, month: Month) -> int:
    """Archive and delete ``table``'s rows whose ``created_at`` falls in ``month``.

    Returns the number of rows moved (0 writes nothing). Raises when the
    read-back does not match, leaving every row in place.
    """
    low, high = month.start_ms(), month.next().start_ms()
    in_month = and_(table.c.created_at >= low, table.c.created_at < high)
    async with db.read(primary=True) as conn:
        expected = int(
            (
                await conn.execute(select(func.count()).select_from(table).where(in_month))
            ).scalar_one()
        )
        if expected == 0:
            return 0
        lines: list[bytes] = []
        key_columns = [table.c.created_at, *table.primary_key.columns]
        result = await conn.stream(select(table).where(in_month).order_by(*key_columns))
        async for partition in result.partitions(CHUNK_ROWS):
            lines.extend(encode(row) for row in partition)
    if len(lines) != expected:
        raise RuntimeError(f"{table.name} {month}: read {len(lines)} rows, counted {expected}")
    await store(archive, archive_key(table, month), lines)
    async with db.write() as conn:
        await conn.execute(delete(table).where(in_month))
    return expected


async def archive_older_than(
    db: Database, archive: Archive, table: Table, cutoff: dt.datetime
) -> dict[str, int]:
    """Archive every whole month that ends before ``cutoff``; returns rows per month."""
    async with db.read(primary=True) as conn:
        oldest = (await conn.execute(select(func.min(table.c.created_at)))).scalar_one()
    moved: dict[str, int] = {}
    if oldest is None:
        return moved
    month = Month.of_ms(oldest)
    limit = Month.of(cutoff)
    while (month.year, month.month) < (limit.year, limit.month):
        moved[str(month)] = await archive_month(db, archive, table, month)
        month = month.next()
    return moved


def _after(columns: Sequence[Column[Any]], values: Sequence[Any]) -> ColumnElement[bool]:
    """Rows after ``values`` in ``columns`` order, spelled out so every database ranges
    over the primary key with it: ``a > x OR (a = x AND b > y) OR …``."""
    terms = []
    for i, column in enumerate(columns):
        equal = [c == v for c, v in zip(columns[:i], values[:i], strict=True)]
        terms.append(and_(*equal, column > values[i]))
    return or_(*terms)


def cold_key(table: Table, newest_ms: int, lines: Iterable[bytes]) -> str:
    """The object for one batch: the same rows always give the same key."""
    digest = hashlib.sha256(b"\n".join(lines)).hexdigest()[:24]
    return f"{table.name}/{Month.of_ms(newest_ms)}/{digest}.jsonl.gz"


async def archive_cold(
    db: Database,
    archive: Archive,
    table: Table,
    stamp: str,
    cutoff_ms: int,
    *,
    batch_rows: int = BATCH_ROWS,
) -> int:
    """Move ``table``'s rows whose ``stamp`` column is below ``cutoff_ms``, batch by batch.

    Each batch is stored (``store``) before its rows are deleted, in a
    transaction of its own, and only while they are still cold: a row updated
    meanwhile stays (its archived copy is superseded later). Returns the rows
    deleted.

    One race is accepted: on MySQL an analytics transaction that read a
    counter just before this delete and updates it just after finds no row,
    so that one test's counts for a key untouched for ``HOT_DAYS`` are lost
    (the key's next test starts its row again). SQLite serializes writers,
    so there it cannot happen.
    """
    if batch_rows < 1:
        raise ValueError("batch_rows must be at least 1")
    primary_key = list(table.primary_key.columns)
    cold = table.c[stamp] < cutoff_ms
    after: tuple[Any, ...] | None = None
    deleted = 0
    while True:
        query = select(table).where(cold)
        if after is not None:
            query = query.where(_after(primary_key, after))
        async with db.read(primary=True) as conn:
            rows = (await conn.execute(query.order_by(*primary_key).limit(batch_rows))).all()
        if not rows:
            return deleted
        lines = [encode(row) for row in rows]
        newest = max(int(row._mapping[stamp]) for row in rows)
        await store(archive, cold_key(table, newest, lines), lines)
        keys = [tuple(row._mapping[c.name] for c in primary_key) for row in rows]
        async with db.write() as conn:
            result = await conn.execute(delete(table).where(cold, tuple_(*primary_key).in_(keys)))
        deleted += int(result.rowcount)
        if len(rows) < batch_rows:
            return deleted
        after = keys[-1]


def object_month(key: str) -> Month | None:
    """The month of a cold object's key (``<table>/<YYYY-MM>/<digest>.jsonl.gz``), if it is one."""
    parts = key.split("/")
    if len(parts) != 3 or len(parts[1]) != 7 or parts[1][4] != "-":
        return None
    year, month = parts[1][:4], parts[1][5:]
    if not (year.isdigit() and month.isdigit() and 1 <= int(month) <= 12):
        return None
    return Month(int(year), int(month))


async def expire_cold_analytics(
    archive: Archive, now_ms: int, *, cold_days: int, dry_run: bool = False
) -> dict[str, int]:
    """Delete analytics objects whose every row is older than ``cold_days``; per table, how many.

    An object's month is that of its newest row, so once the month has ended
    ``cold_days`` ago nothing in it is younger. Keys of any other shape are
    left alone.
    """
    if cold_days < 1:
        raise ValueError("cold_days must be at least 1")
    cutoff = now_ms - cold_days * DAY_MS
    expired: dict[str, int] = {}
    for table, _ in ANALYTICS_STAMPS:
        expired[table.name] = 0
        for key in await archive.list(f"{table.name}/"):
            month = object_month(key)
            if month is None or month.next().start_ms() > cutoff:
                continue
            if not dry_run:
                await archive.delete(key)
            expired[table.name] += 1
    return expired


async def count_cold(db: Database, table: Table, stamp: str, cutoff_ms: int) -> int:
    """How many rows ``archive_cold`` would move now (for ``--dry-run``)."""
    async with db.read(primary=True) as conn:
        query = select(func.count()).select_from(table).where(table.c[stamp] < cutoff_ms)
        return int((await conn.execute(query)).scalar_one())


async def archive_analytics(
    db: Database,
    archive: Archive,
    now_ms: int,
    *,
    hot_days: int = HOT_DAYS,
    batch_rows: int = BATCH_ROWS,
    dry_run: bool = False,
) -> dict[str, int]:
    """Archive the analytics rows untouched for ``hot_days``; rows moved (or, dry, due) per table.

    What ``typogram partitions`` runs after the months. Insights read only
    the last ``HOT_DAYS`` (``typogram.insights`` rule 6), so nothing they
    show is moved.
    """
    cutoff = now_ms - hot_days * DAY_MS
    moved: dict[str, int] = {}
    for table, stamp in ANALYTICS_STAMPS:
        if dry_run:
            moved[table.name] = await count_cold(db, table, stamp, cutoff)
        else:
            moved[table.name] = await archive_cold(
                db, archive, table, stamp, cutoff, batch_rows=batch_rows
            )
    return moved
