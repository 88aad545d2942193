"""Lean Redis connections for the hot paths: pipelined commands and the subscriber.

redis-py's pipeline and ``PubSub`` objects spend tens of µs of Python per
command or message (pool checkout, per-argument encoding, a timeout per
read, response callbacks); a gateway sends one or two commands and receives
one push per chat message, race command and snapshot. Here a connection is
an ``asyncio.Protocol``: commands are packed by ``hiredis.pack_command`` and
written together once per event-loop turn, replies and pushes are parsed by
``hiredis.Reader`` as the bytes arrive. URLs are parsed by redis-py
(``redis://``, ``rediss://``, ``unix://``, user, password, db), errors are
redis-py's exception types, so callers handle both clients alike.

``Pipeline``: ``call(*command)`` from any task; every command issued in one
loop turn goes out in one write, replies come back in order (FIFO futures).
A reply overdue by ``timeout_s`` closes the connection and fails what waits;
the next call connects again. So does a ``READONLY`` error (the server was
demoted to a replica by a failover).

``Subscriber``: SUBSCRIBE / UNSUBSCRIBE on one connection; ``on_message`` is
called for every message as it is parsed, ``on_subscribed`` for every
confirmation, ``on_lost`` once when the connection ends.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any, Final, TypeVar, cast

import hiredis
from redis.asyncio.connection import SSLConnection, UnixDomainSocketConnection, parse_url
from redis.exceptions import (
    BusyLoadingError,
    MasterDownError,
    NoScriptError,
    OutOfMemoryError,
    ReadOnlyError,
    RedisError,
    ResponseError,
)

MESSAGE: Final = b"message"
SUBSCRIBE: Final = b"subscribe"


# The error replies callers tell apart, by their code, as redis-py raises them:
# NOSCRIPT (load the script again) and the ones ``typogram.outages`` counts as
# Redis being away for now (loading its data after a restart, a demoted master,
# a replica cut off from its master).
_REPLY_ERRORS: Final[dict[str, type[RedisError]]] = {
    "NOSCRIPT": NoScriptError,
    "LOADING": BusyLoadingError,
    "READONLY": ReadOnlyError,
    "MASTERDOWN": MasterDownError,
    "OOM": OutOfMemoryError,
}


def reply_error(error: hiredis.ReplyError) -> RedisError:
    """A Redis error reply as redis-py would raise it (``NoScriptError`` for NOSCRIPT,
    ``BusyLoadingError`` for LOADING, …; ``ResponseError`` for any other)."""
    text = str(error)
    return _REPLY_ERRORS.get(text.split(" ", 1)[0], ResponseError)(text)


W = TypeVar("W", bound="_Wire")


class _Wire(asyncio.Protocol):
    """One connection: bytes in through a hiredis reader, packed commands out."""

    def __init__(self) -> None:
        self._reader = hiredis.Reader()
        self._transport: asyncio.Transport | None = None
        self._setting_up: deque[asyncio.Future[Any]] = deque()  # AUTH, SELECT, SETNAME
        self.closed = False

    async def setup(self, commands: list[tuple[Any, ...]]) -> list[Any]:
        """Run connection setup commands before any other traffic; raise on an error reply."""
        loop = asyncio.get_running_loop()
        waiting = [loop.create_future() for _ in commands]
        self._setting_up.extend(waiting)
        for command in commands:
            self.write(hiredis.pack_command(command))
        replies = []
        for future in waiting:
            reply = await future
            if isinstance(reply, hiredis.ReplyError):
                raise reply_error(reply)
            replies.append(reply)
        return replies

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses

    def data_received(self, data: bytes) -> None:
        reader = self._reader
        reader.feed(data)
        try:
            while not self.closed and (reply := reader.gets()) is not False:
                if self._setting_up:
                    future = self._setting_up.popleft()
                    if not future.done():
                        future.set_result(reply)
                    continue
                self._reply(reply)
        except hiredis.ProtocolError as exc:
            self.abort(ConnectionError(f"Redis protocol error: {exc}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._lost(ConnectionError(f"Redis connection lost: {exc or 'closed'}"))

    def _lost_setup(self, exc: Exception) -> None:
        waiting, self._setting_up = self._setting_up, deque()
        for future in waiting:
            if not future.done():
                future.set_exception(exc)

    def close(self) -> None:
        if self._transport is not None and not self.closed:
            self._transport.close()

    def write(self, data: bytes) -> None:
        if self.closed or self._transport is None:
            raise ConnectionError("Redis connection is closed")
        self._transport.write(data)

    def abort(self, exc: Exception) -> None:
        if self._transport is not None and not self.closed:
            self._transport.abort()  # connection_lost follows
        self.closed = True
        self._lost(exc)

    def _lost(self, exc: Exception) -> None:
        self._lost_setup(exc)

    def _reply(self, reply: Any) -> None:
        raise NotImplementedError


async def connect(
    url: str,
    factory: Callable[[], W],
    timeout_s: float,
    client_name: str | None,
    *,
    expect_master: bool = False,
) -> W:
    """Open ``url`` with ``factory``'s protocol, then AUTH / SELECT / SETNAME on it.

    ``expect_master``: also ask ``ROLE`` and refuse (``ConnectionError``) a
    server that is not a master, such as one Sentinel has just demoted.
    """
    params = parse_url(url)
    loop = asyncio.get_running_loop()
    cls = params.get("connection_class")
    async with asyncio.timeout(timeout_s):
        if cls is UnixDomainSocketConnection:
            _, wire = await loop.create_unix_connection(factory, params["path"])
        else:
            context = None
            if cls is SSLConnection:
                context = ssl.create_default_context()
                if params.get("ssl_cert_reqs") in ("none", ssl.CERT_NONE):
                    context.check_hostname = False
                    context.verify_mode = ssl.CERT_NONE
            host, port = params.get("host", "localhost"), int(params.get("port", 6379))
            _, wire = await loop.create_connection(factory, host, port, ssl=context)
        commands: list[tuple[Any, ...]] = []
        if params.get("password") is not None:
            user = params.get("username")
            commands.append(
                ("AUTH", user, params["password"]) if user else ("AUTH", params["password"])
            )
        if int(params.get("db", 0) or 0):
            commands.append(("SELECT", int(params["db"])))
        if client_name:
            commands.append(("CLIENT", "SETNAME", client_name))
        if expect_master:
            commands.append(("ROLE",))
        try:
            replies = await wire.setup(commands)
            if expect_master and not (replies[-1] and replies[-1][0] == b"master"):
                raise ConnectionError(f"{host_of(params)} is not the Redis master any more")
        except BaseException:
            wire.close()
            raise
    return wire


def host_of(params: Mapping[str, Any]) -> str:
    if "path" in params:
        return str(params["path"])
    return f"{params.get('host', 'localhost')}:{params.get('port', 6379)}"


class Pipeline(_Wire):
    """Commands from many tasks, written once per loop turn, replies handed back in order."""

    def __init__(self, timeout_s: float = 5.0) -> None:
        super().__init__()
        self._timeout_s = timeout_s
        self._waiting: deque[asyncio.Future[Any]] = deque()
        self._out: list[bytes] = []
        self._flush_scheduled = False
        self._replies = 0
        self._watch: asyncio.TimerHandle | None = None
        self.writes = 0
        self.commands = 0

    def call(self, *command: Any) -> asyncio.Future[Any]:
        """Queue ``command``; a future of its reply (redis-py's errors for error replies)."""
        if self.closed:
            raise ConnectionError("Redis connection is closed")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._out.append(hiredis.pack_command(command))
        self._waiting.append(future)
        self.commands += 1
        if not self._flush_scheduled:
            self._flush_scheduled = True
            loop.call_soon(self._flush)
        if self._watch is None:
            self._watch = loop.call_later(self._timeout_s, self._overdue, self._replies)
        return future

    def _flush(self) -> None:
        self._flush_scheduled = False
        if not self._out or self.closed:
            return
        data = b"".join(self._out) if len(self._out) > 1 else self._out[0]
        self._out = []
        self.writes += 1
        try:
            self.write(data)
        except ConnectionError as exc:
            self.abort(exc)

    def _overdue(self, replies_then: int) -> None:
        self._watch = None
        if not self._waiting:
            return
        if self._replies == replies_then:  # nothing came back for a whole timeout
            self.abort(TimeoutError(f"no Redis reply within {self._timeout_s:g} s"))
            return
        loop = asyncio.get_running_loop()
        self._watch = loop.call_later(self._timeout_s, self._overdue, self._replies)

    def _reply(self, reply: Any) -> None:
        self._replies += 1
        if not self._waiting:
            self.abort(ConnectionError("Redis sent a reply nobody asked for"))
            return
        future = self._waiting.popleft()
        if isinstance(reply, hiredis.ReplyError):
            if not future.done():  # (its caller may have given up)
                future.set_exception(reply_error(reply))
            if str(reply).startswith("READONLY"):
                # A master demoted by a failover: drop the connection so the next
                # command connects again (to the new master, with Sentinel).
                self.abort(ConnectionError("this Redis server became a replica"))
        elif not future.done():
            future.set_result(reply)

    def _lost(self, exc: Exception) -> None:
        super()._lost(exc)
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None
        self._out = []
        waiting, self._waiting = self._waiting, deque()
        for future in waiting:
            if not future.done():
                future.set_exception(exc)


class Subscriber(_Wire):
    """The subscriber connection: messages and confirmations go to callbacks as parsed."""

    def __init__(
        self,
        on_message: Callable[[bytes, bytes], None],
        on_subscribed: Callable[[bytes], None],
        on_lost: Callable[[Exception], None],
    ) -> None:
        super().__init__()
        self._on_message = on_message
        self._on_subscribed = on_subscribed
        self._on_lost = on_lost
        self._lost_once = False

    def subscribe(self, *channels: bytes) -> None:
        self.write(hiredis.pack_command(("SUBSCRIBE", *channels)))  # type: ignore[arg-type]

    def unsubscribe(self, *channels: bytes) -> None:
        self.write(hiredis.pack_command(("UNSUBSCRIBE", *channels)))  # type: ignore[arg-type]

    def _reply(self, reply: Any) -> None:
        if type(reply) is list and len(reply) == 3:
            kind = reply[0]
            if kind == MESSAGE:
                self._on_message(reply[1], reply[2])
            elif kind == SUBSCRIBE:
                self._on_subscribed(reply[1])
            return
        if isinstance(reply, hiredis.ReplyError):
            self.abort(ConnectionError(f"Redis refused a subscription: {reply}"))

    def _lost(self, exc: Exception) -> None:
        super()._lost(exc)
        if not self._lost_once:
            self._lost_once = True
            self._on_lost(exc)
