"""Real ``typogram gateway`` processes for cluster tests: start, wait, stop, clean up.

Every node gets its own WebSocket and HTTP (ops) port, the same JWT secret,
Redis URL and key prefix, and one migrated SQLite data folder. Its output goes
to a log file whose tail is shown when something fails.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from tests.ports import free_port

START_WITHIN_S = 20.0
EXIT_WITHIN_S = 10.0


def base_env(data_dir: Path, secret: str) -> dict[str, str]:
    """This process's environment without any ``TYPOGRAM_*``, plus the test basics."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TYPOGRAM_")}
    env.update(
        TYPOGRAM_ENVIRONMENT="test",
        TYPOGRAM_JWT_SECRET=secret,
        TYPOGRAM_DATA_DIR=str(data_dir),
        TYPOGRAM_LOG_JSON="true",
        TYPOGRAM_LOG_LEVEL="WARNING",
    )
    return env


def migrate(data_dir: Path, secret: str) -> Path:
    """One SQLite schema for every node (gateway-only processes do not migrate)."""
    subprocess.run(
        [sys.executable, "-m", "roles", "migrate"],
        env=base_env(data_dir, secret),
        check=True,
        capture_output=True,
        timeout=60,
    )
    return data_dir


@dataclass
class Node:
    name: str
    port: int
    proc: subprocess.Popen[bytes]
    log_path: Path

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-3_000:]


def wait_accepting(node: Node, deadline: float) -> None:
    while True:
        if node.proc.poll() is not None:
            pytest.fail(f"{node.name} exited with {node.proc.returncode}:\n{node.log_tail()}")
        try:
            socket.create_connection(("127.0.0.1", node.port), timeout=0.5).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                pytest.fail(f"{node.name} did not accept in time:\n{node.log_tail()}")
            time.sleep(0.05)


def stop(node: Node) -> int:
    """SIGTERM and wait; the exit code (killed if it overstays, then the test fails)."""
    if node.proc.poll() is None:
        node.proc.send_signal(signal.SIGTERM)
    try:
        return node.proc.wait(timeout=EXIT_WITHIN_S)
    except subprocess.TimeoutExpired:
        node.proc.kill()
        node.proc.wait()
        pytest.fail(f"{node.name} did not exit within {EXIT_WITHIN_S}s of SIGTERM")


def delete_keys(url: str, prefix: str) -> None:
    """Some keys (chat history) have no TTL: remove what a cluster left under its prefix."""
    client = redis.Redis.from_url(url)
    try:
        names = list(client.scan_iter(match=prefix + "*", count=1000))
        if names:
            client.delete(*names)
    finally:
        client.close()


@contextmanager
def running_nodes(
    names: Sequence[str],
    *,
    data_dir: Path,
    secret: str,
    redis_url: str,
    prefix: str,
    log_dir: Path,
    env: Mapping[str, str] | None = None,
) -> Iterator[list[Node]]:
    """Start one gateway per name, yield them once all accept, then stop them.

    Nodes the test left running must exit 0 on SIGTERM; killed or stopped
    nodes were checked by the test itself.
    """
    nodes: list[Node] = []
    logs = []
    try:
        for name in names:
            port = free_port()
            node_env = base_env(data_dir, secret) | {
                "TYPOGRAM_WS_PORT": str(port),
                "TYPOGRAM_HTTP_PORT": str(free_port()),  # /health, /ready per node
                "TYPOGRAM_METRICS_PORT": str(free_port()),  # /metrics per node
                "TYPOGRAM_REDIS_URL": redis_url,
                "TYPOGRAM_REDIS_PREFIX": prefix,
            }
            node_env |= dict(env or {})
            log_path = log_dir / f"node-{name}.log"
            log_file = log_path.open("wb")
            logs.append(log_file)
            proc = subprocess.Popen(
                [sys.executable, "-m", "roles", "gateway"],
                env=node_env,
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
            nodes.append(Node(name, port, proc, log_path))
        deadline = time.monotonic() + START_WITHIN_S
        for node in nodes:
            wait_accepting(node, deadline)
        yield nodes
        for node in nodes:
            if node.proc.returncode is None:
                code = stop(node)
                assert code == 0, f"{node.name} exited with {code}:\n{node.log_tail()}"
    finally:
        for node in nodes:
            if node.proc.poll() is None:
                node.proc.kill()
            node.proc.wait()
        for log_file in logs:
            log_file.close()
        delete_keys(redis_url, prefix)
