"""Query latency per statement family (``select users``, ``insert test_results``…).

``QueryTimes.attach(engine, target)`` listens to an engine's cursor events:
the time from ``before_cursor_execute`` to ``after_cursor_execute`` (the
round trip, as the event loop waits for it) lands in a lock-free histogram
per (family, target). The family is the statement's verb and first table,
worked out once per distinct SQL string (SQLAlchemy caches compiled
statements, so there are few) and remembered in a bounded dict.
"""

from __future__ import annotations

import re
import time
from typing import Any, Final

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from typogram.metrics import LATENCY_BUCKETS, LockFreeHistogram

FAMILY_CACHE_MAX: Final = 2_048  # distinct SQL strings remembered; past it, parsed each time
_START: Final = "typogram.query_started"
_VERBS: Final = ("select", "insert", "update", "delete", "replace", "with")
_TABLE_AFTER: Final = re.compile(
    r"\b(?:from|into|update|join|table)\s+[`\"]?([A-Za-z_][A-Za-z0-9_]*)", re.IGNORECASE
)


def statement_family(sql: str) -> str:
    """``SELECT … FROM users WHERE …`` → ``select users``; unknown shapes → ``other``.

    The verb is the statement's first word (``with`` counts as ``select``);
    the table is the first name after ``FROM``, ``INTO``, ``UPDATE``,
    ``JOIN`` or ``TABLE``. Statements without a table keep the verb alone
    (``select`` for ``SELECT 1``); anything else (``SHOW``, ``SET``, DDL)
    is ``other``.
    """
    head = sql.lstrip().split(None, 1)
    verb = head[0].lower() if head else ""
    if verb not in _VERBS:
        return "other"
    if verb == "with":
        verb = "select"
    found = _TABLE_AFTER.search(sql)
    return f"{verb} {found.group(1).lower()}" if found else verb


class QueryTimes:
    """Histograms of query time by (family, target); read by the metrics collector."""

    def __init__(self) -> None:
        self.histograms: dict[tuple[str, str], LockFreeHistogram] = {}
        self._families: dict[str, str] = {}

    def attach(self, engine: AsyncEngine, target: str) -> None:
        """Time every statement ``engine`` runs, labelled ``target`` (primary, a replica)."""
        sync = engine.sync_engine

        def before(conn: Any, _cursor: Any, _sql: str, *_: Any) -> None:
            conn.info[_START] = time.perf_counter()

        def after(conn: Any, _cursor: Any, sql: str, *_: Any) -> None:
            started = conn.info.pop(_START, None)
            if started is not None:
                self.observe(sql, target, time.perf_counter() - started)

        event.listen(sync, "before_cursor_execute", before)
        event.listen(sync, "after_cursor_execute", after)

    def observe(self, sql: str, target: str, seconds: float) -> None:
        family = self._families.get(sql)
        if family is None:
            family = statement_family(sql)
            if len(self._families) < FAMILY_CACHE_MAX:
                self._families[sql] = family
        histogram = self.histograms.get((family, target))
        if histogram is None:
            histogram = self.histograms[family, target] = LockFreeHistogram(LATENCY_BUCKETS)
        histogram.observe(seconds)
