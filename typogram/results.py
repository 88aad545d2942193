"""Typing-test results: accept (publish first), decide the personal best, page, cache.

Rules:

1. A submission is *accepted* once its ``result.accepted`` event is on
   ``test-results`` (fields in ``docs/events.md``): the event log is the
   durable record and the 201 waits for its acknowledgement. The ``results``
   worker then writes ``test_results``, ``personal_bests`` and ``user_stats``
   in batches, exactly once per result id (``workers.results``). With an
   in-process (not durable) log, ``write_through`` also inserts the row
   before publishing, so a restart loses nothing that was answered 201.
2. ``personal_best`` in the answer is decided in the cache by one atomic
   ``zadd`` that only raises (``keys.user_bests``): of two concurrent results
   at most the faster one wins, ties keep the earlier. A set that is not
   there yet (new user, flushed cache) is seeded from ``personal_bests``.
   The table keeps the same rule (strictly higher WPM replaces).
3. Flagged results are stored (``flagged=1`` and the reason) but never
   become a personal best and never reach a board (``flagged`` is in the
   event, with the checks' evidence for the review queue, ``typogram.reviews``);
   a result with too little typing (``ranked`` false, ``boards.enough_typing``)
   is stored and may be a personal best, but reaches no board.
4. A user submits a test once: the first submission claims
   ``keys.test_submitted`` (``set_if_absent``, kept for as long as the test
   could be submitted); a second one is a conflict. A submission that fails
   before its event is acknowledged releases the claim. The REST layer sends
   the claim together with the read of the test (one round trip) and
   releases it when the submission is refused (unknown test, 400, 422); a
   claim it did not get answers 409 only once the log passed those checks.
5. Read-your-writes: every accepted result is also appended to the user's
   ``keys.user_accepted_results`` list (the newest ``recent + 1``), and
   every page merges the list's entries into what SQL (or the cached newest
   page, ``keys.user_recent_results``) returns, so the 201's result is listed
   before the worker wrote it. The worker drops the cached page after each
   write; the list expires with the page's TTL.
6. Paging is keyset on ``(created_at, id)``, newest first; the cursor is
   opaque (base64url JSON) and checked on the way in.
7. An accepted result raises its leaderboard entries as soon as its event is
   acknowledged (``Leaderboards.record_many``, one round trip next to the
   personal best), so it is on its boards when the 201 leaves. The
   ``leaderboard.score`` events the ``results`` worker emits write the same
   entries again (idempotent: best per user), so a board write that failed
   here still lands; flagged results reach no board either way.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import and_, bindparam, func, or_, select
from sqlalchemy.dialects import mysql, sqlite

from typogram import history, keys, topics
from typogram.anticheat import Verdict
from typogram.codes import ErrorCode
from typogram.db.database import Database
from typogram.db.schema import personal_bests, test_results
from typogram.errors import AppError
from typogram.leaderboards import Leaderboards, ScoreWrites, result_scores
from typogram.logs import get_logger
from typogram.ports import Cache, Event, EventLog
from typogram.texts import TextSpec
from typogram.typing import Result, analytics

log = get_logger("typogram.results")

EVENT_ACCEPTED = "result.accepted"
ALREADY_SUBMITTED = "this test has already been submitted"
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
    # Enough typing to reach a board (``boards.enough_typing``); stored either way.
    ranked: bool = True
    # What the checks saw, for the review of a flagged result (JSON-ready).
    evidence: Mapping[str, Any] = field(default_factory=dict)
    # The user's rhythm profile with this result folded in, to keep once it is accepted.
    rhythm: bytes | None = None


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
        "ranked": int(sub.ranked),
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
        "ranked": bool(row.get("ranked", 1)),
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
        "flag_reason": sub.verdict.message[:255] if sub.verdict.action == "flag" else "",
        "flag_evidence": dict(sub.evidence) if sub.verdict.action == "flag" else {},
        "ranked": sub.ranked,
        "seed": sub.seed,
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


def row_of_event(data: Mapping[str, Any]) -> dict[str, Any]:
    """The ``test_results`` row of a ``result.accepted`` event (``row_of`` from the wire)."""
    chars = data["chars"]
    flagged = bool(data.get("flagged"))
    return {
        "id": str(data["result_id"]),
        "created_at": int(data["created_at"]),
        "user_id": str(data["user_id"]),
        "test_id": str(data["test_id"]),
        "mode": str(data["mode"]),
        "lang": str(data["lang"]),
        "word_count": data.get("count"),
        "seconds": data.get("seconds"),
        "punctuation": int(bool(data.get("punctuation"))),
        "numbers": int(bool(data.get("numbers"))),
        "difficulty": str(data.get("difficulty") or "medium"),
        "seed": int(data.get("seed") or 0),  # absent from events older than the field
        "category": str(data["personal_best_category"]),
        "wpm": float(data["wpm"]),
        "raw_wpm": float(data["raw_wpm"]),
        "accuracy": float(data["accuracy"]),
        "consistency": float(data["consistency"]),
        "duration_ms": int(data["duration_ms"]),
        "chars_correct": int(chars["correct"]),
        "chars_incorrect": int(chars["incorrect"]),
        "chars_extra": int(chars["extra"]),
        "chars_missed": int(chars["missed"]),
        "keystrokes": int(data["keystrokes"]),
        "flagged": int(flagged),
        "flag_reason": str(data.get("flag_reason") or "")[:255] if flagged else "",
        "ranked": int(data.get("ranked", True) is not False),  # older events: ranked
    }


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
# A row already there (stored write-through, or a replay) is kept; unlike INSERT
# IGNORE, any other error still raises.
_INSERT_ROW_MYSQL = mysql.insert(test_results).on_duplicate_key_update(id=test_results.c.id)
_INSERT_ROW_SQLITE = sqlite.insert(test_results).on_conflict_do_nothing()


def insert_rows(dialect: str) -> Any:
    """``test_results`` insert that skips a result already stored (by primary key)."""
    return _INSERT_ROW_MYSQL if dialect == "mysql" else _INSERT_ROW_SQLITE


UPSERT_BEST_MYSQL = _upsert_best_mysql()
UPSERT_BEST_SQLITE = _upsert_best_sqlite()
_BESTS_OF = select(personal_bests.c.category, personal_bests.c.wpm).where(
    personal_bests.c.user_id == bindparam("user_id")
)
# A member every best set holds: its absence means the set is not seeded (rule 2).
_SEEDED = "~seeded"


async def raise_best(db: Database, cache: Cache, user_id: str, category: str, wpm: float) -> bool:
    """Rule 2: one ``zadd`` that only raises; seeds a missing set from SQL. Whether
    ``wpm`` is the user's best in ``category`` now (a tie keeps the earlier)."""
    key = keys.user_bests(user_id)
    changed = await cache.zadd(key, {category: wpm, _SEEDED: 0.0}, only_greater=True)
    if changed < 2:  # the set was there (it always holds _SEEDED): raised or not
        return changed == 1
    async with db.read(primary=True) as conn:
        stored = {
            str(c): float(w) for c, w in (await conn.execute(_BESTS_OF, {"user_id": user_id})).all()
        }
    if stored:
        await cache.zadd(key, stored, only_greater=True)
    return category not in stored or wpm > stored[category]


async def race_accepted(db: Database, cache: Cache, user_id: str, wpm: float) -> None:
    """An accepted race finish joins its racer's history (``typogram.history`` rules 1-2):
    counted, and its WPM in the racer's best set beside the test categories."""
    await asyncio.gather(
        history.add(cache, user_id), raise_best(db, cache, user_id, history.RACES_BEST, wpm)
    )


def newest_first(*lists: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Public rows of several sources, one per id, newest first (rule 5)."""
    by_id: dict[str, dict[str, Any]] = {}
    for items in lists:
        for item in items:
            by_id.setdefault(item["id"], item)
    return sorted(by_id.values(), key=lambda r: (r["created_at"], r["id"]), reverse=True)


class Results:
    def __init__(
        self,
        db: Database,
        cache: Cache,
        events: EventLog,
        *,
        score_writes: ScoreWrites,
        recent: int = 10,
        recent_ttl_s: int = 900,
        claim_ttl_s: int = 24 * 3600,
        write_through: bool = False,
    ):
        self.db = db
        self.cache = cache
        self.score_writes = score_writes  # over ``cache``
        self.events = events
        self.recent = recent
        self.recent_ttl_s = recent_ttl_s
        self.claim_ttl_s = claim_ttl_s
        self.write_through = write_through

    async def claim(self, test_id: str) -> bool:
        """Rule 4: whether this is the first submission of ``test_id`` (it now holds it)."""
        return await self.cache.set_if_absent(
            keys.test_submitted(test_id), b"1", ttl=self.claim_ttl_s
        )

    async def release(self, test_id: str) -> None:
        """Give back a claim whose submission was not accepted (it may come again)."""
        await self.cache.delete(keys.test_submitted(test_id))

    async def accept(
        self, sub: Submission, *, claimed: bool = False
    ) -> tuple[dict[str, Any], bool]:
        """Claim the test (unless the caller holds its ``claim`` already), publish
        ``result.accepted`` (and with ``write_through`` insert the row first), then
        decide the best; returns (public row, is best).

        Raises ``AppError`` 409 for a test already submitted; any other error means
        nothing was accepted, the claim is released and the test may be submitted again.
        """
        row = row_of(sub)
        if not claimed and not await self.claim(sub.test_id):
            raise AppError(ErrorCode.CONFLICT, ALREADY_SUBMITTED)
        try:
            if self.write_through:
                async with self.db.write() as conn:
                    await conn.execute(insert_rows(self.db.dialect), row)
        except Exception:
            await self.release(sub.test_id)
            raise
        event = accepted_event(sub)
        try:
            await self.events.publish(topics.TEST_RESULTS, event)
        except Exception:
            if not self.write_through:
                await self.release(sub.test_id)
                raise
            # Stored but not announced: boards and analytics miss it (docs/events.md).
            log.exception("result.accepted not published", extra={"result_id": row["id"]})
        view = public(row)
        remembered = self.cache.list_push(
            keys.user_accepted_results(sub.user_id),
            orjson.dumps(view),
            max_len=self.recent + 1,
            ttl=self.recent_ttl_s,
        )
        if sub.verdict.action != "accept":
            await remembered
            return view, False
        counted = history.add(self.cache, sub.user_id)
        rhythm = (
            history.remember_rhythm(self.cache, sub.user_id, sub.rhythm)
            if sub.rhythm is not None
            else asyncio.sleep(0)
        )
        _, best, _, _, _ = await asyncio.gather(
            remembered, self._best(sub), self._board(event), counted, rhythm
        )
        return view, best

    async def _board(self, event: Event) -> None:
        """Rule 7: the result's board entries, now; the worker's copy follows."""
        try:
            await Leaderboards(self.db, self.cache, self.score_writes).record_many(
                result_scores(event.data)
            )
        except Exception:
            # Accepted all the same: the leaderboards worker writes them from the log.
            log.warning(
                "board entries left to the worker", extra={"result_id": event.id}, exc_info=True
            )

    async def _best(self, sub: Submission) -> bool:
        return await raise_best(self.db, self.cache, sub.user_id, sub.spec.category, sub.result.wpm)

    async def page(
        self, user_id: str, *, limit: int, cursor: str | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Newest first; returns the page and the cursor of the next one (``None`` at the end)."""
        if cursor is None and limit <= self.recent:
            stored, accepted = await asyncio.gather(self._recent(user_id), self._accepted(user_id))
        else:
            stored, accepted = await asyncio.gather(
                self._query(user_id, limit + 1, cursor, primary=False), self._accepted(user_id)
            )
            if cursor is not None:
                after = decode_cursor(cursor)
                accepted = [r for r in accepted if (r["created_at"], r["id"]) < after]
        items = newest_first(stored, accepted)
        page = items[:limit]
        more = len(items) > limit
        following = encode_cursor(page[-1]["created_at"], page[-1]["id"]) if more else None
        return page, following

    async def _accepted(self, user_id: str) -> list[dict[str, Any]]:
        raw = await self.cache.list_range(keys.user_accepted_results(user_id))
        return [orjson.loads(item) for item in raw]

    async def _recent(self, user_id: str) -> list[dict[str, Any]]:
        key = keys.user_recent_results(user_id)
        cached = await self.cache.get(key)
        if cached is not None:
            items: list[dict[str, Any]] = orjson.loads(cached)
            return items
        # The primary: this fill follows the worker's invalidation, a replica may lag it.
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
