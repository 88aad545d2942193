"""A user's running totals of accepted results (``user_stats``), for both ways in.

A result counts in ``user_stats`` when it is accepted: at submission (the
``results`` worker, ``workers.results``) or later, when staff approve a
flagged one (``typogram.reviews``). Both build per-user deltas here and add
them with ``add`` in their own transaction, so the two paths count a result
the same way. A flagged result adds only to ``flagged``; its approval moves
it from there to the counted totals.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, case
from sqlalchemy.dialects import mysql, sqlite

from typogram.db.schema import user_stats

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

Delta = dict[str, Any]

# A user's stats row, unless there is one.
_ROW_MYSQL = mysql.insert(user_stats).on_duplicate_key_update(user_id=user_stats.c.user_id)
_ROW_SQLITE = sqlite.insert(user_stats).on_conflict_do_nothing()
_t = user_stats
_ADD = (
    _t.update()
    .where(_t.c.user_id == bindparam("u_id"))
    .values(
        tests=_t.c.tests + bindparam("d_tests"),
        flagged=_t.c.flagged + bindparam("d_flagged"),
        total_time_ms=_t.c.total_time_ms + bindparam("d_time"),
        total_chars=_t.c.total_chars + bindparam("d_chars"),
        best_wpm=case(
            (_t.c.best_wpm < bindparam("d_best"), bindparam("d_best")), else_=_t.c.best_wpm
        ),
        wpm_sum=_t.c.wpm_sum + bindparam("d_wpm"),
        accuracy_sum=_t.c.accuracy_sum + bindparam("d_accuracy"),
        last_test_at=case(
            (_t.c.last_test_at < bindparam("d_last"), bindparam("d_last")),
            else_=_t.c.last_test_at,
        ),
        updated_at=bindparam("d_now"),
    )
)


def delta(user_id: str, now_ms: int) -> Delta:
    """An empty share for ``user_id`` (nothing added yet)."""
    return {
        "u_id": user_id, "d_tests": 0, "d_flagged": 0, "d_time": 0, "d_chars": 0,
        "d_best": -1.0, "d_wpm": 0.0, "d_accuracy": 0.0, "d_last": -1, "d_now": now_ms,
    }  # fmt: skip


def count(share: Delta, result: Mapping[str, Any]) -> None:
    """Add one accepted result to ``share``: ``wpm``, ``accuracy``, ``duration_ms``,
    ``chars_correct`` and ``created_at`` as a ``test_results`` row holds them."""
    wpm = float(result["wpm"])
    share["d_tests"] += 1
    share["d_time"] += int(result["duration_ms"])
    share["d_chars"] += int(result["chars_correct"])
    share["d_best"] = max(share["d_best"], wpm)
    share["d_wpm"] += wpm
    share["d_accuracy"] += float(result["accuracy"])
    share["d_last"] = max(share["d_last"], int(result["created_at"]))


async def add(conn: AsyncConnection, shares: Iterable[Delta]) -> None:
    """Each share in one statement per user, in the caller's transaction."""
    shares = list(shares)
    if not shares:
        return
    missing = _ROW_MYSQL if conn.dialect.name == "mysql" else _ROW_SQLITE
    rows = [
        {"user_id": s["u_id"], "created_at": s["d_now"], "updated_at": s["d_now"]} for s in shares
    ]
    await conn.execute(missing, rows)
    await conn.execute(_ADD, shares)
