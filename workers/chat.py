"""``chat`` group: keeps ``chat_messages`` and ``chat_reports`` from ``chat-messages``.

* ``chat.message``: store the message once (a replayed event finds its row).
* ``chat.deleted`` (staff, ``chat.delete``): delete the stored message. The
  gateway keys every event of a room by the room, so a message's deletion
  is consumed after the message itself.
* ``chat.report``: queue the report for staff once (its id is derived from
  the message and the reporter, so reporting again changes nothing).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select

from typogram.chat_reports import ChatReports
from typogram.db.schema import chat_messages
from typogram.ports import Event
from typogram.topics import CHAT_DELETED, CHAT_MESSAGES, CHAT_REPORT
from workers.runtime import Group

if TYPE_CHECKING:
    from typogram.platform import Platform


async def store_message(platform: Platform, topic: str, event: Event) -> None:
    if event.type == CHAT_DELETED:
        await _delete(platform, event.data)
    elif event.type == CHAT_REPORT:
        await ChatReports(platform.db).record(event.data, event.ts)
    else:
        await _insert(platform, event)


async def _insert(platform: Platform, event: Event) -> None:
    """Insert once: a replayed event finds its row and does nothing."""
    data = event.data
    user = data.get("user") or {}
    row = {
        "id": str(data["id"])[:32],
        "room_id": str(data["room"])[:64],
        "user_id": str(user.get("id", ""))[:64],
        "user_name": str(user.get("name", ""))[:64],
        "text": str(data["text"]),
        "created_at": int(data.get("ts", event.ts)),
    }
    async with platform.db.write() as conn:
        exists = await conn.execute(
            select(chat_messages.c.id).where(chat_messages.c.id == row["id"])
        )
        if exists.first() is None:
            await conn.execute(chat_messages.insert().values(**row))


async def _delete(platform: Platform, data: Any) -> None:
    t = chat_messages
    async with platform.db.write() as conn:
        await conn.execute(
            delete(t).where(t.c.id == str(data["id"])[:32], t.c.room_id == str(data["room"])[:64])
        )


GROUP = Group(name="chat", topics=(CHAT_MESSAGES,), handle=store_message)
