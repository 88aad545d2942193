"""The review queue of flagged results: flag, don't ban.

Rules:

1. Every flagged solo result (``result.accepted`` with ``flagged``), race
   finish (``race.finished`` with ``flags``) and daily-challenge attempt
   (``challenge.attempt`` with ``flagged``) gets one ``flag_reviews`` row,
   ``open``, written by the ``reviews`` worker (``workers.reviews``) once
   per subject: its id is derived from the kind and the subject's id, so a
   replayed event changes nothing. The row keeps the reasons, the evidence
   the checks saw and the board entries the result would have raised
   (``boards``, JSON ``[[board, period, wpm, at_ms], ...]``; empty when it
   would reach no board anyway: a test without a board, too little
   typing, a custom-text race).
2. Flagged results stay off every board until a decision: staff
   (``roles.STAFF``) approve or reject an ``open`` flag exactly once — a
   conditional update, so of two concurrent decisions one wins. Approval
   counts the result as acceptance would have, in the deciding transaction:
   it is unflagged in its table and, for a test result, becomes a personal
   best when it beats the stored one and moves from ``user_stats.flagged``
   to the counted totals (``typogram.tallies``); a subject its worker has
   not stored yet answers ``unavailable`` and decides nothing. After the
   commit the stored board entries are raised (``Leaderboards.record_many``,
   best per user, so a late approval never lowers a board), the user's
   cached best and history count (once) follow, and the cached records are
   dropped. Rejection counts nothing, ever. Ratings, streaks, tournaments
   and achievements are not replayed: a race rated without a flagged finish
   stays rated so.
3. Approving an approved flag again is not a conflict: it changes nothing
   in the database and raises the boards and the best again (idempotent),
   which is how an approval whose cache writes failed (``unavailable``,
   audited ``failed``) is finished. Any other second decision is a
   conflict. Every decision is audited in its transaction (``audit_log``,
   ``flag.approve`` / ``flag.reject``, with the reviewer, the flagged user,
   the reasons and the note).
4. The queue is paged oldest first (the order to review in) by a keyset
   cursor on ``(created_at, id)``, per status.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import orjson
from sqlalchemy import and_, bindparam, or_, select, update

from typogram import boards, history, keys, tallies
from typogram.accounts import audit_insert
from typogram.codes import ErrorCode
from typogram.db.database import Database
from typogram.db.schema import (
    applied_results,
    challenge_attempts,
    flag_reviews,
    test_results,
    users,
)
from typogram.errors import AppError
from typogram.leaderboards import Leaderboards, Score, ScoreWrites, result_scores
from typogram.ports import Cache
from typogram.records import Records
from typogram.results import (
    UPSERT_BEST_MYSQL,
    UPSERT_BEST_SQLITE,
    decode_cursor,
    encode_cursor,
    race_accepted,
    raise_best,
)

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

Status = Literal["open", "approved", "rejected"]
STATUSES: tuple[Status, ...] = ("open", "approved", "rejected")


@dataclass(frozen=True, slots=True)
class Flag:
    """One row of the queue, before it is stored."""

    kind: str  # result | race | challenge
    subject_id: str
    user_id: str
    reasons: tuple[str, ...]
    message: str
    evidence: Mapping[str, Any]
    boards: tuple[Score, ...]
    wpm: float
    created_at: int

    @property
    def id(self) -> str:
        return flag_id(self.kind, self.subject_id)

    def row(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "subject_id": self.subject_id[:100],
            "user_id": self.user_id[:64],
            "status": "open",
            "reasons": ",".join(self.reasons)[:255],
            "message": self.message[:500],
            "evidence": orjson.dumps(self.evidence).decode(),
            "boards": orjson.dumps(
                [[s.board, s.period, s.wpm, s.at_ms] for s in self.boards]
            ).decode(),
            "wpm": self.wpm,
            "created_at": self.created_at,
        }


def flag_id(kind: str, subject_id: str) -> str:
    return hashlib.sha256(f"flag:{kind}:{subject_id}".encode()).hexdigest()[:32]


# -- rule 1: what each flagged event becomes --------------------------------------------


def of_result(data: Mapping[str, Any]) -> Flag | None:
    """The flag of a ``result.accepted`` event, if it was flagged."""
    if not data.get("flagged"):
        return None
    return Flag(
        kind="result",
        subject_id=str(data["result_id"]),
        user_id=str(data["user_id"]),
        reasons=tuple(str(r) for r in data.get("flag_reasons") or ()),
        message=str(data.get("flag_reason") or ""),
        evidence={**(data.get("flag_evidence") or {}), "category": data.get("category")},
        boards=tuple(result_scores(data, approved=True)),
        wpm=float(data["wpm"]),
        created_at=int(data["created_at"]),
    )


def of_race_finish(data: Mapping[str, Any], at_ms: int) -> Flag | None:
    """The flag of a race finish (``race.finished``; ``at_ms``: its time), if it has flags."""
    flags = tuple(str(f) for f in data.get("flags") or ())
    if not flags or data.get("guest") or not data.get("user"):
        return None
    user, wpm = str(data["user"]), float(data["wpm"])
    entries: tuple[Score, ...] = ()
    if data.get("ranked", True):
        entries = tuple(
            Score(boards.RACES, p.name, user, wpm, at_ms) for p in boards.periods(at_ms)
        )
    evidence = {
        name: data.get(name)
        for name in ("race", "place", "wpm", "raw_wpm", "accuracy", "time_ms", "custom", "chars")
    }
    return Flag(
        kind="race",
        subject_id=f"{data['race']}:{user}",
        user_id=user,
        reasons=flags,
        message=", ".join(flags),
        evidence=evidence,
        boards=entries,
        wpm=wpm,
        created_at=at_ms,
    )


def of_attempt(data: Mapping[str, Any]) -> Flag | None:
    """The flag of a ``challenge.attempt`` event, if it was flagged."""
    if not data.get("flagged"):
        return None
    user, wpm, at = str(data["user_id"]), float(data["wpm"]), int(data["created_at"])
    entries: tuple[Score, ...] = ()
    if data.get("ranked", True):
        board = boards.challenge_board(str(data["challenge_id"]))
        entries = tuple(Score(board, p.name, user, wpm, at) for p in boards.periods(at))
    return Flag(
        kind="challenge",
        subject_id=str(data["attempt_id"]),
        user_id=user,
        reasons=tuple(str(r) for r in data.get("flag_reasons") or ()),
        message=str(data.get("flag_reason") or ""),
        evidence={**(data.get("flag_evidence") or {}), "challenge": data.get("challenge_id")},
        boards=entries,
        wpm=wpm,
        created_at=at,
    )


def view(row: Mapping[str, Any]) -> dict[str, Any]:
    """The staff's view of a stored row."""
    return {
        "id": row["id"],
        "kind": row["kind"],
        "subject_id": row["subject_id"],
        "user_id": row["user_id"],
        "username": row.get("username") or "",
        "status": row["status"],
        "reasons": [r for r in str(row["reasons"]).split(",") if r],
        "message": row["message"],
        "evidence": orjson.loads(row["evidence"]),
        "boards": [
            {"board": b, "period": p, "wpm": w, "at": a}
            for b, p, w, a in orjson.loads(row["boards"])
        ],
        "wpm": row["wpm"],
        "created_at": row["created_at"],
        "reviewed_by": row["reviewed_by"],
        "reviewed_at": row["reviewed_at"],
        "note": row["note"],
    }


class Reviews:
    def __init__(
        self, db: Database, cache: Cache, records: Records, *, score_writes: ScoreWrites
    ) -> None:
        self.db = db
        self.cache = cache
        self.records = records
        self.score_writes = score_writes  # over ``cache``

    async def record(self, flags: Sequence[Flag]) -> int:
        """Rule 1: store the flags not stored yet; returns how many were new."""
        by_id = {flag.id: flag for flag in flags}
        if not by_id:
            return 0
        async with self.db.write() as conn:
            found = await conn.execute(
                select(flag_reviews.c.id).where(flag_reviews.c.id.in_(list(by_id)))
            )
            for (known,) in found.all():
                del by_id[str(known)]
            if by_id:
                await conn.execute(flag_reviews.insert(), [f.row() for f in by_id.values()])
        return len(by_id)

    async def page(
        self, status: Status, *, limit: int, cursor: str | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Rule 4: the flags in ``status``, oldest first; the next page's cursor or None."""
        t = flag_reviews
        where = [t.c.status == status]
        if cursor is not None:
            created_at, last = decode_cursor(cursor)
            where.append(
                or_(t.c.created_at > created_at, and_(t.c.created_at == created_at, t.c.id > last))
            )
        statement = (
            select(t, users.c.username)
            .select_from(t.outerjoin(users, users.c.id == t.c.user_id))
            .where(*where)
            .order_by(t.c.created_at, t.c.id)
            .limit(limit + 1)
        )
        async with self.db.read(primary=True) as conn:
            rows = [dict(r) for r in (await conn.execute(statement)).mappings()]
        page = [view(row) for row in rows[:limit]]
        following = (
            encode_cursor(rows[limit - 1]["created_at"], rows[limit - 1]["id"])
            if len(rows) > limit
            else None
        )
        return page, following

    async def decide(
        self, flag: str, *, approve: bool, actor: str, note: str = "", ip: str = "", now_ms: int
    ) -> dict[str, Any]:
        """Rules 2-3: decide an open flag; raises ``AppError`` 404/409/503.

        Approving an approved flag again changes nothing in the database and
        writes its boards and best again (both only ever raise): the way to
        finish an approval whose cache writes failed (503)."""
        status: Status = "approved" if approve else "rejected"
        action = "flag.approve" if approve else "flag.reject"
        t = flag_reviews
        async with self.db.write() as conn:
            found = (await conn.execute(select(t).where(t.c.id == flag))).mappings().first()
            if found is None:
                raise AppError(ErrorCode.NOT_FOUND, "no such flag", fields={"flag": "unknown"})
            row = dict(found)
            changed = await conn.execute(
                update(t)
                .where(t.c.id == flag, t.c.status == "open")
                .values(status=status, reviewed_by=actor, reviewed_at=now_ms, note=note[:500])
            )
            first = changed.rowcount == 1
            if first:
                if approve:
                    await _count(conn, row, now_ms)
                await conn.execute(
                    audit_insert(
                        action,
                        "ok",
                        user_id=str(row["user_id"]),
                        actor_id=actor,
                        ip=ip,
                        detail=_detail(row, note),
                        at_ms=now_ms,
                    )
                )
        if first:
            row |= {
                "status": status,
                "reviewed_by": actor,
                "reviewed_at": now_ms,
                "note": note[:500],
            }
        else:
            # Decided meanwhile (read again: this transaction's snapshot predates it).
            async with self.db.read(primary=True) as conn:
                now = (await conn.execute(select(t).where(t.c.id == flag))).mappings().first()
            row = dict(now) if now is not None else row
            if not (approve and row["status"] == "approved"):
                raise AppError(ErrorCode.CONFLICT, "this flag has been decided already")
        if approve:
            await self._counted(row, first=first, actor=actor, note=note, ip=ip, now_ms=now_ms)
        return view(row)

    async def _counted(
        self, row: dict[str, Any], *, first: bool, actor: str, note: str, ip: str, now_ms: int
    ) -> None:
        """Rule 2's writes to the cache after the commit: the boards, the user's best in
        its category, the history behind the anti-cheat history rule (once) and the
        user's cached records. All but the history only ever raise or drop, so a
        repeat is harmless."""
        user = str(row["user_id"])
        scores = [
            Score(str(b), str(p), user, float(w), int(a))
            for b, p, w, a in orjson.loads(row["boards"])
        ]
        try:
            if scores:
                await Leaderboards(self.db, self.cache, self.score_writes).record_many(scores)
            if row["kind"] == "result":
                async with self.db.read(primary=True) as conn:
                    best = (await conn.execute(_RESULT_BEST, {"id": row["subject_id"]})).first()
                if best is not None:
                    await raise_best(self.db, self.cache, user, str(best[0]), float(best[1]))
                if first:
                    await history.add(self.cache, user)
                await self.cache.delete(keys.user_recent_results(user))
            elif row["kind"] == "race" and first:
                await race_accepted(self.db, self.cache, user, float(row["wpm"]))
            await self.records.changed([user])
        except Exception as exc:
            async with self.db.write() as conn:
                detail = {**_detail(row, note), "error": type(exc).__name__}
                await conn.execute(
                    audit_insert(
                        "flag.approve",
                        "failed",
                        user_id=user,
                        actor_id=actor,
                        ip=ip,
                        detail=detail,
                        at_ms=now_ms,
                    )
                )
            raise AppError(
                ErrorCode.UNAVAILABLE,
                "approved, but the boards could not be written yet; approve again",
            ) from exc


async def _count(conn: AsyncConnection, row: Mapping[str, Any], now_ms: int) -> None:
    """Rule 2 in the deciding transaction: an approved result counts as an accepted
    one would have -- unflagged in its table; for a test result also its personal
    best and its share of ``user_stats`` (moved from ``flagged``). Raises ``AppError``
    503 (rolling the decision back) while its worker has not stored the subject."""
    subject = str(row["subject_id"])
    match row["kind"]:
        case "result":
            applied = await conn.execute(
                select(applied_results.c.result_id).where(applied_results.c.result_id == subject)
            )
            if applied.first() is None:
                raise _not_stored()
            t = test_results
            found = (
                (await conn.execute(select(t).where(t.c.id == subject, t.c.flagged == 1)))
                .mappings()
                .first()
            )
            if found is None:  # archived since (or never flagged): nothing left to count
                return
            stored = dict(found)
            await conn.execute(update(t).where(t.c.id == subject).values(flagged=0, flag_reason=""))
            best = {
                "user_id": stored["user_id"],
                "category": stored["category"],
                "wpm": stored["wpm"],
                "accuracy": stored["accuracy"],
                "result_id": subject,
                "achieved_at": stored["created_at"],
            }
            upsert = UPSERT_BEST_MYSQL if conn.dialect.name == "mysql" else UPSERT_BEST_SQLITE
            await conn.execute(upsert, [best])
            share = tallies.delta(str(stored["user_id"]), now_ms)
            share["d_flagged"] = -1
            tallies.count(share, stored)
            await tallies.add(conn, [share])
        case "challenge":
            t = challenge_attempts
            moved = await conn.execute(update(t).where(t.c.id == subject).values(flagged=0))
            if moved.rowcount != 1:
                there = await conn.execute(select(t.c.id).where(t.c.id == subject))
                if there.first() is None:
                    raise _not_stored()


def _not_stored() -> AppError:
    return AppError(
        ErrorCode.UNAVAILABLE, "the result is still being stored; approve again in a moment"
    )


_RESULT_BEST = select(test_results.c.category, test_results.c.wpm).where(
    test_results.c.id == bindparam("id")
)


def _detail(row: Mapping[str, Any], note: str) -> dict[str, Any]:
    return {
        "flag": row["id"],
        "kind": row["kind"],
        "subject": row["subject_id"],
        "user": row["user_id"],
        "reasons": row["reasons"],
        "note": note[:500],
    }
