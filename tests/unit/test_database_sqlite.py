"""``typogram.db.database.Database`` on SQLite: a committed ``write()`` goes back to the
pool without a rollback (one hop to aiosqlite's thread fewer per write); a failed one
is rolled back, and the next write on that connection starts clean."""

from __future__ import annotations

from pathlib import Path

import aiosqlite
import pytest
from sqlalchemy import text

from typogram.db.database import Database


async def test_a_committed_write_is_not_rolled_back_a_failed_one_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rollbacks = [0]
    rollback = aiosqlite.Connection.rollback

    async def counted(self: aiosqlite.Connection) -> None:
        rollbacks[0] += 1
        await rollback(self)

    monkeypatch.setattr(aiosqlite.Connection, "rollback", counted)
    async with Database(f"sqlite:///{tmp_path / 'db.sqlite3'}") as db:
        async with db.write() as conn:
            await conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY)"))
        before = rollbacks[0]
        for i in range(20):
            async with db.write() as conn:
                await conn.execute(text("INSERT INTO t VALUES (:i)"), {"i": i})
        assert rollbacks[0] == before
        with pytest.raises(RuntimeError):
            async with db.write() as conn:
                await conn.execute(text("INSERT INTO t VALUES (100)"))
                raise RuntimeError("the caller fails mid-transaction")
        assert rollbacks[0] > before
        async with db.write() as conn:  # the same pooled connection, clean
            await conn.execute(text("INSERT INTO t VALUES (101)"))
        async with db.read() as conn:
            ids = (await conn.execute(text("SELECT id FROM t ORDER BY id"))).scalars().all()
        assert ids == [*range(20), 101]
