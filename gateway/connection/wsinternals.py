"""Every use of ``websockets`` internals by the gateway, in one place, each with its reason.

``websockets``' public API is enough for a correct server; the gateway goes
below it in six places, for speed on the per-frame paths, for bounded
shutdowns and for the memory an idle socket holds. Each is named here and
nowhere else, the supported ``websockets`` versions are pinned in
``pyproject.toml`` (one minor release), and ``tests/unit/test_wsinternals.py``
fails, against a real server connection, when any of them changes shape.
Upgrading ``websockets`` means running that test, adapting this module and
moving the pin.

1. The inbound lane (``LanedConnection.process_event``): ``process_event`` is
   the hook every parsed frame goes through; ``recv_messages.get_in_progress``
   (the reader waits in ``recv``) and ``len(recv_messages.frames)`` (nothing is
   queued ahead) tell whether a frame may be handled right there without
   overtaking one in the queue. Saves a queue round and a task switch per
   ``race.progress``, and ``websockets``' message assembler and ``recv`` per
   ``chat.send`` (``gateway.connection.connection``).
2. The direct write (``direct_writer``): ``protocol.state`` (open),
   ``send_in_progress`` (no fragmented message being sent, which a frame must
   not interleave), ``transport`` (its buffered bytes, and ``write`` for a frame
   framed by ``gateway.connection.wire``) and, with an extension negotiated,
   ``protocol.send_text`` + ``send_data``. A push to a room member is written
   at once, as ``websockets.broadcast`` does, instead of awaiting ``send``
   (a coroutine and a lock per recipient).
3. ``abort`` (``transport.abort()``): cuts a socket whose close handshake or
   drain did not finish in time; ``websockets`` waits without a deadline.
4. ``pong_future``: ``ping()`` is typed ``Awaitable[float]`` but returns the
   future ``websockets`` resolves on the pong (and cancels when the connection
   is lost), so the node heartbeat polls ``done()`` on it: no task per ping.
5. Lazy buffers (``LanedConnection.connection_made``): ``websockets`` gives every
   socket two deques that are empty while it idles, ~760 bytes each: the inbound
   frame queue (``recv_messages.frames.queue``: ``append``, ``popleft``,
   ``extendleft``, ``len``) and the writers waiting for a drain
   (``drain_waiters``: ``append``, ``remove``, iteration). The first becomes a
   ``LazyDeque`` (a deque only while frames wait), the second a list (at most a
   waiter or two, only while the socket is paused).
6. ``forget_handshake``: ``request`` and ``response`` stay on the connection for
   its whole life (headers, the accept key, the date: ~2.5 KB) though nothing
   reads them after the handshake. ``response`` is dropped; ``request`` must
   stay (``process_event`` tells the handshake from frames by ``request`` being
   ``None``, and the protocol's parser keeps it as a local), so its headers
   are cleared (``Headers.clear``).

Overriding ``connection_made`` and ``connection_lost`` themselves (here and in
``GatewayConnection``) is not on this list: those are ``asyncio.Protocol``'s contract, which every
``websockets`` connection implements, and ``serve(create_connection=...)`` is
the documented way to subclass the server connection.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Generic, TypeVar

from websockets.asyncio.server import ServerConnection
from websockets.frames import Frame, Opcode
from websockets.protocol import Event, State

from gateway.connection.wire import text_frame

log = logging.getLogger(__name__)

# Offered a complete inbound text frame's payload; True when it took the frame.
Lane = Callable[[bytes | bytearray | memoryview], bool]
# Writes one frame at once and returns True, or returns False (nothing written)
# when the frame must wait for the connection's writer instead.
DirectWrite = Callable[[bytes], bool]
T = TypeVar("T")


class LanedConnection(ServerConnection):
    """``websockets``' server connection with a synchronous lane for inbound frames.

    ``lane`` (set while a reader is attached) is offered each complete text frame
    that arrives while the reader waits in ``recv`` with nothing queued; a frame
    it takes (True) is done, any other goes to ``websockets``' queue as usual.
    Control frames, fragments, closing and the handshake are untouched.
    """

    lane: Lane | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # it builds ``recv_messages``
        frames: Any = self.recv_messages.frames
        frames.queue = LazyDeque()
        waiters: Any = []
        self.drain_waiters = waiters

    def process_event(self, event: Event) -> None:
        lane = self.lane
        if (
            lane is not None
            and type(event) is Frame
            and event.opcode is Opcode.TEXT
            and event.fin
            and self.recv_messages.get_in_progress
            and not len(self.recv_messages.frames)
            and lane(event.data)
        ):
            return
        super().process_event(event)


class LazyDeque(Generic[T]):
    """The operations ``websockets``' inbound queue uses, over a deque that exists only
    while items wait: an idle socket's queue is one slot, not ~760 bytes."""

    __slots__ = ("_items",)

    def __init__(self) -> None:
        self._items: deque[T] | None = None

    def __len__(self) -> int:
        items = self._items
        return 0 if items is None else len(items)

    def append(self, item: T) -> None:
        items = self._items
        if items is None:
            items = self._items = deque()
        items.append(item)

    def extendleft(self, new: Iterable[T]) -> None:
        items = self._items
        if items is None:
            items = self._items = deque()
        items.extendleft(new)
        if not items:
            self._items = None

    def popleft(self) -> T:
        items = self._items
        if items is None:
            raise IndexError("pop from an empty deque")
        item = items.popleft()
        if not items:
            self._items = None
        return item


def forget_handshake(ws: ServerConnection) -> None:
    """Drop the handshake's response and the request's headers (call once the handler
    runs): what the gateway needs of them (the path, the client's address) was read
    at admission."""
    if ws.request is not None:
        ws.request.headers.clear()
    ws.response = None


def direct_writer(ws: ServerConnection, limit: int) -> DirectWrite:
    """The connection's direct write, built once per connection.

    It writes a text frame into the transport while the socket is open, no
    fragmented message is being sent and fewer than ``limit`` bytes wait in the
    transport's buffer; otherwise it writes nothing and returns False. Without
    extensions the frame is framed by ``gateway.connection.wire`` (a server frame
    is a header and the payload); with one (permessage-deflate) it goes through
    the protocol object. A write failing underneath (the socket closing) is
    logged at debug level: the reader and the writer see the close.
    """
    protocol, transport = ws.protocol, ws.transport
    buffered = transport.get_write_buffer_size
    opened = State.OPEN
    framed: Callable[[bytes], bytes]
    emit: Callable[[bytes], object]
    if protocol.extensions:
        send_text, send_data = protocol.send_text, ws.send_data

        def through_protocol(frame: bytes) -> None:
            send_text(frame)
            send_data()

        framed, emit = _unframed, through_protocol
    else:
        framed, emit = text_frame, transport.write

    def direct(frame: bytes) -> bool:
        if protocol.state is not opened or ws.send_in_progress is not None:
            return False
        if buffered() >= limit:
            return False
        try:
            emit(framed(frame))
        except Exception:
            log.debug("direct write failed", exc_info=True)
        return True

    return direct


def _unframed(payload: bytes) -> bytes:
    return payload


def abort(ws: ServerConnection) -> None:
    """Cut the TCP connection at once, without a close handshake."""
    ws.transport.abort()


def pong_future(waiter: Awaitable[float]) -> asyncio.Future[float]:
    """What ``ping()`` returned, as the future it is (raises ``TypeError`` if not)."""
    if not isinstance(waiter, asyncio.Future):
        raise TypeError(f"websockets' ping() returned {type(waiter).__name__}, not a future")
    return waiter
