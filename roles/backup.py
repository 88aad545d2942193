"""``typogram backup`` and ``typogram restore`` (``typogram.backup`` does the work)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from typogram.settings import Settings


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    backup = commands.add_parser(
        "backup", help="dump MariaDB (with its GTID position) and snapshot Redis into a folder"
    )
    backup.add_argument("--to", required=True, help="folder that receives typogram-<time>/")
    backup.add_argument("--no-redis", action="store_true", help="the database only")
    restore = commands.add_parser(
        "restore", help="load a backup folder into an empty database; place its Redis snapshot"
    )
    restore.add_argument("folder", help="a typogram-<time>/ folder written by typogram backup")
    restore.add_argument(
        "--database-url", help="restore into this database (default: TYPOGRAM_DATABASE_URL)"
    )
    restore.add_argument(
        "--redis-rdb", help="write the Redis snapshot here (the stopped server's dump.rdb)"
    )
    restore.add_argument(
        "--force", action="store_true", help="load even if the database already has tables"
    )


def run(settings: Settings, args: argparse.Namespace) -> int:
    """``typogram backup`` / ``restore``: 0 done, 1 a client or check failed."""
    import datetime as dt

    from typogram import backup

    try:
        if args.command == "backup":
            now = dt.datetime.now(dt.UTC)
            folder = backup.backup(settings, Path(args.to), redis=not args.no_redis, now=now)
            print(folder)
            return 0
        url = args.database_url or settings.sql_url
        manifest = backup.restore_database(Path(args.folder), url, force=args.force)
        print(f"restored {manifest.database} as of {manifest.created_at}")
        if manifest.gtid_position:
            print(f"replay binary logs from GTID {manifest.gtid_position} for later writes")
        if args.redis_rdb:
            backup.restore_redis(Path(args.folder), Path(args.redis_rdb))
            print(f"Redis snapshot written to {args.redis_rdb}: start the server on it")
        return 0
    except (backup.BackupError, OSError) as exc:
        print(f"typogram: {exc}", file=sys.stderr)
        return 1
