"""Move a month of old rows from a table to the archive port, then delete them.

One object per table and month: ``<table>/<YYYY-MM>.jsonl.gz``, one JSON
object a line. The object is written and read back (its line count must
match) before a single row is deleted, so a failure never loses data: the
job can simply run again, and it overwrites the same key. On MySQL the
partition maintenance drops the emptied monthly partition afterwards.
"""

from __future__ import annotations

import datetime as dt
import gzip
from dataclasses import dataclass

import orjson
from sqlalchemy import Table, and_, delete, func, select

from typogram.db.database import Database
from typogram.ports import Archive

CHUNK_ROWS = 5_000


@dataclass(frozen=True, slots=True)
class Month:
    year: int
    month: int

    @classmethod
    def of(cls, moment: dt.datetime) -> Month:
        return cls(moment.year, moment.month)

    def next(self) -> Month:
        return Month(self.year + self.month // 12, self.month % 12 + 1)

    def start_ms(self) -> int:
        start = dt.datetime(self.year, self.month, 1, tzinfo=dt.UTC)
        return int(start.timestamp() * 1000)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"


def archive_key(table: Table, month: Month) -> str:
    return f"{table.name}/{month}.jsonl.gz"


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
            # Column names are str subclasses (quoted_name), which orjson needs told about.
            lines.extend(
                orjson.dumps(row._asdict(), option=orjson.OPT_NON_STR_KEYS) for row in partition
            )
    if len(lines) != expected:
        raise RuntimeError(f"{table.name} {month}: read {len(lines)} rows, counted {expected}")
    key = archive_key(table, month)
    await archive.put(key, gzip.compress(b"\n".join(lines) + b"\n"))
    stored = await archive.get(key)
    if stored is None or gzip.decompress(stored).count(b"\n") != expected:
        raise RuntimeError(f"archive object {key} does not hold the {expected} rows written")
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
    month = Month.of(dt.datetime.fromtimestamp(oldest / 1000, tz=dt.UTC))
    limit = Month.of(cutoff)
    while (month.year, month.month) < (limit.year, limit.month):
        moved[str(month)] = await archive_month(db, archive, table, month)
        month = month.next()
    return moved
