"""Stored typing-test results: insert with the personal best, page, cache, publish.

Rules:

1. A result row and the user's personal best for its category change in
   one transaction, so ``personal_best`` in the answer is what the database
   holds. The best is kept by a conditional upsert (only a strictly higher
   WPM replaces it): two concurrent results cannot both win.
2. Flagged results are stored (``flagged=1`` and the reason) but never
   become a personal best and never reach a board (``flagged`` is in the event).
3. A user submits a test once; a second submission is a conflict.
4. The newest results are cached per user as one JSON list (``recent + 1``
   items, the extra one says whether a next page exists), written in one
   ``set`` so no reader sees it half filled; an insert drops the list
   and the next read fills it from the primary. A read that fills the list
   while an insert commits can cache a list missing that insert until the
   list's TTL; the TTL is short for that reason.
5. Paging is keyset on ``(created_at, id)``, newest first; the cursor is
   opaque (base64url JSON) and checked on the way in.
6. Every stored result is published as ``result.accepted`` on
   ``test-results`` after the commit (fields in ``docs/events.md``).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import and_, bindparam, func, or_, select
from sqlalchemy.dialects import mysql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from typogram import keys
from typogram.codes import ErrorCode
from typogram.db.database import Database
from typogram.db.schema import personal_bests, test_results
from typogram.errors import AppError
from typogram.ports import Cache, Event
from typogram.texts import TextSpec
from typogram.typing import Result, Verdict, analytics

EVENT_ACCEPTED = "result.accepted"
EVENT_VERSION = 1


@dataclass(frozen=True, slots=True)
class Submission:
    """What the REST layer hands over: who, which test, its score and verdict."""

    result_id: str
    user_id: str
    username: str
    test_id: str
    spec: TextSpec
    seed: int
    result: Result
    verdict: Verdict
    created_at: int


def row_of(sub: Submission) -> dict[str, Any]:
    r, spec = sub.result, sub.spec
    return {
        "id": sub.result_id,
        "created_at": sub.created_at,
        "user_id": sub.user_id,
        "test_id": sub.test_id,
        "mode": spec.mode,
        "lang": spec.lang,
        "word_count": spec.count if spec.mode == "words" else None,
        "seconds": spec.seconds if spec.mode == "time" else None,
        "punctuation": int(spec.punctuation),
        "numbers": int(spec.numbers),
        "difficulty": spec.difficulty,
        "seed": sub.seed,
        "category": spec.category,
        "wpm": r.wpm,
        "raw_wpm": r.raw_wpm,
        "accuracy": r.accuracy,
        "consistency": r.consistency,
        "duration_ms": r.duration_ms,
        "chars_correct": r.chars.correct,
        "chars_incorrect": r.chars.incorrect,
        "chars_extra": r.chars.extra,
        "chars_missed": r.chars.missed,
        "keystrokes": r.keystrokes,
        "flagged": int(sub.verdict.action == "flag"),
        "flag_reason": sub.verdict.message[:255] if sub.verdict.action == "flag" else "",
    }


def public(row: Mapping[str, Any]) -> dict[str, Any]:
    """The client's view of a stored row (also what the recent-results cache holds)."""
    return {
        "id": row["id"],
        "test_id": row["test_id"],
        "mode": row["mode"],
        "lang": row["lang"],
        "count": row["word_count"],
        "seconds": row["seconds"],
        "punctuation": bool(row["punctuation"]),
        "numbers": bool(row["numbers"]),
        "difficulty": row["difficulty"],
        "category": row["category"],
        "wpm": row["wpm"],
        "raw_wpm": row["raw_wpm"],
        "accuracy": row["accuracy"],
        "consistency": row["consistency"],
        "duration_ms": row["duration_ms"],
        "chars": {
            "correct": row["chars_correct"],
            "incorrect": row["chars_incorrect"],
            "extra": row["chars_extra"],
            "missed": row["chars_missed"],
        },
        "keystrokes": row["keystrokes"],
        "flagged": bool(row["flagged"]),
        "flag_reason": row["flag_reason"],
        "created_at": row["created_at"],
    }


def accepted_event(sub: Submission) -> Event:
    """The ``test-results`` event for a stored result (docs/events.md)."""
    r, spec = sub.result, sub.spec
    data: dict[str, Any] = {
        "result_id": sub.result_id,
        "user_id": sub.user_id,
        "username": sub.username,
        "test_id": sub.test_id,
        "mode": spec.mode,
        "lang": spec.lang,
        "count": spec.count if spec.mode == "words" else None,
        "seconds": spec.seconds if spec.mode == "time" else None,
        "punctuation": spec.punctuation,
        "numbers": spec.numbers,
        "difficulty": spec.difficulty,
        "category": spec.board,
        "personal_best_category": spec.category,
        "wpm": r.wpm,
        "raw_wpm": r.raw_wpm,
        "accuracy": r.accuracy,
        "consistency": r.consistency,
        "duration_ms": r.duration_ms,
        "chars": {
            "correct": r.chars.correct,
            "incorrect": r.chars.incorrect,
            "extra": r.chars.extra,
            "missed": r.chars.missed,
        },
        "keystrokes": r.keystrokes,
        "flagged": sub.verdict.action == "flag",
        "flag_reasons": [reason.code for reason in sub.verdict.reasons],
        "created_at": sub.created_at,
        **analytics(r),
    }
    return Event(
        type=EVENT_ACCEPTED,
        data=data,
        key=sub.user_id,
        version=EVENT_VERSION,
        id=sub.result_id,  # one result, one event id: consumers dedupe replays by it
        ts=sub.created_at,
    )


def encode_cursor(created_at: int, result_id: str) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([created_at, result_id])).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, str]:
    """Raises ``AppError`` (400) for anything this module did not write."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created_at, result_id = orjson.loads(raw)
    except (binascii.Error, ValueError, TypeError) as exc:
        raise AppError(
            ErrorCode.BAD_REQUEST, "invalid cursor", fields={"cursor": "invalid"}
        ) from exc
    if (
        not isinstance(created_at, int)
        or isinstance(created_at, bool)
        or not isinstance(result_id, str)
        or len(result_id) > 32
    ):
        raise AppError(ErrorCode.BAD_REQUEST, "invalid cursor", fields={"cursor": "invalid"})
    return created_at, result_id


def _upsert_best_mysql() -> Any:
    table = personal_bests
    ins = mysql.insert(table)
    new = ins.inserted
    better = new.wpm > table.c.wpm
    # MySQL assigns left to right and later terms see earlier ones: wpm goes last.
    return ins.on_duplicate_key_update(
        [
            ("result_id", func.if_(better, new.result_id, table.c.result_id)),
            ("accuracy", func.if_(better, new.accuracy, table.c.accuracy)),
            ("achieved_at", func.if_(better, new.achieved_at, table.c.achieved_at)),
            ("wpm", func.if_(better, new.wpm, table.c.wpm)),
        ]
    )


def _upsert_best_sqlite() -> Any:
    table = personal_bests
    ins = sqlite.insert(table)
    return ins.on_conflict_do_update(
        index_elements=[table.c.user_id, table.c.category],
        set_={
            "wpm": ins.excluded.wpm,
            "accuracy": ins.excluded.accuracy,
            "result_id": ins.excluded.result_id,
            "achieved_at": ins.excluded.achieved_at,
        },
        where=ins.excluded.wpm > table.c.wpm,
    )


# Built once and executed with parameters: building a statement per request
# cost more CPU than the round trip it sends (and the compiled form is cached).
_SEEN = (
    select(test_results.c.id)
    .where(
        test_results.c.test_id == bindparam("test_id"),
        test_results.c.user_id == bindparam("user_id"),
    )
    .limit(1)
)
_INSERT = test_results.insert()
_UPSERT_BEST_MYSQL = _upsert_best_mysql()
_UPSERT_BEST_SQLITE = _upsert_best_sqlite()
_BEST_HOLDER = select(personal_bests.c.result_id).where(
    personal_bests.c.user_id == bindparam("user_id"),
    personal_bests.c.category == bindparam("category"),
)


class Results:
    def __init__(self, db: Database, cache: Cache, *, recent: int = 10, recent_ttl_s: int = 900):
        self.db = db
        self.cache = cache
        self.recent = recent
        self.recent_ttl_s = recent_ttl_s

    async def record(self, sub: Submission) -> tuple[dict[str, Any], bool]:
        """Insert the result and update the personal best; returns (public row, is best)."""
        row = row_of(sub)
        async with self.db.write() as conn:
            seen = await conn.execute(_SEEN, {"test_id": sub.test_id, "user_id": sub.user_id})
            if seen.first() is not None:
                raise AppError(ErrorCode.CONFLICT, "this test has already been submitted")
            await conn.execute(_INSERT, row)
            best = False
            if sub.verdict.action == "accept":
                best = await self._upsert_best(conn, sub)
        await self.cache.delete(keys.user_recent_results(sub.user_id))
        return public(row), best

    async def _upsert_best(self, conn: AsyncConnection, sub: Submission) -> bool:
        values = {
            "user_id": sub.user_id,
            "category": sub.spec.category,
            "wpm": sub.result.wpm,
            "accuracy": sub.result.accuracy,
            "result_id": sub.result_id,
            "achieved_at": sub.created_at,
        }
        upsert = _UPSERT_BEST_MYSQL if self.db.dialect == "mysql" else _UPSERT_BEST_SQLITE
        await conn.execute(upsert, values)
        holder = await conn.execute(
            _BEST_HOLDER, {"user_id": sub.user_id, "category": sub.spec.category}
        )
        return bool(holder.scalar_one() == sub.result_id)

    async def page(
        self, user_id: str, *, limit: int, cursor: str | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Newest first; returns the page and the cursor of the next one (``None`` at the end)."""
        if cursor is None and limit <= self.recent:
            items = await self._recent(user_id)
        else:
            items = await self._query(user_id, limit + 1, cursor, primary=False)
        page = items[:limit]
        more = len(items) > limit
        following = encode_cursor(page[-1]["created_at"], page[-1]["id"]) if more else None
        return page, following

    async def _recent(self, user_id: str) -> list[dict[str, Any]]:
        key = keys.user_recent_results(user_id)
        cached = await self.cache.get(key)
        if cached is not None:
            items: list[dict[str, Any]] = orjson.loads(cached)
            return items
        # The primary: this fill follows an insert's invalidation, a replica may lag it.
        items = await self._query(user_id, self.recent + 1, None, primary=True)
        # One value, not a cache list: a reader never sees a half-filled list.
        await self.cache.set(key, orjson.dumps(items), ttl=self.recent_ttl_s)
        return items

    async def _query(
        self, user_id: str, limit: int, cursor: str | None, *, primary: bool
    ) -> list[dict[str, Any]]:
        t = test_results
        where = [t.c.user_id == user_id]
        if cursor is not None:
            created_at, result_id = decode_cursor(cursor)
            where.append(
                or_(
                    t.c.created_at < created_at,
                    and_(t.c.created_at == created_at, t.c.id < result_id),
                )
            )
        statement = (
            select(t).where(*where).order_by(t.c.created_at.desc(), t.c.id.desc()).limit(limit)
        )
        async with self.db.read(primary=primary) as conn:
            rows = (await conn.execute(statement)).mappings().all()
        return [public(dict(row)) for row in rows]
