"""The ``chat`` group stores a batch as its events one after another would, on both
backends: each message once (a replay or a repeat changes nothing), a deletion or a
report where it stands in the batch, and a malformed event dead-lettered alone while
its batch-mates are stored."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import func, select

from tests.conftest import cheap_passwords, empty_tables
from tests.integration.test_pipeline import eventually
from typogram.db.schema import chat_messages, chat_reports
from typogram.platform import Platform, open_platform
from typogram.ports import Event
from typogram.settings import Settings
from typogram.topics import CHAT_DELETED, CHAT_MESSAGE, CHAT_MESSAGES, CHAT_REPORT
from workers import chat, dlq
from workers.runtime import GroupRunner

pytestmark = pytest.mark.integration


@pytest.fixture
async def platform(backend_settings: Settings) -> AsyncIterator[Platform]:
    """Retries without waiting, so a dead letter comes within the test's patience."""
    settings = backend_settings.replace(worker_max_retries=1, worker_retry_backoff_s=0.01)
    async with open_platform(settings, migrate=True, passwords=cheap_passwords()) as p:
        try:
            yield p
        finally:
            await empty_tables(p)


def message(room: str, n: int, text: str = "") -> Event:
    data = {
        "room": room,
        "id": f"{room[:24]}m{n:07d}",
        "user": {"id": f"u{n % 3}", "name": f"User {n % 3}", "guest": False},
        "text": text or f"message {n}",
        "ts": 1_767_225_600_000 + n,
    }
    return Event(type=CHAT_MESSAGE, data=data, key=room, id=uuid.uuid4().hex)


def deletion(room: str, message_id: str) -> Event:
    data = {"room": room, "id": message_id, "by": "staff", "ts": 1_767_225_700_000}
    return Event(type=CHAT_DELETED, data=data, key=room, id=uuid.uuid4().hex)


def report(room: str, target: Event) -> Event:
    data = {
        "id": f"r{target.data['id']}"[:32],
        "room": room,
        "message": dict(target.data),
        "reporter": {"id": "u9", "name": "Reporter", "guest": False},
        "reason": "spam",
        "ts": 1_767_225_800_000,
    }
    return Event(type=CHAT_REPORT, data=data, key=room, id=uuid.uuid4().hex)


async def stored(platform: Platform, room: str) -> list[dict[str, Any]]:
    t = chat_messages
    async with platform.db.read(primary=True) as conn:
        found = await conn.execute(select(t).where(t.c.room_id == room).order_by(t.c.id))
        return [dict(row) for row in found.mappings()]


async def reports_of(platform: Platform, room: str) -> int:
    t = chat_reports
    async with platform.db.read(primary=True) as conn:
        found = await conn.execute(select(func.count()).where(t.c.room_id == room))
        return int(found.scalar_one())


async def test_a_batch_stores_each_message_once(platform: Platform) -> None:
    room = f"room-{uuid.uuid4().hex[:8]}"
    first, second, third = (message(room, n) for n in (1, 2, 3))
    await chat.store_message(platform, CHAT_MESSAGES, first)
    await chat.store_messages(platform, CHAT_MESSAGES, [first, second, second, third])
    rows = await stored(platform, room)
    assert [r["id"] for r in rows] == [e.data["id"] for e in (first, second, third)]
    assert rows[1] == {
        "id": second.data["id"],
        "room_id": room,
        "user_id": "u2",
        "user_name": "User 2",
        "text": "message 2",
        "created_at": second.data["ts"],
    }
    await chat.store_messages(platform, CHAT_MESSAGES, [third, first])  # a replay
    assert await stored(platform, room) == rows


async def test_deletions_and_reports_apply_where_they_stand_in_the_batch(
    platform: Platform,
) -> None:
    room = f"room-{uuid.uuid4().hex[:8]}"
    old, gone, kept, last = (message(room, n) for n in (1, 2, 3, 4))
    await chat.store_message(platform, CHAT_MESSAGES, old)
    batch = [
        gone,
        deletion(room, gone.data["id"]),  # after its message, in the same batch
        kept,
        report(room, kept),
        report(room, kept),  # reported twice: one row
        deletion(room, old.data["id"]),
        last,
    ]
    await chat.store_messages(platform, CHAT_MESSAGES, batch)
    assert [r["id"] for r in await stored(platform, room)] == [kept.data["id"], last.data["id"]]
    assert await reports_of(platform, room) == 1
    await chat.store_messages(platform, CHAT_MESSAGES, batch[2:])  # a replay from ``kept`` on
    assert [r["id"] for r in await stored(platform, room)] == [kept.data["id"], last.data["id"]]
    assert await reports_of(platform, room) == 1


async def test_a_malformed_event_is_dead_lettered_alone(platform: Platform) -> None:
    """Concurrent events share one batch; the bad one fails it, then each retries alone."""
    room = f"room-{uuid.uuid4().hex[:8]}"
    good = [message(room, n) for n in (1, 2, 3)]
    whole = message(room, 4)
    text_less = {k: v for k, v in whole.data.items() if k != "text"}
    bad = Event(type=CHAT_MESSAGE, data=text_less, key=room, id=whole.id)
    runner = GroupRunner(platform, chat.GROUP)
    assert runner.batcher is not None
    events = [good[0], bad, good[1], good[2]]
    await asyncio.gather(*(runner.process(CHAT_MESSAGES, e.encode()) for e in events))
    assert runner.batcher.batches >= 1 and runner.batcher.events == len(events)
    assert [r["id"] for r in await stored(platform, room)] == [e.data["id"] for e in good]

    async def dead() -> dlq.Entry | None:
        for entry in await dlq.read(platform.events, CHAT_MESSAGES, 1000):
            if entry.id == bad.id:
                return entry
        return None

    entry = await eventually(dead)
    assert entry.last.attempts == 2 and entry.last.group == "chat"
    # No done-markers: the group keeps nothing in the cache per event.
    assert runner.group.dedupe is False
