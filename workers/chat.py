"""``chat`` group: keeps ``chat_messages`` and ``chat_reports`` from ``chat-messages``.

* ``chat.message``: store the message once: an insert that skips an id
  already stored, so a replayed event changes nothing.
* ``chat.deleted`` (staff, ``chat.delete``): delete the stored message. The
  gateway keys every event of a room by the room, so a message's deletion
  is consumed after the message itself.
* ``chat.report``: queue the report for staff once (its id is derived from
  the message and the reporter, so reporting again changes nothing).

Events the log hands over side by side (one per room in flight) are stored
in one transaction (``handle_batch``), applied in the order given; messages
in a row go in as one multi-row insert. Every event is idempotent by itself,
so the group keeps no done-markers (``dedupe=False``): a message costs no
cache round trip and leaves no key behind.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete
from sqlalchemy.dialects import mysql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from typogram.chat_reports import record_in
from typogram.db.schema import chat_messages
from typogram.ports import Event
from typogram.topics import CHAT_DELETED, CHAT_MESSAGES, CHAT_REPORT
from workers.runtime import Group

if TYPE_CHECKING:
    from typogram.platform import Platform

# Built once, executed with a list of rows: a message already stored (a replay) is
# kept as it is; unlike INSERT IGNORE, any other error still raises.
_INSERT_MYSQL = mysql.insert(chat_messages).on_duplicate_key_update(id=chat_messages.c.id)
_INSERT_SQLITE = sqlite.insert(chat_messages).on_conflict_do_nothing()


async def store_message(platform: Platform, topic: str, event: Event) -> None:
    await store_messages(platform, topic, [event])


async def store_messages(platform: Platform, topic: str, events: Sequence[Event]) -> None:
    """Apply ``events`` in order in one transaction: runs of messages as one insert."""
    del topic
    insert = _INSERT_MYSQL if platform.db.dialect == "mysql" else _INSERT_SQLITE
    async with platform.db.write() as conn:
        rows: list[dict[str, Any]] = []
        for event in events:
            if event.type == CHAT_DELETED or event.type == CHAT_REPORT:
                if rows:  # what came before it goes in first
                    await conn.execute(insert, rows)
                    rows = []
                if event.type == CHAT_DELETED:
                    await _delete(conn, event.data)
                else:
                    await record_in(conn, event.data, event.ts)
            else:
                rows.append(message_row(event))
        if rows:
            await conn.execute(insert, rows)


def message_row(event: Event) -> dict[str, Any]:
    """The ``chat_messages`` row of a ``chat.message`` event."""
    data = event.data
    user = data.get("user") or {}
    return {
        "id": str(data["id"])[:32],
        "room_id": str(data["room"])[:64],
        "user_id": str(user.get("id", ""))[:64],
        "user_name": str(user.get("name", ""))[:64],
        "text": str(data["text"]),
        "created_at": int(data.get("ts", event.ts)),
    }


async def _delete(conn: AsyncConnection, data: Any) -> None:
    t = chat_messages
    await conn.execute(
        delete(t).where(t.c.id == str(data["id"])[:32], t.c.room_id == str(data["room"])[:64])
    )


GROUP = Group(
    name="chat",
    topics=(CHAT_MESSAGES,),
    handle=store_message,
    handle_batch=store_messages,
    dedupe=False,  # every event is idempotent by itself (see above)
)
