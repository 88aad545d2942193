"""``chat`` group: stores every chat message from ``chat-messages`` in ``chat_messages``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import select

from typogram.db.schema import chat_messages
from typogram.ports import Event
from typogram.topics import CHAT_MESSAGES
from workers.runtime import Group

if TYPE_CHECKING:
    from typogram.platform import Platform


async def store_message(platform: Platform, topic: str, event: Event) -> None:
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


GROUP = Group(name="chat", topics=(CHAT_MESSAGES,), handle=store_message)
