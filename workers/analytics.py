"""``analytics`` group (``keystroke-analytics``): per-user key, bigram, confusion and
trend statistics in SQL.

The ``analytics.result`` events of a batch (``workers.runtime``; a retry is a
batch of one) are applied in one transaction together with their
``user_trend`` rows, which double as the "already applied" marker: a replay
finds the row and changes nothing, and a result repeated inside a batch
counts once. Each table gets one upsert per batch that does the folding
itself: a test's row is inserted, or, when the user has the key (bigram,
confusion) already, added to it in the database (counts summed, latency
smoothed by ``typogram.insights.smooth``'s formula, ``ALPHA`` weighting the
test), so nothing is read back first and concurrent workers cannot lose
each other's updates (the row is locked while it changes). A batch's rows
go in event order per row key (sorted by key, stably: the same lock order
in every worker), so repeated keys fold exactly as one event after another.
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
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from sqlalchemy import Table, bindparam, case, literal_column, select
from sqlalchemy.dialects.mysql import insert as mysql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError

from typogram import keys, topics
from typogram.db.schema import user_bigram_stats, user_confusions, user_key_stats, user_trend
from typogram.insights import ALPHA
from typogram.ports import Event
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
        if event.type == topics.ANALYTICS_RESULT:
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
        await _write(
            conn,
            user_key_stats,
            [row for u, data in fresh for row in key_rows(u, data, now)],
            ("user_id", "key"),
        )
        await _write(
            conn,
            user_bigram_stats,
            [row for u, data in fresh for row in bigram_rows(u, data, now)],
            ("user_id", "bigram"),
        )
        await _write(
            conn, user_confusions, confusion_rows(fresh, now), ("user_id", "expected", "pressed")
        )
    return {u for u, _ in fresh}


# Literals, not bound parameters: the MySQL driver sends an executemany as one multi-row
# INSERT and copies the ON DUPLICATE KEY UPDATE clause as it is.
_ZERO: Any = literal_column("0")
_WEIGHT_NEW: Any = literal_column(repr(ALPHA))
_WEIGHT_OLD: Any = literal_column(repr(1 - ALPHA))

Assignments = list[tuple[str, Any]]


def _smoothed(previous: Any, test_mean: Any) -> Any:
    """``smooth(previous, test_mean)`` for a row that has a previous mean, in SQL."""
    return _WEIGHT_NEW * test_mean + _WEIGHT_OLD * previous


def _key_fold(old: Any, new: Any) -> Assignments:
    # Latency before samples: MySQL assigns left to right, and it needs the old count.
    return [
        ("hits", old.hits + new.hits),
        ("misses", old.misses + new.misses),
        (
            "latency_ms",
            case(
                (new.samples == _ZERO, old.latency_ms),  # no samples in this test: kept
                (old.samples == _ZERO, new.latency_ms),  # the first test with samples
                else_=_smoothed(old.latency_ms, new.latency_ms),
            ),
        ),
        ("samples", old.samples + new.samples),
        ("updated_at", new.updated_at),
    ]


def _bigram_fold(old: Any, new: Any) -> Assignments:
    return [
        ("latency_ms", _smoothed(old.latency_ms, new.latency_ms)),
        ("samples", old.samples + new.samples),
        ("updated_at", new.updated_at),
    ]


def _confusion_fold(old: Any, new: Any) -> Assignments:
    return [("count", old.count + new.count), ("updated_at", new.updated_at)]


def _folding_upsert(table: Table, dialect: str, fold: Callable[[Any, Any], Assignments]) -> Any:
    """INSERT of one test's rows that, on a primary-key clash, folds the row into the
    stored one (``fold(stored, inserted)``; ``created_at`` stays the first)."""
    if dialect == "mysql":
        mysql = mysql_insert(table)
        return mysql.on_duplicate_key_update(fold(table.c, mysql.inserted))
    lite = sqlite_insert(table)
    return lite.on_conflict_do_update(
        index_elements=list(table.primary_key.columns),
        set_=dict(fold(table.c, lite.excluded)),
    )


# Built once (building a statement per event costs more than the round trip it saves).
_UPSERTS = {
    (table.name, dialect): _folding_upsert(table, dialect, fold)
    for table, fold in (
        (user_key_stats, _key_fold),
        (user_bigram_stats, _bigram_fold),
        (user_confusions, _confusion_fold),
    )
    for dialect in ("mysql", "sqlite")
}
_TRENDS_AMONG = select(user_trend.c.user_id, user_trend.c.result_id).where(
    user_trend.c.user_id.in_(bindparam("users", expanding=True)),
    user_trend.c.result_id.in_(bindparam("results", expanding=True)),
)
_TREND_INSERT = user_trend.insert()


async def _write(
    conn: AsyncConnection, table: Table, rows: list[dict[str, Any]], key: tuple[str, ...]
) -> None:
    """The batch's rows for ``table`` in ONE folding upsert (executemany of one statement,
    sent as one multi-row INSERT), ordered by ``key`` and, per key, by event."""
    if rows:
        rows.sort(key=itemgetter(*key))  # stable: a key's rows keep their event order
        await conn.execute(_UPSERTS[table.name, conn.dialect.name], rows)


def _fits(key: Any) -> bool:
    return isinstance(key, str) and 0 < len(key) <= MAX_CHAR


def key_rows(user: str, data: Mapping[str, Any], now: int) -> list[dict[str, Any]]:
    """One test's ``user_key_stats`` rows: its counts and mean latency per key (0.0 and no
    samples for a key it has no timing for)."""
    rows = []
    for key, s in (data.get("keys") or {}).items():
        if not _fits(key):
            continue
        samples, total = int(s.get("samples", 0)), int(s.get("total_ms", 0))
        rows.append(
            {"user_id": user, "key": key, "hits": int(s.get("hits", 0)),
             "misses": int(s.get("misses", 0)), "samples": samples,
             "latency_ms": total / samples if samples else 0.0,
             "created_at": now, "updated_at": now}
        )  # fmt: skip
    return rows


def bigram_rows(user: str, data: Mapping[str, Any], now: int) -> list[dict[str, Any]]:
    """One test's ``user_bigram_stats`` rows (bigrams it has samples of)."""
    rows = []
    for bigram, s in (data.get("bigrams") or {}).items():
        samples = int(s.get("samples", 0))
        if _fits(bigram) and samples > 0:
            rows.append(
                {"user_id": user, "bigram": bigram, "samples": samples,
                 "latency_ms": int(s.get("total_ms", 0)) / samples,
                 "created_at": now, "updated_at": now}
            )  # fmt: skip
    return rows


def confusion_rows(fresh: list[tuple[str, Mapping[str, Any]]], now: int) -> list[dict[str, Any]]:
    """The batch's ``user_confusions`` counts, summed per (user, expected, pressed)."""
    counts: dict[tuple[str, str, str], int] = {}
    for user, data in fresh:
        for expected, pressed in (data.get("confusions") or {}).items():
            if not (_fits(expected) and isinstance(pressed, Mapping)):
                continue
            for key, count in pressed.items():
                if _fits(key):
                    counts[user, expected, key] = counts.get((user, expected, key), 0) + int(count)
    return [
        {"user_id": u, "expected": e, "pressed": p, "count": n,
         "created_at": now, "updated_at": now}
        for (u, e, p), n in counts.items()
    ]  # fmt: skip


GROUP = Group(
    name="analytics",
    topics=(topics.KEYSTROKE_ANALYTICS,),
    handle=handle,
    handle_batch=handle_batch,
)
