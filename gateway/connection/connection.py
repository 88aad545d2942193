"""One WebSocket connection, from hello to close.

Lifecycle: ``run`` waits for hello (``ws_hello_timeout_s``), authenticates,
attaches to a new or resumed ``Session`` and then reads frames in its own
task. A frame to send goes straight into the transport while nothing waits
and the socket keeps up; otherwise it waits in a bounded ``SendQueue`` and a
writer task, started only while frames wait, drains it with flow control, so
frames keep their order and memory stays bounded. Closing also goes through
the writer (it flushes, then closes). Heartbeats are node-wide (the
gateway's sweeper), not a task per connection: an idle connection costs one
task (the handler ``websockets`` runs ``run`` in) plus what ``websockets``
keeps. Nothing else stays while it idles: not the hello (``_open`` returns),
not a drained writer's finished task, and of ``websockets``' share not the
handshake's headers nor its empty deques (``wsinternals`` items 5 and 6).

Reading: frames go through ``websockets``' queue to the reader task, one at a
time, except on the lane (``GatewayConnection``), offered a frame that
arrives while the reader waits with nothing queued:

* a ``race.progress`` is applied right inside ``websockets``' frame callback
  when it needs no await (the common case): no queue round, no task switch;
* a ``chat.send`` is decoded and rate-limited there and handed to a task of
  this connection's own (``_sending``) that serves it as the reader would
  (``_serve``): it skips the queue, the message assembler and ``recv``.

Everything else, every frame that arrives while the reader is busy or others
wait, and every frame that arrives while a lane-started ``chat.send`` still
runs (the lane declines them all) takes the queue; the reader waits for that
send before it handles the next frame, and before it ends. So a connection's
frames are still handled one at a time, in arrival order.

Closing rules (codes from ``typogram.codes.CloseCode``):
* no hello in time, bad or revoked token → ``error unauthorized`` + 4001;
* later, the token expired or was revoked (``Hub.recheck_tokens``, a
  ``revoke`` notice) → 4001; an ``auth`` frame renews the token: a bad one,
  or one of another user → ``error unauthorized`` + 4001;
* a malformed frame → ``error bad_request``; ``ws_max_bad_frames`` in a row → 4003;
* over the message rate → ``error rate_limited``; ``ws_rate_strikes`` refusals
  within 10 s → 4029;
* send queue overflow → 4008, the queue is freed at once (the kernel's send
  buffer is capped, ``ws_send_buffer_bytes``, so the queue fills within
  seconds of a client's last read);
* a newer connection resumed this session → 4002; draining → 1012;
* the user already has ``ws_max_connections_per_user`` sockets here →
  ``error too_many_connections`` + 4029 right after hello.
A close handshake the client does not complete within
``ws_close_timeout_s`` (it stopped reading) is cut. After an abnormal close
the session is detached and resumable; after a normal client close
(1000/1001) or a server-side abuse/auth close it ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Mapping
from typing import Any, cast

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State

from gateway.connection.admission import Admission, Cap
from gateway.connection.ratelimit import Strikes, TokenBucket
from gateway.connection.sendqueue import SendQueue
from gateway.connection.wsinternals import LanedConnection, abort, direct_writer, pong_future
from gateway.dispatch import dispatch
from gateway.hub import Hub
from gateway.metrics import close_label
from gateway.sessions.resume import take_over
from gateway.sessions.session import Respond, Session
from rooms.chat import RoomError
from typogram.codes import CloseCode, ErrorCode
from typogram.errors import AppError
from typogram.outages import unavailable_backend
from typogram.protocol import (
    ChatSend,
    Hello,
    Inbound,
    Message,
    ProtocolError,
    RaceProgress,
    decode,
    encode,
    error,
)
from typogram.tokens import Claims, TokenType

log = logging.getLogger(__name__)

# How the frames worth the lane begin (the clients' encoders put ``t`` first).
PROGRESS = b'{"t":"race.progress"'
CHAT_SEND = b'{"t":"chat.send"'
RATE_STRIKE_WINDOW_S = 10.0
INTERNAL_ERROR = 1011  # RFC 6455: the server hit an unexpected condition (resumable)
# Bytes the transport may buffer before frames wait in the send queue instead.
DIRECT_WRITE_LIMIT = 64 * 1024
# Closes after which the session is over rather than waiting for a resume.
ENDING_CLOSES = frozenset(
    {
        1000,
        1001,
        CloseCode.UNAUTHORIZED,
        CloseCode.PROTOCOL_ABUSE,
        CloseCode.RATE_LIMITED,
        CloseCode.GOING_AWAY,
    }
)


class GatewayConnection(LanedConnection):
    """The gateway's server connection: the inbound lane (``LanedConnection``, its
    ``lane`` set by ``Connection`` once attached), the connection caps and the
    socket's send buffer."""

    # The connection caps this socket counts in (``gateway.connection.admission``), set on the
    # gateway's own subclass (``Gateway``): sockets carry no attribute of their own for it.
    admission: Admission | None = None
    # SO_SNDBUF for each accepted socket (``ws_send_buffer_bytes``), set on the gateway's
    # subclass; 0 leaves the kernel's autotuning.
    send_buffer: int = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self.send_buffer > 0:
            cap_send_buffer(transport, self.send_buffer)
        super().connection_made(transport)

    @property
    def address(self) -> str:
        """The client's address, as admitted at the handshake (else the peer's)."""
        admission = self.admission
        known = admission.address_of(self) if admission is not None else None
        return peer_address(self) if known is None else known

    def greet(self) -> None:
        """Its hello was accepted: it stops counting against the before-hello cap."""
        if self.admission is not None:
            self.admission.greeted(self)

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if self.admission is not None:
            self.admission.release(self)


class Connection:
    # Fixed fields, no instance dict: one of these per socket, alive as long as it is.
    __slots__ = (
        "_bad_frames",
        "_bucket",
        "_direct",
        "_frames_out",
        "_hub",
        "_interrupted",
        "_pinged_at",
        "_pong",
        "_queue",
        "_rate_strikes",
        "_sending",
        "_write_now",
        "_writer",
        "_ws",
        "close_code",
        "close_reason",
        "session",
    )

    def __init__(self, ws: ServerConnection, hub: Hub) -> None:
        settings = hub.settings
        self._ws = ws
        self._hub = hub
        self._queue = SendQueue(settings.ws_send_queue_size)
        self._writer: asyncio.Task[None] | None = None
        # True while nothing waits for a writer and the queue is open: with the
        # socket's own state, what ``send`` checks before writing directly.
        self._direct = True
        self._write_now = direct_writer(ws, DIRECT_WRITE_LIMIT)
        self._frames_out = hub.metrics.frames_out
        self._pong: asyncio.Future[float] | None = None  # the node heartbeat's last ping
        self._pinged_at = 0.0
        self._interrupted = False
        self._bucket = TokenBucket(settings.ws_rate_per_s, settings.ws_rate_burst, _now())
        self._rate_strikes = Strikes(settings.ws_rate_strikes, RATE_STRIKE_WINDOW_S)
        self._bad_frames = 0
        # The ``chat.send`` the lane started, until the reader or the lane sees it done.
        self._sending: asyncio.Task[None] | None = None
        self.session: Session | None = None
        self.close_code: int | None = None
        self.close_reason = ""

    @property
    def queued(self) -> int:
        return len(self._queue)

    @property
    def address(self) -> str:
        """The client's address: as admitted at the handshake, else the peer's."""
        ws = self._ws
        return ws.address if isinstance(ws, GatewayConnection) else peer_address(ws)

    # -- what sessions and the gateway call -------------------------------------

    def send(self, frame: bytes, kind: str) -> None:
        """Send or queue a frame; a full queue closes this slow consumer with 4008.

        When nothing is queued and the socket keeps up, the frame is written into
        the transport at once (``gateway.connection.wsinternals.direct_writer``), as
        ``websockets.broadcast`` does: no task switch, no await. Otherwise it waits
        in the bounded queue for the writer, which respects the socket's flow control.
        """
        counts = self._frames_out  # ``GatewayMetrics.frames_out``, inline: once per frame
        if self._direct and self._write_now(frame):
            counts[kind] = counts.get(kind, 0) + 1
            return
        if self._queue.push(frame):
            self._direct = False
            counts[kind] = counts.get(kind, 0) + 1
            self._start_writer()
            return
        self._hub.metrics.slow_consumer_closes.inc()
        self.terminate(CloseCode.TOO_SLOW, "send queue overflow")

    def replier(self, re: int | None) -> Respond:
        def reply(kind: str, data: Mapping[str, Any]) -> None:
            self.send(encode(kind, data, re=re), kind)

        return reply

    def terminate(self, code: int, reason: str, *, flush: bool = False) -> None:
        """Close with ``code``; ``flush`` sends what is queued first, else drops it."""
        if self.close_code is None:
            self.close_code, self.close_reason = code, reason
        self._direct = False
        self._queue.close(flush=flush)
        writer = self._writer
        if not flush and writer is not None and not writer.done() and not self._interrupted:
            self._interrupted = True  # the writer may be stuck behind a full socket
            writer.cancel()
        self._start_writer()  # it closes the socket once the queue is flushed

    def _start_writer(self) -> None:
        if self.session is None:
            return  # before attach: hello replies are awaited directly
        if not self._queue and not self._queue.closed:
            return  # nothing to send, nothing to close
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write(), name="ws-writer")

    async def keepalive(self, now: float, pong_within: float) -> None:
        """Node heartbeat: ping; close (1011, resumable) when the last ping's pong is late."""
        if self.session is None:
            return  # still in hello: its own timeout applies
        pong = self._pong
        if pong is not None and not pong.done():
            if now - self._pinged_at > pong_within:
                self.terminate(CloseCode.KEEPALIVE_TIMEOUT, "keepalive ping timeout")
            return
        if self._ws.state is not State.OPEN:
            return
        self._pinged_at = now
        try:
            self._pong = pong_future(await self._ws.ping())
        except ConnectionClosed:
            self._pong = None

    async def shutdown(self, code: int, reason: str) -> None:
        """Drain: flush and close an attached connection, or close one still in hello."""
        if self.session is None:
            self.close_code, self.close_reason = code, reason
            await self._ws.close(code, reason)
        else:
            self.terminate(code, reason, flush=True)

    # -- lifecycle -----------------------------------------------------------------

    async def run(self) -> None:
        self._hub.connections.add(self)
        try:
            if not await self._open():
                return
            self._start_writer()  # frames queued during attach
            await self._read()  # closes the queue (flushing) when it ends
            self._start_writer()
            while (writer := self._writer) is not None and not writer.done():
                await writer  # the writer closes the socket; a close may restart it
        finally:
            writer = self._writer
            if writer is not None and not writer.done():
                writer.cancel()
                with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
                    await writer
            await self._stop_sending()
            if self._pong is not None:
                self._pong.cancel()  # websockets also fails it once the TCP connection is gone
            self._hub.connections.discard(self)
            await self._release()

    async def _open(self) -> bool:
        """Hello, then attach; True once attached. A frame of its own, so nothing of
        the hello (the decoded frame, its token) stays referenced while the socket idles."""
        hello = await self._await_hello()
        if hello is None:
            return False
        if isinstance(self._ws, GatewayConnection):
            self._ws.greet()
        return await self._attach(*hello)

    async def _await_hello(self) -> tuple[Inbound, Claims] | None:
        settings = self._hub.settings
        deadline = asyncio.get_running_loop().time() + settings.ws_hello_timeout_s
        while True:
            try:
                async with asyncio.timeout_at(deadline):
                    raw = await self._ws.recv()
            except TimeoutError:
                await self._refuse(f"no hello within {settings.ws_hello_timeout_s:g} s", None)
                return None
            except ConnectionClosed:
                return None
            try:
                inbound = decode(raw)
            except ProtocolError as exc:
                if await self._bad_frame(exc):
                    return None
                await self._ws.send(error(exc.code, exc.message, re=exc.id), text=True)
                continue
            self._hub.metrics.frame_in(inbound.type)
            if not isinstance(inbound.body, Hello):
                await self._refuse("the first message must be hello", inbound.id)
                return None
            try:
                return inbound, await self._authenticate(inbound.body.token)
            except AppError as exc:
                await self._refuse(exc.message, inbound.id)
                return None

    async def _authenticate(self, token: str) -> Claims:
        claims = self._hub.tokens.verify(token, TokenType.ACCESS, TokenType.GUEST)
        await self._hub.check_token(claims)
        return claims

    async def renew(self, token: str, re: int | None) -> None:
        """The ``auth`` frame: carry on with a fresh token of the same user, answered
        ``auth.renewed``; a bad token or another user's ends the socket (4001)."""
        session = self.session
        assert session is not None
        try:
            claims = await self._authenticate(token)
            if claims.subject != session.user.id:
                raise AppError(ErrorCode.UNAUTHORIZED, "the token is another user's")
        except AppError as exc:
            self._hub.metrics.errors.labels(ErrorCode.UNAUTHORIZED.value).inc()
            self.send(error(ErrorCode.UNAUTHORIZED, exc.message, re=re), "error")
            session.ended = True  # rejected credentials end the session, as at hello
            self.terminate(CloseCode.UNAUTHORIZED, exc.message[:120], flush=True)
            return
        session.claims, session.checked_at = claims, self._hub.clock()
        self.send(encode("auth.renewed", {"expires_at": claims.expires_at}, re=re), "auth.renewed")

    async def _refuse(
        self,
        message: str,
        re: int | None,
        code: ErrorCode = ErrorCode.UNAUTHORIZED,
        close: CloseCode = CloseCode.UNAUTHORIZED,
    ) -> None:
        """Answer an unattached socket with an error, then close it with ``close``."""
        self.close_code = close
        self._hub.metrics.errors.labels(code.value).inc()
        with contextlib.suppress(ConnectionClosed):
            await self._ws.send(error(code, message, re=re), text=True)
        await self._ws.close(close, message[:120])

    async def _attach(self, inbound: Inbound, claims: Claims) -> bool:
        """Bind this socket to a resumed or new session, then send welcome (+ replay).
        False: refused (over the per-user cap), the socket is closed."""
        hub, hello = self._hub, inbound.body
        assert isinstance(hello, Hello)
        resuming = hello.resume.session if hello.resume is not None else None
        if hub.admission.user_over(hub.sessions.of_user(claims.subject), resuming):
            await self._refuse(
                hub.admission.message(Cap.USER),
                inbound.id,
                ErrorCode.TOO_MANY_CONNECTIONS,
                CloseCode.RATE_LIMITED,
            )
            return False
        session, replay, plan = None, None, None
        if hello.resume is not None:
            session = hub.sessions.find(hello.resume, claims, hub.clock())
            if session is not None:
                replay = session.replay.after(hello.resume.seq)
            elif hub.sessions.get(hello.resume.session) is None:
                plan = await take_over(hub, hello.resume, claims, address=self.address)
                if plan is not None:
                    session, replay = plan.session, plan.replay
            hub.metrics.resumes.labels("hit" if replay is not None else "miss").inc()
        session_checked = hub.clock()
        if session is None:
            session, fresh = hub.sessions.create(claims), True
        else:
            fresh = False
            session.claims = claims
            if session.link is not None:
                session.link.terminate(CloseCode.REPLACED, "replaced by a newer connection")
        # Welcome, replay and new pushes must queue in that order: no await until linked.
        session.link, session.detached_at, self.session = self, None, session
        session.address = self.address
        session.checked_at = session_checked
        welcome = {
            "session": session.id,
            "user": session.user.wire(),
            "resumed": replay is not None,
            "heartbeat_s": hub.settings.ws_heartbeat_s,
        }
        self.send(encode("welcome", welcome, re=inbound.id), "welcome")
        for frame in replay or ():
            self.send(frame, "replay")
        if plan is not None and replay is not None:
            plan.finish()
        if fresh:
            await hub.start_session(session)
            return True
        hub.store.touch(session)
        await hub.presence.set(session.user.id, session.status)
        if replay is None:  # the gap cannot be filled: fresh snapshots instead
            for room in sorted(session.rooms):
                await hub.chat.snapshot(session, room, self.replier(None))
        if plan is not None and replay is None:
            plan.finish()
        return True

    async def _release(self) -> None:
        session = self.session
        code = self.close_code or self._ws.close_code or 1006
        self._hub.metrics.closes.labels(close_label(int(code))).inc()
        if session is None or session.link is not self:
            return  # never attached, or a newer connection took the session over
        if session.ended or code in ENDING_CLOSES or self._hub.draining:
            await self._hub.end_session(session)
        else:
            self._hub.sessions.detach(session, self._hub.clock())
            self._hub.store.touch(session)

    # -- reading and writing ------------------------------------------------------------

    async def _read(self) -> None:
        ws = self._ws
        if isinstance(ws, GatewayConnection):
            ws.lane = self._lane
        try:
            # ``recv`` rather than ``async for``: the async generator (and the loop's
            # weak reference to it) would be ~360 bytes more per idle socket.
            with contextlib.suppress(ConnectionClosed):
                while True:
                    raw = await ws.recv()
                    if self._sending is not None:
                        await self._sent()  # no frame overtakes a send the lane started
                    if self._queue.closed:
                        break
                    await self._handle(raw)
            await self._sent()  # done reading: the last send finishes before the session ends
        finally:
            if isinstance(ws, GatewayConnection):
                ws.lane = None
            self._direct = False
            self._queue.close(flush=True)

    async def _write(self) -> None:
        """Send what waits; once the queue is closed (and flushed), close the socket.

        The writer is this connection's own task (started, cancelled and awaited here):
        anything but the socket closing is a bug, reported to the node's supervisor
        (logged, counted as ``ws-writer``) and answered by closing the socket with 1011,
        which leaves the session resumable."""
        try:
            while (frame := self._queue.pop()) is not None:
                await self._ws.send(frame, text=True)
        except ConnectionClosed:
            pass
        except Exception as exc:
            self._hub.tasks.report("ws-writer", exc)
            if self.close_code is None:
                self.close_code, self.close_reason = INTERNAL_ERROR, "internal error"
            self._direct = False
            self._queue.close(flush=False)
        except asyncio.CancelledError:
            if not self._interrupted:
                raise
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
        if not self._queue.closed:
            self._direct = not self._queue  # drained: frames may go straight out again
            self._writer = None  # the next queued frame starts a new one; this one is let go
            return
        await self._close()

    async def _close(self) -> None:
        """The close handshake, bounded: ``websockets`` waits for the close frame to
        drain into the socket without a deadline, so a client that stopped reading
        (the 4008 case) would hold its socket, session and buffers until TCP gave
        up. A close not done within ``ws_close_timeout_s`` (the frame written and the
        client's answer read) is cut."""
        ws = self._ws
        try:
            async with asyncio.timeout(self._hub.settings.ws_close_timeout_s):
                if self.close_code is not None:
                    await ws.close(self.close_code, self.close_reason)
                else:
                    await ws.close()
        except TimeoutError:
            abort(ws)

    # -- one inbound frame -------------------------------------------------------------

    async def _handle(self, raw: str | bytes) -> None:
        hub, now = self._hub, _now()
        if not self._bucket.allow(now):
            self._rate_limited(now)
            return
        try:
            inbound = decode(raw)
        except ProtocolError as exc:
            if not await self._bad_frame(exc):
                self.send(error(exc.code, exc.message, re=exc.id), "error")
            return
        self._bad_frames = 0
        hub.metrics.frame_in(inbound.type)
        await self._serve(inbound)

    async def _serve(self, inbound: Inbound) -> None:
        """Carry out one decoded request and answer what it raised (never raises)."""
        session = self.session
        assert session is not None
        try:
            await dispatch(self._hub, self, session, inbound)
        except Exception as exc:
            self._failed(inbound, exc)

    def _lane(self, data: bytes | bytearray | memoryview) -> bool:
        """``GatewayConnection``'s lane, offered a whole text frame while the reader waits
        with nothing queued: a ``race.progress`` (``_lane_progress``) or a ``chat.send``
        (``_lane_send``). Declines (False, nothing done) anything else, anything
        malformed (the reader reports it) and every frame while a send it started still
        runs (the reader then waits for that send first). Never raises: it runs inside
        websockets."""
        if isinstance(data, memoryview) or self.session is None:
            return False
        sending = self._sending
        if sending is not None:
            if not sending.done():
                return False
            self._sending = None
            self._reap(sending)
        if data.startswith(PROGRESS):
            return self._lane_progress(data)
        if data.startswith(CHAT_SEND):
            return self._lane_send(data)
        return False

    def _lane_send(self, data: bytes | bytearray) -> bool:
        """A ``chat.send`` (each member's every message): decoded, counted and rate-limited
        here, then served by a task of this connection's own, as the reader would serve it
        (``_serve``: admission, moderation, the durable log, ``chat.sent``, errors with
        ``re``) but without ``websockets``' queue, message assembler and ``recv``."""
        inbound = self._lane_inbound(data, ChatSend)
        if inbound is None:
            return False
        if self._lane_admits(inbound):
            self._sending = asyncio.get_running_loop().create_task(self._serve(inbound))
        return True

    def _lane_inbound(self, data: bytes | bytearray, kind: type[Message]) -> Inbound | None:
        """The frame decoded, if it is a well-formed ``kind`` and the connection still
        takes frames; else ``None`` (the lane declines it, the reader answers it)."""
        try:
            inbound = decode(data.decode())
        except (UnicodeDecodeError, ProtocolError):
            return None
        if type(inbound.body) is not kind or self._queue.closed:
            return None
        return inbound

    def _lane_admits(self, inbound: Inbound) -> bool:
        """Rate-limit and count a frame the lane takes; False: refused (and answered)."""
        now = _now()
        if not self._bucket.allow(now):
            self._rate_limited(now)
            return False
        self._bad_frames = 0
        self._hub.lane_frames += 1
        self._hub.metrics.frame_in(inbound.type)
        return True

    async def _sent(self) -> None:
        """Wait until the ``chat.send`` the lane started (if any) is done."""
        sending = self._sending
        if sending is None:
            return
        if not sending.done():
            await asyncio.wait((sending,))
        self._sending = None
        self._reap(sending)

    async def _stop_sending(self) -> None:
        """The connection's end: a lane-started send still running (the reader was
        cancelled) is cancelled and awaited, as the writer is."""
        sending, self._sending = self._sending, None
        if sending is None:
            return
        sending.cancel()
        await asyncio.wait((sending,))
        self._reap(sending)

    def _reap(self, sending: asyncio.Task[None]) -> None:
        """A finished lane send: ``_serve`` answers every error, so one escaping it is a
        bug, reported to the node's supervisor (logged, counted as ``chat-send``)."""
        if not sending.cancelled() and (exc := sending.exception()) is not None:
            self._hub.tasks.report("chat-send", exc)

    def _lane_progress(self, data: bytes | bytearray) -> bool:
        """A ``race.progress`` (the one frame every racer sends twice a second) applied at
        once: no queue, no task switch, no coroutine per layer. Declines a report that
        needs an await."""
        races, session = self._hub.races, self.session
        if races is None or session is None:
            return False
        inbound = self._lane_inbound(data, RaceProgress)
        if inbound is None:
            return False
        body = cast(RaceProgress, inbound.body)
        try:
            if not races.progress_ready(session, body):
                return False
            if self._lane_admits(inbound):
                races.progress_now(session, body, self.replier(inbound.id))
        except Exception as exc:
            self._failed(inbound, exc)
        return True

    def _rate_limited(self, now: float) -> None:
        self._hub.metrics.errors.labels(ErrorCode.RATE_LIMITED.value).inc()
        if self._rate_strikes.hit(now):
            self.terminate(CloseCode.RATE_LIMITED, "rate limited")
        else:
            self.send(error(ErrorCode.RATE_LIMITED, "too many messages, slow down"), "error")

    def _failed(self, inbound: Inbound, exc: Exception) -> None:
        """Answer a request that raised: its error code, ``unavailable`` when a backend is
        unreachable for now (``typogram.outages``: Redis failing over…), else ``internal``."""
        metrics = self._hub.metrics
        if isinstance(exc, RoomError | AppError):
            metrics.errors.labels(exc.code.value).inc()
            details = exc.details if isinstance(exc, AppError) else None
            self.send(error(exc.code, exc.message, re=inbound.id, details=details), "error")
            return
        if (backend := unavailable_backend(exc)) is not None:  # failing over: retry later
            log.warning("handling %s failed: %s is unreachable (%s)", inbound.type, backend, exc)
            metrics.errors.labels(ErrorCode.UNAVAILABLE.value).inc()
            self.send(
                error(ErrorCode.UNAVAILABLE, f"{backend} unavailable, retry", re=inbound.id),
                "error",
            )
            return
        log.error("handling %s failed", inbound.type, exc_info=exc)
        metrics.errors.labels(ErrorCode.INTERNAL.value).inc()
        self.send(error(ErrorCode.INTERNAL, "internal error", re=inbound.id), "error")

    async def _bad_frame(self, exc: ProtocolError) -> bool:
        """Count a malformed frame; True when this one closed the connection (4003)."""
        self._hub.metrics.frame_in("invalid")
        self._hub.metrics.errors.labels(exc.code.value).inc()
        self._bad_frames += 1
        if self._bad_frames < self._hub.settings.ws_max_bad_frames:
            return False
        if self.session is None:
            self.close_code = CloseCode.PROTOCOL_ABUSE
            await self._ws.close(CloseCode.PROTOCOL_ABUSE, "too many malformed frames")
        else:
            self.terminate(CloseCode.PROTOCOL_ABUSE, "too many malformed frames")
        return True


def _now() -> float:
    return asyncio.get_running_loop().time()


def cap_send_buffer(transport: asyncio.BaseTransport, size: int) -> None:
    """Fix the socket's kernel send buffer at ``size`` (Linux doubles it).

    Without it Linux autotunes a TCP socket's send buffer up to
    ``net.ipv4.tcp_wmem``'s maximum (4 MiB by default): a client that stops
    reading holds that much kernel memory and only then lets the send queue
    fill, so its 4008 comes after most of a minute in a busy room. A fixed
    buffer bounds both; throughput to a client is then at most about
    ``2 * size`` per round trip, far above what a room sends.
    """
    sock = transport.get_extra_info("socket")
    if sock is None:
        return
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, size)
    except OSError:  # gone already, or not a socket that has one
        log.debug("could not set SO_SNDBUF", exc_info=True)


def peer_address(ws: ServerConnection) -> str:
    """The socket's peer address ("" when unknown)."""
    remote = ws.remote_address
    return str(remote[0]) if remote else ""
