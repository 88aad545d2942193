"""Migration 0014 renames the users whose names the new rules refuse, on SQLite and MariaDB."""

from __future__ import annotations

import importlib
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select, text

from tests.conftest import MYSQL_SERVER
from typogram.db.database import Database
from typogram.db.migrate import upgrade
from typogram.db.schema import audit_log, users
from typogram.text_rules import hidden_character, username_key

pytestmark = pytest.mark.integration

MIGRATION = importlib.import_module("typogram.db.migrations.versions.0014_visible_names")


@pytest.fixture(params=["sqlite", "mariadb"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'migration.sqlite3'}"
        return
    name = f"typogram_mig_{uuid.uuid4().hex[:8]}"
    engine = create_engine(MYSQL_SERVER.replace("mysql://", "mysql+pymysql://", 1))
    with engine.begin() as conn:
        conn.execute(text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
    try:
        yield f"{MYSQL_SERVER}/{name}"
    finally:
        with engine.begin() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
        engine.dispose()


def _user(username: str, display_name: str, key: str | None = None) -> dict[str, object]:
    now = int(time.time() * 1000)
    user_id = uuid.uuid4().hex
    return {
        "id": user_id,
        "username": username,
        "username_key": key if key is not None else username.lower(),
        "email": f"{user_id}@example.com",
        "password_hash": "x",
        "display_name": display_name,
        "referral_code": user_id[:8].upper(),
        "created_at": now,
        "updated_at": now,
    }


async def test_names_that_now_fail_are_renamed_and_audited(database_url: str) -> None:
    rows = [
        _user("admin", "The admin"),
        _user("admin\n", "admin"),  # let in by ``$`` beside ``admin``
        _user("ad", "short"),  # shorter than the rule, from before it
        _user("bob", "bob\u202egnp.exe"),
        _user("carol", "\u200b\u200b"),  # nothing visible left
    ]
    async with Database(database_url) as db:
        await upgrade(db, MIGRATION.down_revision)
        async with db.write() as conn:
            await conn.execute(users.insert(), rows)
        await upgrade(db, "0014")
        async with db.read(primary=True) as conn:
            # The columns as of 0014 (later migrations add to ``users``).
            as_of = select(users.c.id, users.c.username, users.c.username_key, users.c.display_name)
            found = {row.id: row for row in (await conn.execute(as_of)).all()}
            audits = (await conn.execute(select(audit_log).order_by(audit_log.c.id))).all()
    admin, twin, short, bob, carol = (found[str(row["id"])] for row in rows)
    assert (admin.username, admin.display_name) == ("admin", "The admin")
    assert twin.username == "admin_1" and twin.username_key == username_key("admin_1")
    assert short.username == "ad_1"
    assert bob.display_name == "bobgnp.exe"
    assert carol.display_name == "carol"
    keys = [row.username_key for row in found.values()]
    assert len(set(keys)) == len(keys)
    for row in found.values():
        assert MIGRATION.USERNAME.fullmatch(row.username)
        assert hidden_character(row.display_name) is None
    renamed = {(a.user_id, a.action): json.loads(a.detail) for a in audits}
    assert renamed[(twin.id, "username_renamed")]["from"] == "admin\n"
    assert renamed[(short.id, "username_renamed")]["to"] == "ad_1"
    assert renamed[(bob.id, "display_name_cleaned")]["from"] == "bob\u202egnp.exe"
    assert len(audits) == 4
