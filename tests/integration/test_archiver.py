"""Archiving old rows: SQLite and MariaDB into the archive port, nothing lost."""

from __future__ import annotations

import datetime as dt
import gzip

import orjson
import pytest
from sqlalchemy import func, select

from typogram.db.archiver import Month, archive_key, archive_month, archive_older_than
from typogram.db.schema import chat_messages
from typogram.platform import Platform

pytestmark = pytest.mark.integration


def _ms(year: int, month: int, day: int = 1) -> int:
    return int(dt.datetime(year, month, day, tzinfo=dt.UTC).timestamp() * 1000)


async def _insert(platform: Platform, rows: list[tuple[str, int]]) -> None:
    async with platform.db.write() as conn:
        for message_id, created in rows:
            await conn.execute(
                chat_messages.insert().values(
                    id=message_id,
                    room_id="lobby",
                    user_id="u",
                    user_name="ann",
                    text=f"hello {message_id}",
                    created_at=created,
                )
            )


async def _count(platform: Platform) -> int:
    async with platform.db.read(primary=True) as conn:
        return int(
            (await conn.execute(select(func.count()).select_from(chat_messages))).scalar_one()
        )


async def test_months_before_the_cutoff_move_to_the_archive(platform: Platform) -> None:
    await _insert(
        platform,
        [
            ("a1", _ms(2026, 1, 3)),
            ("a2", _ms(2026, 1, 31)),
            ("b1", _ms(2026, 2, 14)),
            ("c1", _ms(2026, 4, 2)),
        ],
    )
    moved = await archive_older_than(
        platform.db, platform.archive, chat_messages, dt.datetime(2026, 4, 15, tzinfo=dt.UTC)
    )
    assert moved == {"2026-01": 2, "2026-02": 1, "2026-03": 0}
    assert await _count(platform) == 1
    stored = await platform.archive.get(archive_key(chat_messages, Month(2026, 1)))
    assert stored is not None
    rows = [orjson.loads(line) for line in gzip.decompress(stored).splitlines()]
    assert [row["id"] for row in rows] == ["a1", "a2"]
    assert rows[0]["text"] == "hello a1"


async def test_running_again_is_harmless(platform: Platform) -> None:
    await _insert(platform, [("x", _ms(2025, 12, 24))])
    assert await archive_month(platform.db, platform.archive, chat_messages, Month(2025, 12)) == 1
    assert await archive_month(platform.db, platform.archive, chat_messages, Month(2025, 12)) == 0
    assert await platform.archive.list("chat_messages/") == ["chat_messages/2025-12.jsonl.gz"]


def test_month_arithmetic() -> None:
    assert Month(2026, 12).next() == Month(2027, 1)
    assert str(Month(2026, 3)) == "2026-03"
    assert Month(2026, 2).start_ms() == _ms(2026, 2)
