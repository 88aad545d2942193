"""The staff's queue of reported chat messages (``chat.report``; ``workers.chat``).

Rules:

1. A registered member reports a message of a room's history; the gateway
   puts the report on ``chat-messages`` and the ``chat`` worker stores it
   here once: its id comes from the message and the reporter
   (``rooms.chat.report_id``), so a report sent twice, or an event
   replayed, changes nothing. The row keeps a copy of the message, so the
   report outlives the message's deletion.
2. Staff (``roles.STAFF``) resolve (the report was right; they acted) or
   dismiss an ``open`` report exactly once: a conditional update, so of two
   concurrent decisions one wins and the other is a conflict.
3. Every decision is audited in the same transaction (``audit_log``,
   ``report.resolve`` / ``report.dismiss``, with the reviewer, the reported
   author and the note).
4. The queue is paged oldest first by a keyset cursor on ``(created_at, id)``,
   per status.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from typogram.accounts import audit_insert
from typogram.codes import ErrorCode
from typogram.cursors import decode_cursor, encode_cursor
from typogram.db.database import Database
from typogram.db.schema import chat_reports
from typogram.errors import AppError

Status = Literal["open", "resolved", "dismissed"]
STATUSES: tuple[Status, ...] = ("open", "resolved", "dismissed")
CURSOR = "chat-reports"  # a cursor of another listing is refused here


def row_of(data: Mapping[str, Any], ts: int) -> dict[str, Any]:
    """Rule 1: the stored row of a ``chat.report`` event."""
    message = data.get("message") or {}
    author = message.get("user") or {}
    reporter = data.get("reporter") or {}
    return {
        "id": str(data["id"])[:32],
        "room_id": str(data["room"])[:64],
        "message_id": str(message.get("id", ""))[:64],
        "author_id": str(author.get("id", ""))[:64],
        "author_name": str(author.get("name", ""))[:64],
        "text": str(message.get("text", "")),
        "sent_at": int(message.get("ts", 0)),
        "reporter_id": str(reporter.get("id", ""))[:64],
        "reason": str(data.get("reason", ""))[:200],
        "status": "open",
        "created_at": int(data.get("ts", ts)),
    }


def view(row: Mapping[str, Any]) -> dict[str, Any]:
    """The staff's view of a stored row."""
    return {
        "id": row["id"],
        "room": row["room_id"],
        "message": {
            "id": row["message_id"],
            "user": {"id": row["author_id"], "name": row["author_name"]},
            "text": row["text"],
            "ts": row["sent_at"],
        },
        "reporter_id": row["reporter_id"],
        "reason": row["reason"],
        "status": row["status"],
        "created_at": row["created_at"],
        "reviewed_by": row["reviewed_by"],
        "reviewed_at": row["reviewed_at"],
        "note": row["note"],
    }


async def record_in(conn: AsyncConnection, data: Mapping[str, Any], ts: int) -> bool:
    """Rule 1 inside the caller's transaction (the ``chat`` worker's batch): store a
    report unless it is stored already; True if it was new."""
    row = row_of(data, ts)
    t = chat_reports
    found = await conn.execute(select(t.c.id).where(t.c.id == row["id"]))
    if found.first() is not None:
        return False
    await conn.execute(t.insert().values(**row))
    return True


class ChatReports:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def page(
        self, status: Status, *, limit: int, cursor: str | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Rule 4: the reports in ``status``, oldest first; the next page's cursor or None."""
        t = chat_reports
        where = [t.c.status == status]
        if cursor is not None:
            created_at, last = decode_cursor(cursor, CURSOR)
            where.append(
                or_(t.c.created_at > created_at, and_(t.c.created_at == created_at, t.c.id > last))
            )
        statement = select(t).where(*where).order_by(t.c.created_at, t.c.id).limit(limit + 1)
        async with self.db.read(primary=True) as conn:
            rows = [dict(r) for r in (await conn.execute(statement)).mappings()]
        following = None
        if len(rows) > limit:
            last_row = rows[limit - 1]
            following = encode_cursor(CURSOR, last_row["created_at"], last_row["id"])
        return [view(row) for row in rows[:limit]], following

    async def decide(
        self, report: str, *, resolve: bool, actor: str, note: str, ip: str, now_ms: int
    ) -> dict[str, Any]:
        """Rules 2-3: decide an open report; raises ``AppError`` 404/409."""
        status: Status = "resolved" if resolve else "dismissed"
        t = chat_reports
        decided = {"status": status, "reviewed_by": actor, "reviewed_at": now_ms, "note": note}
        async with self.db.write() as conn:
            found = (await conn.execute(select(t).where(t.c.id == report))).mappings().first()
            if found is None:
                raise AppError(ErrorCode.NOT_FOUND, "no such report", fields={"report": "unknown"})
            changed = await conn.execute(
                update(t).where(t.c.id == report, t.c.status == "open").values(**decided)
            )
            if changed.rowcount != 1:
                raise AppError(ErrorCode.CONFLICT, "this report has been decided already")
            await conn.execute(
                audit_insert(
                    "report.resolve" if resolve else "report.dismiss",
                    "ok",
                    user_id=_account(str(found["author_id"])),
                    actor_id=actor,
                    ip=ip,
                    detail={
                        "report": report,
                        "room": found["room_id"],
                        "message": found["message_id"],
                        "author": found["author_id"],
                        "reporter": found["reporter_id"],
                        "note": note,
                    },
                    at_ms=now_ms,
                )
            )
        return view({**found, **decided})


def _account(user_id: str) -> str | None:
    """An audit row's user: a registered author; a guest (``guest:…``) has no account."""
    return user_id if user_id and len(user_id) <= 32 else None
