"""A connection's writer task: owned by the connection, its failures reported, not lost."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from prometheus_client import CollectorRegistry, Counter
from websockets.exceptions import ConnectionClosedOK
from websockets.frames import Close
from websockets.protocol import State

from gateway.connection.connection import INTERNAL_ERROR, Connection
from gateway.metrics import GatewayMetrics
from typogram.settings import load
from typogram.tasks import Supervisor


class _Transport:
    """Always full: every frame waits for the writer."""

    def get_write_buffer_size(self) -> int:
        return 1 << 30

    def write(self, data: bytes) -> None:
        raise AssertionError("nothing is written directly while the buffer is full")


class _Protocol:
    state = State.OPEN
    extensions: list[Any] = []


class _Socket:
    send_in_progress = None

    def __init__(self, failure: BaseException | None) -> None:
        self.transport = _Transport()
        self.protocol = _Protocol()
        self.failure = failure
        self.sent: list[bytes] = []
        self.closed: tuple[int, str] | None = None

    async def send(self, frame: bytes, text: bool = False) -> None:
        if len(self.sent) == 1 and self.failure is not None:
            raise self.failure
        self.sent.append(frame)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        self.closed = (code, reason)


def _connection(failure: BaseException | None) -> tuple[Connection, _Socket, Counter]:
    failures = Counter("t_task_failures", "test", ["task"], registry=CollectorRegistry())
    hub: Any = SimpleNamespace(
        settings=load(None, {}),
        metrics=GatewayMetrics(CollectorRegistry()),
        tasks=Supervisor(failures),
    )
    sock = _Socket(failure)
    conn = Connection(sock, hub)  # type: ignore[arg-type]
    conn.session = SimpleNamespace()  # type: ignore[assignment]  # attached: a writer may start
    return conn, sock, failures


async def _writer_done(conn: Connection) -> None:
    writer = conn._writer
    assert writer is not None
    await asyncio.wait_for(writer, 5)


async def test_a_writer_that_fails_is_reported_and_closes_the_socket_with_1011() -> None:
    conn, sock, failures = _connection(RuntimeError("a bug"))
    for n in range(3):
        conn.send(b'{"t":"x","n":%d}' % n, "x")
    await _writer_done(conn)
    assert sock.sent == [b'{"t":"x","n":0}']
    assert failures.labels("ws-writer")._value.get() == 1
    assert sock.closed == (INTERNAL_ERROR, "internal error")
    assert conn.close_code == INTERNAL_ERROR
    conn.send(b"later", "x")  # the queue is closed: dropped, no new writer, nothing raised
    assert conn.queued == 0


async def test_the_socket_closing_under_the_writer_is_no_failure() -> None:
    conn, sock, failures = _connection(ConnectionClosedOK(Close(1000, ""), Close(1000, ""), True))
    for n in range(2):
        conn.send(b"%d" % n, "x")
    await _writer_done(conn)
    assert failures.labels("ws-writer")._value.get() == 0
    assert conn.close_code is None and sock.closed is None


async def test_a_writer_runs_only_while_frames_wait_and_is_let_go_when_drained() -> None:
    conn, sock, failures = _connection(None)
    conn._start_writer()  # as after attach: nothing queued, so no task
    assert conn._writer is None
    for n in range(3):
        conn.send(b"%d" % n, "x")
    await _writer_done(conn)
    assert sock.sent == [b"0", b"1", b"2"] and conn.queued == 0
    assert conn._writer is None  # an idle connection holds no finished task either
    conn.send(b"3", "x")  # the socket is still full: a new writer takes it
    await _writer_done(conn)
    assert sock.sent[-1] == b"3" and conn._writer is None
    assert failures.labels("ws-writer")._value.get() == 0 and sock.closed is None
