"""``typogram backup`` and ``typogram restore``: MariaDB dumps and Redis RDB snapshots.

A backup is one folder, ``typogram-<UTC time>/``:

* ``mariadb.sql.gz``: ``mariadb-dump --single-transaction`` of the database
  (one consistent InnoDB snapshot, taken without locking writers), with the
  GTID position of that snapshot when the server keeps a binary log
  (``--master-data=2 --gtid``): replaying the binary logs from that position
  brings a restore up to any later moment.
* ``redis.rdb``: the master's data as ``redis-cli --rdb`` streams it (the
  same snapshot a replica starts from), found through Sentinel when
  ``redis_sentinels`` is set.
* ``manifest.json``: when, from where (no passwords), the GTID position, the
  schema revision and the SHA-256 and size of every file. Restore refuses a
  folder whose files do not match it.

Restore loads the dump into a database that must be empty (or missing:
it is created), and copies the RDB file where a Redis server that is then
started will load it. Passwords go to the clients through the environment
(``MYSQL_PWD``, ``REDISCLI_AUTH``), never on a command line.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any, Final
from urllib.parse import urlsplit

from sqlalchemy.engine import make_url

from typogram.settings import Settings

DUMP: Final = "mariadb.sql.gz"
RDB: Final = "redis.rdb"
MANIFEST: Final = "manifest.json"
CHUNK: Final = 1 << 20
_GTID_LINE: Final = re.compile(rb"gtid_slave_pos\s*=\s*'([0-9,\-\s]*)'")


class BackupError(RuntimeError):
    """A client failed or a backup folder is not what its manifest says; the message says which."""


@dataclass
class Manifest:
    created_at: str
    database: str
    gtid_position: str = ""
    schema_revision: str = ""
    redis: str = ""
    files: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class MySQLTarget:
    host: str
    port: int
    user: str
    password: str
    database: str

    @classmethod
    def from_url(cls, url: str) -> MySQLTarget:
        parsed = make_url(url.replace("mysql+aiomysql://", "mysql://", 1))
        if not parsed.database:
            raise BackupError(f"the database URL names no database: {parsed!r}")
        return cls(
            parsed.host or "127.0.0.1",
            parsed.port or 3306,
            parsed.username or "root",
            parsed.password or "",
            parsed.database,
        )

    def args(self) -> list[str]:
        return [f"--host={self.host}", f"--port={self.port}", f"--user={self.user}"]

    def env(self) -> dict[str, str]:
        return {**os.environ, "MYSQL_PWD": self.password}

    def describe(self) -> str:
        return f"mysql://{self.user}@{self.host}:{self.port}/{self.database}"


def _client(*names: str) -> str:
    for name in names:
        if found := shutil.which(name):
            return found
    raise BackupError(f"{names[0]} is not installed (Debian: mariadb-client / redis-tools)")


def _sql(target: MySQLTarget, statement: str, database: str | None = None) -> str:
    command = [_client("mariadb", "mysql"), *target.args(), "--batch", "--skip-column-names"]
    command += ["-e", statement]
    if database:
        command.append(database)
    done = subprocess.run(command, env=target.env(), capture_output=True, check=False)
    if done.returncode:
        raise BackupError(f"mariadb: {done.stderr.decode(errors='replace').strip()}")
    return done.stdout.decode().strip()


def _digest(path: Path) -> dict[str, Any]:
    sha = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            sha.update(chunk)
    return {"sha256": sha.hexdigest(), "bytes": path.stat().st_size}


def dump_database(target: MySQLTarget, out: Path) -> tuple[str, str]:
    """Dump ``target`` gzip'd to ``out``; its GTID position and schema revision (or "")."""
    binlog = _sql(target, "SELECT @@log_bin") == "1"
    command = [
        _client("mariadb-dump", "mysqldump"),
        *target.args(),
        "--single-transaction",  # one consistent snapshot, writers never blocked
        "--quick",
        "--routines",
        "--triggers",
        "--events",
        "--hex-blob",
        "--default-character-set=utf8mb4",
        *(["--master-data=2", "--gtid"] if binlog else []),
        target.database,
    ]
    gtid = b""
    # Migrations do not run during a backup: read beside the snapshot, it is the same.
    try:
        revision = _sql(target, "SELECT version_num FROM alembic_version", target.database)
    except BackupError:  # not migrated by typogram: nothing to record
        revision = ""
    # stderr to a file, not a pipe: a client that fills a pipe nobody reads would hang.
    with gzip.open(out, "wb") as sink, tempfile.TemporaryFile() as errors:
        with subprocess.Popen(
            command, env=target.env(), stdout=subprocess.PIPE, stderr=errors
        ) as proc:
            assert proc.stdout is not None
            for line in proc.stdout:
                if not gtid and (found := _GTID_LINE.search(line)):
                    gtid = found.group(1).strip()
                sink.write(line)
        if proc.returncode:
            raise BackupError(f"mariadb-dump: {_text(errors)}")
    return gtid.decode(), revision


def _text(errors: IO[bytes]) -> str:
    errors.seek(0)
    return errors.read().decode(errors="replace").strip()[-2_000:]


def redis_master(settings: Settings) -> str:
    """``redis://…`` of the master to snapshot: the URL, or what Sentinel names."""
    if not settings.redis_sentinels:
        return settings.redis_url
    from redis.sentinel import Sentinel

    from typogram.adapters.redis_endpoint import parse_address, with_address

    sentinel = Sentinel(
        [parse_address(a) for a in settings.redis_sentinels],
        sentinel_kwargs={"password": settings.redis_sentinel_password or None},
        socket_timeout=settings.backend_connect_timeout_s,
    )
    try:
        host, port = sentinel.discover_master(settings.redis_sentinel_master)
    finally:
        for client in sentinel.sentinels:
            client.close()
    return with_address(settings.redis_url or "redis://", str(host), int(port))


def snapshot_redis(url: str, out: Path) -> None:
    """The server's current data as an RDB file (``redis-cli --rdb``)."""
    parts = urlsplit(url)
    command = [
        _client("redis-cli"),
        "-h",
        parts.hostname or "127.0.0.1",
        "-p",
        str(parts.port or 6379),
    ]
    if parts.username:
        command += ["--user", parts.username]
    if parts.scheme == "rediss":
        command.append("--tls")
    env = dict(os.environ)
    if parts.password:
        env["REDISCLI_AUTH"] = parts.password
    done = subprocess.run([*command, "--rdb", str(out)], env=env, capture_output=True, check=False)
    if done.returncode or not out.exists():
        raise BackupError(f"redis-cli --rdb: {done.stderr.decode(errors='replace').strip()}")


def backup(settings: Settings, into: Path, *, redis: bool = True, now: dt.datetime) -> Path:
    """Write one backup folder under ``into``; its path."""
    if not settings.uses_mysql:
        raise BackupError("typogram backup needs MariaDB/MySQL (TYPOGRAM_DATABASE_URL)")
    target = MySQLTarget.from_url(settings.sql_url)
    folder = into / f"typogram-{now.strftime('%Y%m%dT%H%M%SZ')}"
    folder.mkdir(parents=True)
    manifest = Manifest(created_at=now.isoformat(), database=target.describe())
    manifest.gtid_position, manifest.schema_revision = dump_database(target, folder / DUMP)
    if redis and settings.uses_redis:
        url = redis_master(settings)
        snapshot_redis(url, folder / RDB)
        parts = urlsplit(url)
        manifest.redis = f"{parts.hostname}:{parts.port or 6379}"
    for name in (DUMP, RDB):
        if (folder / name).exists():
            manifest.files[name] = _digest(folder / name)
    (folder / MANIFEST).write_text(json.dumps(asdict(manifest), indent=2) + "\n")
    return folder


def read_manifest(folder: Path) -> Manifest:
    """The folder's manifest, once every file it lists has its recorded digest."""
    try:
        manifest = Manifest(**json.loads((folder / MANIFEST).read_text()))
    except (OSError, ValueError, TypeError) as exc:
        raise BackupError(f"{folder} has no readable {MANIFEST}: {exc}") from exc
    for name, recorded in manifest.files.items():
        path = folder / name
        if not path.is_file() or _digest(path) != recorded:
            raise BackupError(f"{path} does not match the manifest: refusing to restore")
    return manifest


def restore_database(folder: Path, database_url: str, *, force: bool = False) -> Manifest:
    """Load the folder's dump into ``database_url``'s database (created when missing).

    Refuses a database that already has tables unless ``force``: a restore
    over live data would mix the two.
    """
    manifest = read_manifest(folder)
    if DUMP not in manifest.files:
        raise BackupError(f"{folder} holds no database dump")
    target = MySQLTarget.from_url(database_url)
    name = target.database.replace("`", "``")
    _sql(target, f"CREATE DATABASE IF NOT EXISTS `{name}` CHARACTER SET utf8mb4")
    tables = _sql(
        target,
        "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = "
        f"'{target.database.replace(chr(39), chr(39) * 2)}'",
    )
    if int(tables or 0) and not force:
        raise BackupError(
            f"{target.describe()} already has {tables} tables: restore into an empty database"
        )
    command = [_client("mariadb", "mysql"), *target.args(), target.database]
    with tempfile.TemporaryFile() as errors:
        with subprocess.Popen(
            command, env=target.env(), stdin=subprocess.PIPE, stderr=errors
        ) as proc:
            assert proc.stdin is not None
            try:
                with gzip.open(folder / DUMP, "rb") as source:
                    while chunk := source.read(CHUNK):
                        proc.stdin.write(chunk)
            except BrokenPipeError:
                pass  # the client stopped early: its exit code and message say why
        if proc.returncode:
            raise BackupError(f"mariadb: {_text(errors)}")
    return manifest


def restore_redis(folder: Path, rdb_path: Path) -> None:
    """Place the snapshot as ``rdb_path`` (the stopped server's ``dir``/``dbfilename``)."""
    manifest = read_manifest(folder)
    if RDB not in manifest.files:
        raise BackupError(f"{folder} holds no Redis snapshot")
    rdb_path.parent.mkdir(parents=True, exist_ok=True)
    partial = rdb_path.with_name(rdb_path.name + ".partial")
    shutil.copyfile(folder / RDB, partial)
    partial.replace(rdb_path)
