"""The pure parts of ``typogram.db.archiver``: keys, keyset order, the read-back check."""

from __future__ import annotations

import gzip
import itertools
import sqlite3

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, select
from sqlalchemy.dialects import sqlite

from typogram.db.archiver import (
    ANALYTICS_STAMPS,
    DAY_MS,
    Month,
    _after,
    cold_key,
    store,
)
from typogram.db.schema import user_trend
from typogram.insights import HOT_DAYS


class _Archive:
    """An in-memory archive; ``corrupt`` makes every read return other bytes."""

    def __init__(self, *, corrupt: bool = False) -> None:
        self.objects: dict[str, bytes] = {}
        self.corrupt = corrupt

    async def put(self, key: str, data: bytes) -> None:
        self.objects[key] = data

    async def get(self, key: str) -> bytes | None:
        data = self.objects.get(key)
        return gzip.compress(b"{}\n") if self.corrupt and data is not None else data


def test_every_analytics_table_has_its_stamp_and_a_primary_key() -> None:
    for table, stamp in ANALYTICS_STAMPS:
        assert stamp in table.c and table.primary_key.columns, table.name
    assert {t.name for t, _ in ANALYTICS_STAMPS} == {
        "user_key_stats", "user_bigram_stats", "user_confusions", "user_trend",
    }  # fmt: skip
    assert HOT_DAYS == 90


def test_a_batch_key_depends_on_its_rows_only() -> None:
    newest = Month(2026, 3).start_ms() + 5 * DAY_MS
    lines = [b'{"a":1}', b'{"a":2}']
    key = cold_key(user_trend, newest, lines)
    assert key == cold_key(user_trend, newest, list(lines))
    assert key.startswith("user_trend/2026-03/") and key.endswith(".jsonl.gz")
    assert cold_key(user_trend, newest, lines[:1]) != key
    assert Month.of_ms(Month(2026, 12).start_ms() - 1) == Month(2026, 11)


def test_after_is_the_keyset_order_of_the_primary_key() -> None:
    table = Table("t", MetaData(), *(Column(n, Integer, primary_key=True) for n in "abc"))
    rows = list(itertools.product(range(3), repeat=3))
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE t (a INTEGER, b INTEGER, c INTEGER, PRIMARY KEY (a, b, c))")
    db.executemany("INSERT INTO t VALUES (?, ?, ?)", rows)
    columns = list(table.primary_key.columns)
    for values in [(0, 0, 0), (1, 2, 0), (2, 2, 2), (1, 0, 2)]:
        query = select(table).where(_after(columns, values)).order_by(*columns)
        sql = str(query.compile(dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True}))
        assert db.execute(sql).fetchall() == [r for r in rows if r > values], values


async def test_store_reads_back_what_it_wrote() -> None:
    archive = _Archive()
    await store(archive, "t/x.jsonl.gz", [b'{"a":1}', b'{"a":2}'])
    assert gzip.decompress(archive.objects["t/x.jsonl.gz"]) == b'{"a":1}\n{"a":2}\n'
    with pytest.raises(RuntimeError, match="does not hold"):
        await store(_Archive(corrupt=True), "t/x.jsonl.gz", [b'{"a":1}'])
