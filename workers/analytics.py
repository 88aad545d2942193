"""``analytics`` group (``keystroke-analytics``): per-user key, bigram, confusion and
trend statistics in SQL.

One ``analytics.result`` is applied in one transaction together with its
``user_trend`` row, which doubles as the "already applied" marker: a replay
finds the row and changes nothing. After the commit the user's cached
insights (``keys.insights``) are dropped so the next read sees the result.
Every row carries ``created_at``/``updated_at``; insights read the last
``HOT_DAYS`` of trend, and rows not updated for that long are the archiver's
(``typogram.db.archiver.archive_analytics``). A trend row archived with its
result is no longer a marker: an event replayed more than ``HOT_DAYS`` after
its result (far past any topic's retention) would be applied again.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sqlalchemy import Table, select
from sqlalchemy.dialects.mysql import insert as mysql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError

from typogram import keys, topics
from typogram.db.schema import user_bigram_stats, user_confusions, user_key_stats, user_trend
from typogram.insights import smooth
from typogram.ports import Event
from workers import pipeline_events as pe
from workers.runtime import Group

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

    from typogram.platform import Platform

MAX_CHAR = 8  # a stored key or bigram is at most this many characters


async def handle(platform: Platform, topic: str, event: Event) -> None:
    if event.type != pe.ANALYTICS_RESULT:
        return
    data = event.data
    user_id, result_id = str(data["user_id"]), str(data["result_id"])
    now = int(time.time() * 1000)
    try:
        applied = await _apply(platform, user_id, result_id, data, now)
    except IntegrityError:
        return  # a concurrent delivery of this result applied it first
    if applied:
        await platform.cache.delete(keys.insights(user_id))


async def _apply(platform: Platform, user_id: str, result_id: str, data: Any, now: int) -> bool:
    async with platform.db.write() as conn:
        seen = await conn.execute(
            select(user_trend.c.result_id).where(
                user_trend.c.user_id == user_id, user_trend.c.result_id == result_id
            )
        )
        if seen.first() is not None:
            return False
        await conn.execute(
            user_trend.insert().values(
                user_id=user_id,
                result_id=result_id,
                wpm=float(data["wpm"]),
                accuracy=float(data["accuracy"]),
                consistency=float(data["consistency"]),
                created_at=int(data["created_at"]),
            )
        )
        await _keys(conn, user_id, data.get("keys") or {}, now)
        await _bigrams(conn, user_id, data.get("bigrams") or {}, now)
        await _confusions(conn, user_id, data.get("confusions") or {}, now)
    return True


def _upsert(table: Table, dialect: str) -> Any:
    """INSERT of whole rows that, on a primary-key clash, overwrites every column but the
    key and ``created_at`` (a changed row keeps when it was first stored)."""
    changing = [c.name for c in table.columns if not c.primary_key and c.name != "created_at"]
    if dialect == "mysql":
        mysql = mysql_insert(table)
        return mysql.on_duplicate_key_update({c: mysql.inserted[c] for c in changing})
    lite = sqlite_insert(table)
    return lite.on_conflict_do_update(
        index_elements=list(table.primary_key.columns),
        set_={c: lite.excluded[c] for c in changing},
    )


# Built once (building a statement per event costs more than the round trip it saves).
_UPSERTS = {
    (table.name, dialect): _upsert(table, dialect)
    for table in (user_key_stats, user_bigram_stats, user_confusions)
    for dialect in ("mysql", "sqlite")
}


async def _write(conn: AsyncConnection, table: Table, rows: list[dict[str, Any]]) -> None:
    """New and changed rows (whole rows) in ONE upsert: executemany of one statement,
    sent as one multi-row INSERT; an UPDATE per row was a round trip per key or bigram."""
    if rows:
        await conn.execute(_UPSERTS[table.name, conn.dialect.name], rows)


def _fits(key: Any) -> bool:
    return isinstance(key, str) and 0 < len(key) <= MAX_CHAR


async def _keys(conn: AsyncConnection, user_id: str, stats: Mapping[str, Any], now: int) -> None:
    t = user_key_stats
    wanted = {k: v for k, v in stats.items() if _fits(k)}
    if not wanted:
        return
    found = await conn.execute(select(t).where(t.c.user_id == user_id, t.c.key.in_(wanted)))
    rows = {row["key"]: row for row in found.mappings()}
    out: list[dict[str, Any]] = []
    for key, s in wanted.items():
        hits, misses = int(s.get("hits", 0)), int(s.get("misses", 0))
        samples, total = int(s.get("samples", 0)), int(s.get("total_ms", 0))
        old = rows.get(key)
        mean = total / samples if samples else None
        if old is None:
            latency = mean or 0.0
        else:
            latency = float(old["latency_ms"])
            if mean is not None:
                latency = smooth(latency if old["samples"] else None, mean)
            hits, misses = old["hits"] + hits, old["misses"] + misses
            samples = old["samples"] + samples
        out.append(
            {"user_id": user_id, "key": key, "hits": hits, "misses": misses,
             "samples": samples, "latency_ms": latency, "created_at": now, "updated_at": now}
        )  # fmt: skip
    await _write(conn, t, out)


async def _bigrams(conn: AsyncConnection, user_id: str, stats: Mapping[str, Any], now: int) -> None:
    t = user_bigram_stats
    wanted = {k: v for k, v in stats.items() if _fits(k) and int(v.get("samples", 0)) > 0}
    if not wanted:
        return
    found = await conn.execute(select(t).where(t.c.user_id == user_id, t.c.bigram.in_(wanted)))
    rows = {row["bigram"]: row for row in found.mappings()}
    out: list[dict[str, Any]] = []
    for bigram, s in wanted.items():
        samples = int(s["samples"])
        latency = int(s.get("total_ms", 0)) / samples
        old = rows.get(bigram)
        if old is not None:
            samples, latency = old["samples"] + samples, smooth(float(old["latency_ms"]), latency)
        out.append(
            {"user_id": user_id, "bigram": bigram, "samples": samples, "latency_ms": latency,
             "created_at": now, "updated_at": now}
        )  # fmt: skip
    await _write(conn, t, out)


async def _confusions(
    conn: AsyncConnection, user_id: str, stats: Mapping[str, Any], now: int
) -> None:
    t = user_confusions
    pairs = {
        (expected, key): int(count)
        for expected, pressed in stats.items()
        if _fits(expected) and isinstance(pressed, Mapping)
        for key, count in pressed.items()
        if _fits(key)
    }
    if not pairs:
        return
    found = await conn.execute(
        select(t.c.expected, t.c.pressed, t.c.count).where(
            t.c.user_id == user_id, t.c.expected.in_({e for e, _ in pairs})
        )
    )
    old = {(row[0], row[1]): int(row[2]) for row in found}
    out = [
        {"user_id": user_id, "expected": e, "pressed": p, "count": old.get((e, p), 0) + n,
         "created_at": now, "updated_at": now}
        for (e, p), n in pairs.items()
    ]  # fmt: skip
    await _write(conn, t, out)


GROUP = Group(name="analytics", topics=(topics.KEYSTROKE_ANALYTICS,), handle=handle)
