"""Shared pieces of the gateway benchmarks: server processes, /proc readings, picows clients.

* ``GatewayProcess``: one ``typogram gateway`` subprocess on a migrated
  SQLite data dir (or ``role="serve"``: the whole platform in one process,
  embedded), with the open-file limit raised to the hard limit, its output
  in a log file; ``stop()`` sends SIGTERM and waits.
* ``rss_kib`` / ``cpu_s``: VmRSS and utime+stime of a process from /proc.
* ``Peer``: a picows listener that says hello with a guest token, counts
  frames, hands each decoded frame to ``on_frame`` and remembers the close.

Everything targets 127.0.0.1 and every run is bounded in time.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

import orjson
import redis
from picows import WSFrame, WSListener, WSMsgType, WSTransport

from typogram.settings import load
from typogram.tokens import TokenService

SECRET = "bench-secret-" + "z" * 40
CLK_TCK = os.sysconf("SC_CLK_TCK")


def raise_nofile() -> int:
    """Raise the soft open-file limit to the hard one; returns the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def token_service() -> TokenService:
    return TokenService(load(env={}, environment="test", jwt_secret=SECRET))


def guest_tokens(count: int, prefix: str = "b") -> list[str]:
    tokens = token_service()
    return [tokens.issue_guest(f"{prefix}{i}")[0] for i in range(count)]


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def cpu_s(pid: int) -> float:
    """utime + stime of a process, in seconds."""
    return sum(cpu_times(pid))


def cpu_times(pid: int) -> tuple[float, float]:
    """(utime, stime) of a process, in seconds: user space and kernel apart."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK  # fields 14 and 15 of stat(5)


def percentile(samples: list[float], q: float) -> float:
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def base_env(data_dir: str, **settings: object) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TYPOGRAM_")}
    env.update(
        TYPOGRAM_ENVIRONMENT="test",
        TYPOGRAM_JWT_SECRET=SECRET,
        TYPOGRAM_DATA_DIR=data_dir,
        TYPOGRAM_LOG_LEVEL="WARNING",
        # Several processes per run: no metrics listener each (a fixed port would clash).
        TYPOGRAM_METRICS_PORT="0",
        # Load comes from one address: the per-IP quotas would refuse it.
        TYPOGRAM_REGISTER_PER_IP_PER_HOUR="100000000",
        TYPOGRAM_GUEST_TOKENS_PER_IP_PER_HOUR="100000000",
        TYPOGRAM_LOGIN_ATTEMPTS_PER_IP_PER_15MIN="100000000",
    )
    env.update({f"TYPOGRAM_{k.upper()}": str(v) for k, v in settings.items()})
    return env


def migrated_dir() -> str:
    """A fresh data dir with the SQLite schema (gateway-only processes do not migrate)."""
    data_dir = tempfile.mkdtemp(prefix="typogram-bench-")
    subprocess.run(
        [sys.executable, "-m", "roles", "migrate"],
        env=base_env(data_dir),
        check=True,
        capture_output=True,
        timeout=60,
    )
    return data_dir


ONE_ADDRESS: dict[str, object] = {
    "ws_max_connections_per_ip": 1_000_000,
    "ws_max_connections_per_ip_before_hello": 1_000_000,
}


class GatewayProcess:
    """``typogram gateway`` in a subprocess; ``settings`` become ``TYPOGRAM_*`` variables.

    ``role="serve"`` runs ``typogram serve`` instead: REST, the gateway and every
    worker group in one process, on the embedded backends unless ``settings``
    name servers (it migrates its data dir itself, so that may be empty).

    ``profile``: a path; the process then runs under cProfile timed by CPU time
    (``bench.cpu_profile``) and writes its stats there when it exits (after
    ``stop()``). With ``profile_steps`` only what runs inside ``with
    gateway.profiling():`` blocks is profiled (the measured steps, not setup).
    ``heap``: a path prefix; the process then runs under tracemalloc
    (``bench.heap``) and ``snapshot()`` writes its heap there. Not both.
    """

    def __init__(
        self,
        data_dir: str,
        *,
        role: str = "gateway",
        profile: str = "",
        profile_steps: bool = False,
        heap: str = "",
        **settings: object,
    ) -> None:
        if profile and heap:
            raise ValueError("profile or heap, not both")
        self.role = role
        self.port = free_port()
        self.log_path = Path(data_dir) / f"{role}-{self.port}.log"
        self.http_port = free_port()  # every role answers /health and /metrics there
        self.profiled = bool(profile) and profile_steps
        # Every client of a bench comes from 127.0.0.1: the per-address caps are lifted
        # (a setting passed in wins); the per-user cap stays (clients are distinct users).
        settings = {**ONE_ADDRESS, **settings}
        env = base_env(data_dir, ws_port=self.port, http_port=self.http_port, **settings)
        if self.profiled:
            env["BENCH_PROFILE_ON_SIGNAL"] = "1"
        with self.log_path.open("wb") as log_file:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    *(["bench.cpu_profile", profile] if profile else []),
                    *(["bench.heap", heap] if heap else []),
                    "roles",
                    role,
                ],
                env=env,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                preexec_fn=raise_nofile,  # only setrlimit, before exec
            )
        self.pid = self.proc.pid
        self.heap = heap
        self._snapshots = 0
        self._wait_accepting(30.0 if role == "gateway" else 90.0)  # serve migrates first

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def _wait_accepting(self, within_s: float) -> None:
        deadline = time.monotonic() + within_s
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.role} exited: {self.log_tail()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"{self.role} did not start: {self.log_tail()}") from None
                time.sleep(0.05)

    @contextlib.contextmanager
    def profiling(self) -> Iterator[None]:
        """Profile what the process does inside this block (no-op when not profiled)."""
        if self.profiled:
            self.proc.send_signal(signal.SIGUSR1)
        try:
            yield
        finally:
            if self.profiled and self.proc.poll() is None:
                self.proc.send_signal(signal.SIGUSR2)

    def snapshot(self, within_s: float = 60.0) -> Path:
        """A heap snapshot of the process (started with ``heap``): its path once written."""
        from bench.heap import done_path, snapshot_path

        if not self.heap:
            raise RuntimeError("the gateway was not started with heap=")
        index, self._snapshots = self._snapshots, self._snapshots + 1
        done_path(self.heap, index).unlink(missing_ok=True)  # an earlier run's
        self.proc.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + within_s
        while not done_path(self.heap, index).exists():
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError(f"no heap snapshot: {self.log_tail()}")
            time.sleep(0.1)
        return snapshot_path(self.heap, index)

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-2000:]

    def stop(self, within_s: float = 30.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=within_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


class Peer(WSListener):
    """One client connection: hello on connect, frames decoded and passed on."""

    def __init__(self, token: str, on_frame: Callable[[Peer, dict[str, Any]], None]) -> None:
        self.token = token
        self.on_frame = on_frame
        self.transport: WSTransport | None = None
        self.welcome: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.close_code: int | None = None
        self.frames = 0

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport
        self.send({"t": "hello", "d": {"token": self.token}})

    def send(self, frame: dict[str, Any]) -> None:
        assert self.transport is not None
        self.transport.send(WSMsgType.TEXT, orjson.dumps(frame))

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type == WSMsgType.CLOSE:
            self.close_code = frame.get_close_code().value
            transport.disconnect()
            return
        if frame.msg_type not in (WSMsgType.TEXT, WSMsgType.BINARY):
            return
        self.frames += 1
        message = orjson.loads(frame.get_payload_as_bytes())
        if message.get("t") == "welcome" and not self.welcome.done():
            self.welcome.set_result(message)
            return
        if message.get("t") == "error" and not self.welcome.done():
            self.welcome.set_exception(RuntimeError(str(message.get("d"))))
            return
        self.on_frame(self, message)

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        if self.close_code is None:
            self.close_code = 1006
        if not self.welcome.done():
            self.welcome.set_exception(ConnectionError(f"closed {self.close_code}"))

    @property
    def open(self) -> bool:
        return self.transport is not None and not self.transport.is_disconnected


def ignore(peer: Peer, message: dict[str, Any]) -> None:
    pass


def recv_all(pipes: list[Connection], timeout_s: float) -> list[Any]:
    """One answer from every client process, or ``TimeoutError`` naming the stall."""
    deadline, out = time.monotonic() + timeout_s, []
    for pipe in pipes:
        if not pipe.poll(max(0.1, deadline - time.monotonic())):
            raise TimeoutError("a client process did not answer")
        out.append(pipe.recv())
    return out


def join_all(procs: Sequence[BaseProcess]) -> None:
    """Wait for the client processes; kill whichever overstays."""
    for proc in procs:
        proc.join(timeout=30)
        if proc.is_alive():
            proc.kill()
            proc.join()


def delete_prefix(redis_url: str, prefix: str) -> None:
    """Remove every key a run left under its prefix."""
    client = redis.Redis.from_url(redis_url)
    try:
        for key in client.scan_iter(match=prefix + "*", count=1000):
            client.delete(key)
    finally:
        client.close()


def print_table(rows: list[dict[str, Any]], skip: tuple[str, ...] = ()) -> None:
    """The rows as a Markdown table, ready for docs/benchmarks.md."""
    print()
    columns = [c for c in (rows[0] if rows else {}) if c not in skip]
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    for row in rows:
        print("| " + " | ".join(str(row[c]) for c in columns) + " |")
