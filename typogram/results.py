"""Typing-test results: accept (publish first), decide the personal best, page, cache.

Rules:

1. A submission is *accepted* once its ``result.accepted`` event is on
   ``test-results`` (fields in ``docs/events.md``): the event log is the
   durable record and the 201 waits for its acknowledgement. The ``results``
   worker then writes ``test_results``, ``personal_bests`` and ``user_stats``
   in batches, exactly once per result id (rule 8). With an
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
8. Applying accepted results (``apply_results``, run by the ``results``
   worker on a batch of events) is one transaction: the results not in
   ``applied_results`` yet get their ``applied_results`` row, their
   ``test_results`` row (kept if a write-through submission stored it
   already), their personal best (only a strictly higher WPM replaces one)
   and their share of ``user_stats`` (a flagged one only counts in
   ``user_stats.flagged``). A result already applied changes nothing, so a
   batch replayed after a crash applies every result exactly once. Then the
   users' cached newest pages are dropped (rule 5).

A result's row, event and API view all derive from one type,
``typogram.result_record.ResultRecord``; every statement on ``test_results``
and ``personal_bests`` for solo results is in this module.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import and_, bindparam, func, or_, select
from sqlalchemy.dialects import mysql, sqlite

from typogram import history, keys, tallies, topics
from typogram.codes import ErrorCode
from typogram.db.database import Database
from typogram.db.schema import applied_results, personal_bests, test_results
from typogram.errors import AppError
from typogram.leaderboards import Leaderboards, ScoreWrites, result_scores
from typogram.logs import get_logger
from typogram.ports import Cache, Event, EventLog
from typogram.result_record import ResultRecord, Submission, record_of

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

    from typogram.platform import Platform

log = get_logger("typogram.results")

ALREADY_SUBMITTED = "this test has already been submitted"
EVENT_VERSION = 1


def accepted_event(record: ResultRecord) -> Event:
    """The ``test-results`` event of an accepted result (docs/events.md)."""
    return Event(
        type=topics.RESULT_ACCEPTED,
        data=record.event_data(),
        key=record.user_id,
        version=EVENT_VERSION,
        id=record.id,  # one result, one event id: consumers dedupe replays by it
        ts=record.created_at,
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


async def apply_results(platform: Platform, batch: Sequence[ResultRecord]) -> int:
    """Rule 8: store a batch of accepted results; how many were new (the others
    were applied before).

    Raises ``IntegrityError`` when a concurrent delivery applied one of them
    first: nothing of the batch is kept, and a retry finds it applied.
    """
    by_id = {record.id: record for record in batch}
    now = int(time.time() * 1000)
    db = platform.db
    async with db.write() as conn:
        seen = await conn.execute(_APPLIED_AMONG, {"ids": list(by_id)})
        for (result_id,) in seen.all():
            del by_id[str(result_id)]
        if not by_id:
            return 0
        fresh = list(by_id.values())
        await conn.execute(
            applied_results.insert(),
            [{"result_id": r.id, "user_id": r.user_id, "created_at": r.created_at} for r in fresh],
        )
        rows = [record.row() for record in fresh]
        await conn.execute(insert_rows(db.dialect), rows)
        bests = [_best_of(record) for record in fresh if not record.flagged]
        if bests:
            upsert = UPSERT_BEST_MYSQL if db.dialect == "mysql" else UPSERT_BEST_SQLITE
            await conn.execute(upsert, bests)
        await _add_stats(conn, rows, now)
    users = {record.user_id for record in fresh}
    await platform.cache.delete(*(keys.user_recent_results(user) for user in users))
    await platform.records.changed(users)  # their stats, bests and WPM trend
    return len(fresh)


def _best_of(record: ResultRecord) -> dict[str, Any]:
    return {
        "user_id": record.user_id,
        "category": record.category,
        "wpm": record.wpm,
        "accuracy": record.accuracy,
        "result_id": record.id,
        "achieved_at": record.created_at,
    }


_APPLIED_AMONG = select(applied_results.c.result_id).where(
    applied_results.c.result_id.in_(bindparam("ids", expanding=True))
)


async def _add_stats(conn: AsyncConnection, rows: list[dict[str, Any]], now: int) -> None:
    """Each user's share of the batch, added in one statement per user (rule 8)."""
    shares: dict[str, tallies.Delta] = {}
    for row in rows:
        user = str(row["user_id"])
        share = shares.setdefault(user, tallies.delta(user, now))
        if row["flagged"]:
            share["d_flagged"] += 1
        else:
            tallies.count(share, row)
    await tallies.add(conn, shares.values())


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
        record = record_of(sub)
        row = record.row()
        if not claimed and not await self.claim(sub.test_id):
            raise AppError(ErrorCode.CONFLICT, ALREADY_SUBMITTED)
        try:
            if self.write_through:
                async with self.db.write() as conn:
                    await conn.execute(insert_rows(self.db.dialect), row)
        except Exception:
            await self.release(sub.test_id)
            raise
        event = accepted_event(record)
        try:
            await self.events.publish(topics.TEST_RESULTS, event)
        except Exception:
            if not self.write_through:
                await self.release(sub.test_id)
                raise
            # Stored but not announced: boards and analytics miss it (docs/events.md).
            log.exception("result.accepted not published", extra={"result_id": record.id})
        view = record.view()
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
        return [ResultRecord.of_row(dict(row)).view() for row in rows]
