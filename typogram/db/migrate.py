"""Apply the schema migrations (Alembic) on a ``Database``'s primary."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from typogram.db.database import Database, async_url

MIGRATIONS = Path(__file__).parent / "migrations"


def _config(connection: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


async def upgrade(database: Database, revision: str = "head") -> None:
    """Bring the schema up to ``revision``; safe to run on every start."""
    async with database.write() as conn:
        await conn.run_sync(lambda sync: command.upgrade(_config(sync), revision))


async def current_revision(database: Database) -> str | None:
    from alembic.runtime.migration import MigrationContext

    async with database.read(primary=True) as conn:
        return await conn.run_sync(
            lambda sync: MigrationContext.configure(sync).get_current_revision()
        )


async def create_database_if_missing(url: str) -> None:
    """MySQL only: create the URL's database (utf8mb4) so a first start needs no DBA step."""
    full = make_url(async_url(url))
    if not full.drivername.startswith("mysql") or not full.database:
        return
    name = full.database
    if not name.replace("_", "").isalnum():
        raise ValueError(f"refusing to create a database with name {name!r}")
    engine = create_async_engine(full.set(database=""), connect_args={"connect_timeout": 5})
    try:
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    f"CREATE DATABASE IF NOT EXISTS `{name}` "
                    "CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
                )
            )
    finally:
        await engine.dispose()
