"""``analytics`` group (``keystroke-analytics``): per-user key, bigram, confusion and
trend statistics in SQL.

The ``analytics.result`` events of a batch (``workers.runtime``; a retry is a
batch of one) are applied in one transaction together with their
``user_trend`` rows, which double as the "already applied" marker: a replay
finds the row and changes nothing, and a result repeated inside a batch
counts once. The batch's new and changed key, bigram and confusion rows are
folded in memory in event order (the same arithmetic, in the same order, as
applying the events one after another) and written as one upsert per table.
If a concurrent delivery applied one of the results first (the trend insert
clashes), the batch is rolled back and its results are applied one by one.
After the commit the users' ``keys.insights_version`` gets a fresh token,
so cached insights built before (``rest.insights``) are rebuilt on the next
read. Every row carries
``created_at``/``updated_at``; insights read the last ``HOT_DAYS`` of trend,
and rows not updated for that long are the archiver's
(``typogram.db.archiver.archive_analytics``). A trend row archived with its
result is no longer a marker: an event replayed more than ``HOT_DAYS`` after
its result (far past any topic's retention) would be applied again.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import Table, bindparam, select
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

# Outlives any cached insights (``rest.insights.INSIGHTS_TTL_S``, 1 h): a token that
# expired only makes the next read rebuild.
INSIGHTS_VERSION_TTL_S = 2 * 3600
MAX_CHAR = 8  # a stored key or bigram is at most this many characters

# (user_id, result_id) -> the event's data, in event order.
_Results = dict[tuple[str, str], Mapping[str, Any]]


async def handle(platform: Platform, topic: str, event: Event) -> None:
    await handle_batch(platform, topic, [event])


async def handle_batch(platform: Platform, topic: str, events: Sequence[Event]) -> None:
    results: _Results = {}
    for event in events:
        if event.type == pe.ANALYTICS_RESULT:
            data = event.data
            results.setdefault((str(data["user_id"]), str(data["result_id"])), data)
    if not results:
        return
    now = int(time.time() * 1000)
    try:
        users = await _apply(platform, results, now)
    except IntegrityError:
        # A concurrent delivery applied one of them first: the rest still count.
        users = set()
        if len(results) > 1:
            for pair, data in results.items():
                try:
                    users |= await _apply(platform, {pair: data}, now)
                except IntegrityError:
                    continue  # this one was the concurrent delivery's
    if users:
        token = uuid.uuid4().hex.encode()
        versions = {keys.insights_version(user): token for user in users}
        await platform.cache.write_batch({}, versions, ttl=INSIGHTS_VERSION_TTL_S)


async def _apply(platform: Platform, results: _Results, now: int) -> set[str]:
    """One transaction; returns the users whose results were new."""
    async with platform.db.write() as conn:
        seen = await conn.execute(
            _TRENDS_AMONG,
            {"users": list({u for u, _ in results}), "results": [r for _, r in results]},
        )
        applied = {(str(row[0]), str(row[1])) for row in seen}
        fresh = [(u, data) for (u, r), data in results.items() if (u, r) not in applied]
        if not fresh:
            return set()
        await conn.execute(
            _TREND_INSERT,
            [
                {"user_id": u, "result_id": str(data["result_id"]), "wpm": float(data["wpm"]),
                 "accuracy": float(data["accuracy"]),
                 "consistency": float(data["consistency"]),
                 "created_at": int(data["created_at"])}
                for u, data in fresh
            ],
        )  # fmt: skip
        keys_of = [
            (u, {k: s for k, s in (data.get("keys") or {}).items() if _fits(k)})
            for u, data in fresh
        ]
        bigrams_of = [
            (u, {b: s for b, s in (data.get("bigrams") or {}).items()
                 if _fits(b) and int(s.get("samples", 0)) > 0})
            for u, data in fresh
        ]  # fmt: skip
        await _fold(conn, user_key_stats, "key", keys_of, key_row, now)
        await _fold(conn, user_bigram_stats, "bigram", bigrams_of, bigram_row, now)
        await _confusions(conn, fresh, now)
    return {u for u, _ in fresh}


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


def _among(table: Table, column: str) -> Any:
    """The stored rows of some users whose ``column`` is among some values (a superset of
    the (user, value) pairs asked for: callers pick theirs out)."""
    return select(table).where(
        table.c.user_id.in_(bindparam("users", expanding=True)),
        table.c[column].in_(bindparam("values", expanding=True)),
    )


# Built once (building a statement per event costs more than the round trip it saves).
_UPSERTS = {
    (table.name, dialect): _upsert(table, dialect)
    for table in (user_key_stats, user_bigram_stats, user_confusions)
    for dialect in ("mysql", "sqlite")
}
_TRENDS_AMONG = select(user_trend.c.user_id, user_trend.c.result_id).where(
    user_trend.c.user_id.in_(bindparam("users", expanding=True)),
    user_trend.c.result_id.in_(bindparam("results", expanding=True)),
)
_TREND_INSERT = user_trend.insert()
_AMONG = {
    table.name: _among(table, column)
    for table, column in (
        (user_key_stats, "key"),
        (user_bigram_stats, "bigram"),
        (user_confusions, "expected"),
    )
}


async def _write(conn: AsyncConnection, table: Table, rows: list[dict[str, Any]]) -> None:
    """New and changed rows (whole rows) in ONE upsert: executemany of one statement,
    sent as one multi-row INSERT; an UPDATE per row was a round trip per key or bigram."""
    if rows:
        await conn.execute(_UPSERTS[table.name, conn.dialect.name], rows)


async def _stored(
    conn: AsyncConnection, among: Any, column: str, pairs: set[tuple[str, str]]
) -> dict[tuple[str, str], Any]:
    """The stored rows of ``pairs`` (user, ``column`` value), by pair."""
    found = await conn.execute(
        among, {"users": list({u for u, _ in pairs}), "values": list({v for _, v in pairs})}
    )
    return {(row["user_id"], row[column]): row for row in found.mappings()}


def _fits(key: Any) -> bool:
    return isinstance(key, str) and 0 < len(key) <= MAX_CHAR


def key_row(old: Mapping[str, Any] | None, s: Mapping[str, Any]) -> dict[str, Any]:
    """One test's statistics of a key folded into its row (``old`` None: no row yet)."""
    hits, misses = int(s.get("hits", 0)), int(s.get("misses", 0))
    samples, total = int(s.get("samples", 0)), int(s.get("total_ms", 0))
    mean = total / samples if samples else None
    if old is None:
        return {"hits": hits, "misses": misses, "samples": samples, "latency_ms": mean or 0.0}
    latency = float(old["latency_ms"])
    if mean is not None:
        latency = smooth(latency if old["samples"] else None, mean)
    return {"hits": old["hits"] + hits, "misses": old["misses"] + misses,
            "samples": old["samples"] + samples, "latency_ms": latency}  # fmt: skip


def bigram_row(old: Mapping[str, Any] | None, s: Mapping[str, Any]) -> dict[str, Any]:
    """One test's statistics of a bigram (``samples`` > 0) folded into its row."""
    samples = int(s["samples"])
    latency = int(s.get("total_ms", 0)) / samples
    if old is None:
        return {"samples": samples, "latency_ms": latency}
    return {
        "samples": old["samples"] + samples,
        "latency_ms": smooth(float(old["latency_ms"]), latency),
    }


async def _fold(
    conn: AsyncConnection,
    table: Table,
    column: str,
    per_test: list[tuple[str, dict[str, Any]]],
    fold: Callable[[Mapping[str, Any] | None, Mapping[str, Any]], dict[str, Any]],
    now: int,
) -> None:
    """Each test's statistics per (user, ``column`` value) folded into the stored rows, in
    event order (each test into the row the one before left), written in one upsert."""
    pairs = {(u, v) for u, stats in per_test for v in stats}
    if not pairs:
        return
    stored = await _stored(conn, _AMONG[table.name], column, pairs)
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for u, stats in per_test:
        for v, s in stats.items():
            rows[u, v] = fold(rows.get((u, v), stored.get((u, v))), s)
    await _write(
        conn,
        table,
        [{"user_id": u, column: v, **row, "created_at": now, "updated_at": now}
         for (u, v), row in rows.items()],
    )  # fmt: skip


async def _confusions(
    conn: AsyncConnection, fresh: list[tuple[str, Mapping[str, Any]]], now: int
) -> None:
    per_test = [
        (u, expected, key, int(count))
        for u, data in fresh
        for expected, pressed in (data.get("confusions") or {}).items()
        if _fits(expected) and isinstance(pressed, Mapping)
        for key, count in pressed.items()
        if _fits(key)
    ]
    if not per_test:
        return
    found = await conn.execute(
        _AMONG[user_confusions.name],
        {"users": list({u for u, *_ in per_test}), "values": list({e for _, e, _, _ in per_test})},
    )
    counts = {(row["user_id"], row["expected"], row["pressed"]): int(row["count"])
              for row in found.mappings()}  # fmt: skip
    touched: dict[tuple[str, str, str], None] = {}
    for u, e, p, n in per_test:
        counts[u, e, p] = counts.get((u, e, p), 0) + n
        touched[u, e, p] = None
    await _write(
        conn,
        user_confusions,
        [{"user_id": u, "expected": e, "pressed": p, "count": counts[u, e, p],
          "created_at": now, "updated_at": now}
         for u, e, p in touched],
    )  # fmt: skip


GROUP = Group(
    name="analytics",
    topics=(topics.KEYSTROKE_ANALYTICS,),
    handle=handle,
    handle_batch=handle_batch,
)
