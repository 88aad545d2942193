"""Backup and restore on a small data set: MariaDB (with its GTID position) and Redis.

The database lives on the test primary (binary log on, so the dump records
its GTID position); Redis is a server of its own whose snapshot is loaded by
a second server, as an operator would after losing the first.
"""

from __future__ import annotations

import asyncio
import gzip
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.clusters import MariaDBPair, RedisServer
from tests.conftest import cheap_passwords, make_settings
from typogram import backup
from typogram.db.schema import metadata
from typogram.platform import open_platform

pytestmark = pytest.mark.integration


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis")
    server.start()
    yield server
    server.stop()


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "roles", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def checksums(pair: MariaDBPair, database: str) -> dict[str, int]:
    tables = ", ".join(f"`{database}`.`{t.name}`" for t in metadata.sorted_tables)
    return {
        row[0].split(".", 1)[1]: row[1] for row in pair.sql("primary", f"CHECKSUM TABLE {tables}")
    }


async def test_a_backup_restores_every_row_the_schema_and_the_redis_data(
    mariadb_pair: MariaDBPair, redis_server: RedisServer, tmp_path: Path
) -> None:
    source = f"typogram_bk_{uuid.uuid4().hex[:8]}"
    restored = f"{source}_restored"
    settings = make_settings(
        data_dir=str(tmp_path),
        database_url=f"{mariadb_pair.primary_server}/{source}",
        redis_url=redis_server.url,
    )
    async with open_platform(settings, migrate=True, passwords=cheap_passwords()) as platform:
        for n in range(5):
            user = await platform.accounts.create_user(f"bk{n}{source[-8:]}", f"b{n}@x.io", "h")
            await platform.accounts.update_profile(user.id, {"bio": f"bio {n} ✓ 'quoted'"})
            await platform.accounts.audit("login", "success", user_id=user.id, ip="10.0.0.1")
        await platform.cache.zadd("leaderboard:words:daily", {"a": 120.5, "b": 99.0})
    env = {
        "TYPOGRAM_DATABASE_URL": settings.database_url,
        "TYPOGRAM_REDIS_URL": redis_server.url,
        "TYPOGRAM_LOG_JSON": "false",
    }
    try:
        made = cli("backup", "--to", str(tmp_path / "backups"), env=env)
        assert made.returncode == 0, made.stderr
        folder = Path(made.stdout.strip().splitlines()[-1])
        manifest = backup.read_manifest(folder)
        assert manifest.gtid_position  # the snapshot's place in the binary log
        assert manifest.schema_revision
        assert "password" not in manifest.database

        rdb = tmp_path / "redis-restored" / "dump.rdb"
        done = cli(
            "restore",
            str(folder),
            "--database-url",
            f"{mariadb_pair.primary_server}/{restored}",
            "--redis-rdb",
            str(rdb),
            env=env,
        )
        assert done.returncode == 0, done.stderr
        assert checksums(mariadb_pair, restored) == checksums(mariadb_pair, source)
        show = "SHOW CREATE TABLE `{}`.test_results"
        assert (
            mariadb_pair.sql("primary", show.format(restored))[0][1]
            == mariadb_pair.sql("primary", show.format(source))[0][1]
        )  # partitions and indexes too

        second = RedisServer(rdb.parent)
        second.start()
        try:
            board = second.ask("ZRANGE", "leaderboard:words:daily", 0, -1, "WITHSCORES")
            assert board == [[b"b", 99.0], [b"a", 120.5]]
        finally:
            second.stop()

        again = cli(
            "restore",
            str(folder),
            "--database-url",
            f"{mariadb_pair.primary_server}/{restored}",
            env=env,
        )
        assert again.returncode == 1 and "already has" in again.stderr  # never over live data
    finally:
        for name in (source, restored):
            mariadb_pair.sql("primary", f"DROP DATABASE IF EXISTS `{name}`")


async def test_a_damaged_backup_is_refused(mariadb_pair: MariaDBPair, tmp_path: Path) -> None:
    source = f"typogram_bk_{uuid.uuid4().hex[:8]}"
    settings = make_settings(
        data_dir=str(tmp_path), database_url=f"{mariadb_pair.primary_server}/{source}"
    )
    async with open_platform(settings, migrate=True, passwords=cheap_passwords()):
        pass
    try:
        import datetime as dt

        folder = await asyncio.to_thread(
            backup.backup, settings, tmp_path, redis=False, now=dt.datetime.now(dt.UTC)
        )
        with gzip.open(folder / backup.DUMP, "ab") as dump:
            dump.write(b"DROP TABLE users;\n")  # tampered with, or cut short
        with pytest.raises(backup.BackupError, match="does not match the manifest"):
            backup.restore_database(folder, f"{mariadb_pair.primary_server}/{source}_x")
    finally:
        mariadb_pair.sql("primary", f"DROP DATABASE IF EXISTS `{source}`")
        mariadb_pair.sql("primary", f"DROP DATABASE IF EXISTS `{source}_x`")
