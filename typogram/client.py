"""An asyncio client for the Typogram real-time protocol (see ``docs/protocol.md``).

Use::

    async with TypogramClient("ws://host:8765/ws", token) as client:
        joined = await client.request("room.join", {"room": "lobby"})
        await client.send("chat.send", {"room": "lobby", "text": "hi"})
        async for frame in client:          # pushes: chat.message, room.presence, ...
            ...

``request`` sends a frame with a fresh ``id`` and returns the reply (``re``);
an ``error`` reply raises ``ClientError`` (``code``, ``message`` and the
error's ``details``, e.g. the race a crossed ``match.cancel`` names). Pushes are queued in a bounded
inbox: a client that stops iterating stops reading, and the server will
eventually close it as too slow (4008) — as it would any slow consumer.

When the connection drops (anything but a normal close, 4001 unauthorized or
4003 protocol abuse), the client reconnects with bounded exponential backoff
and says hello with ``resume {session, seq}``, ``seq`` being the last ``s``
it saw, so the server replays what was missed. Requests in flight during a
drop fail with ``ConnectionLost``; the caller decides whether to retry.
``fallback_urls``: other gateways of the platform, tried in turn when the
current one does not answer (its node crashed): the session resumes there.

After any reconnect the client rejoins by itself: every race it is seated
in (``race.join {race}``: a race's pushes follow the session only on the
node it joined from; retried while the race changes hands), and, should the
server have started a new session, every room it was in. Their replies
(``race.joined``, ``room.joined``) arrive as pushes would. The rooms and
races it knows of: ``rooms``, ``races``.

The server closes a socket whose token expires (4001). ``renew(token)`` hands
it a fresh one (the ``auth`` frame) without reconnecting; with a
``token_provider`` (e.g. a REST refresh) the client does so by itself
``renew_before_s`` before the token's ``exp``, and uses the newest token to
say hello again after a drop.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Final, Self

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from typogram.protocol import ProtocolError, ServerFrame, decode_server

log = logging.getLogger(__name__)

# Close codes after which reconnecting cannot help.
FINAL_CLOSES: Final = frozenset({1000, 4001, 4003})
RENEW_RETRY_S: Final = 5.0  # after a renewal that could not be sent or fetched
REJOIN_TRIES: Final = 20  # race.join attempts after a reconnect, while ``unavailable``
REJOIN_RETRY_S: Final = 0.25
# Frames that put the client in a race (replies or pushes) and that take it out.
RACE_IN: Final = frozenset({"race.created", "race.joined", "match.found", "race.countdown"})
RACE_OUT: Final = frozenset({"race.left", "race.result"})

TokenProvider = Callable[[], Awaitable[str]]


def token_expiry(token: str) -> float | None:
    """The ``exp`` (epoch s) a JWT claims, read without checking it (the server does);
    ``None`` when it cannot be read."""
    try:
        payload = token.split(".")[1]
        claims = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return float(claims["exp"])
    except (IndexError, ValueError, KeyError, TypeError, orjson.JSONDecodeError):
        return None


class ClientError(Exception):
    """The server answered with an ``error`` frame.

    ``details`` is the frame's ``d.details`` (``{}`` without one): what the client
    needs to act on the error. A ``match.cancel`` that crossed its match answers
    ``conflict`` with ``{"race": RACE}``: the player holds a seat there, to take up
    with ``race.join {"race"}`` (or give up with ``race.leave``, a forfeit once
    the race has started).
    """

    def __init__(self, code: str, message: str, details: Mapping[str, Any] | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.details: dict[str, Any] = dict(details or {})


class ConnectionLost(Exception):
    """The connection closed before a reply came, or for good."""


class TypogramClient:
    def __init__(
        self,
        url: str,
        token: str,
        *,
        reconnect: bool = True,
        max_reconnects: int = 5,
        backoff_s: float = 0.2,
        max_backoff_s: float = 5.0,
        request_timeout_s: float = 10.0,
        open_timeout_s: float = 10.0,
        inbox_size: int = 1024,
        token_provider: TokenProvider | None = None,
        renew_before_s: float = 60.0,
        fallback_urls: Sequence[str] = (),
    ) -> None:
        self.url = url
        self._urls = [url, *(u for u in fallback_urls if u != url)]
        self.rooms: set[str] = set()  # rooms joined (``room.joined``, until ``room.left``)
        self.races: set[str] = set()  # races seated in (until ``race.left``/``race.result``)
        self.rejoins = 0  # rejoin requests sent after reconnects
        self._rejoiner: asyncio.Task[None] | None = None
        self.token = token
        self._token_provider = token_provider
        self._renew_before = renew_before_s
        self._renewer: asyncio.Task[None] | None = None
        self.session: str | None = None
        self.user: dict[str, Any] | None = None
        self.resumed = False
        self.last_seq = 0
        self.close_code: int | None = None
        self.reconnects = 0
        self._reconnect = reconnect
        self._max_reconnects = max_reconnects
        self._backoff = (backoff_s, max_backoff_s)
        self._request_timeout = request_timeout_s
        self._open_timeout = open_timeout_s
        self._inbox: asyncio.Queue[ServerFrame | None] = asyncio.Queue(maxsize=inbox_size)
        self._pending: dict[int, asyncio.Future[ServerFrame]] = {}
        self._ids = itertools.count(1)
        self._ws: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._closing = False
        self._finished = False

    # -- lifecycle -----------------------------------------------------------------

    async def __aenter__(self) -> Self:
        if self._reader is not None or self._closing:
            raise RuntimeError("a TypogramClient connects once; make a new one")
        resuming = self.session is not None
        self._ws = await self._open()
        self._reader = asyncio.create_task(self._run(), name="typogram-client-reader")
        if resuming:
            self._start_rejoin(None)
        if self._token_provider is not None:
            self._renewer = asyncio.create_task(self._renew_loop(), name="typogram-client-renew")
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close normally (1000); pending requests fail with ``ConnectionLost``."""
        self._closing = True
        for task in (self._renewer, self._rejoiner):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self._ws is not None:
            await self._ws.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        self._fail_pending()
        self._finished = True

    # -- talking ---------------------------------------------------------------------

    async def send(self, t: str, d: Mapping[str, Any] | None = None) -> None:
        """Send a frame without an ``id`` (no reply expected)."""
        await self._send({"t": t, "d": dict(d or {})})

    async def request(
        self, t: str, d: Mapping[str, Any] | None = None, *, wait_s: float | None = None
    ) -> ServerFrame:
        """Send a frame with an ``id`` and return the reply; ``error`` raises ``ClientError``."""
        frame_id = next(self._ids)
        future: asyncio.Future[ServerFrame] = asyncio.get_running_loop().create_future()
        self._pending[frame_id] = future
        try:
            await self._send({"t": t, "id": frame_id, "d": dict(d or {})})
            reply = await asyncio.wait_for(future, wait_s or self._request_timeout)
        finally:
            self._pending.pop(frame_id, None)
        if reply.t == "error":
            raise _client_error(reply)
        return reply

    async def renew(self, token: str) -> ServerFrame:
        """Give the live socket a fresh token of the same user (``auth``); the reply
        (``auth.renewed``). A refused token raises ``ClientError`` and the server closes
        the socket (4001). The token is also the one a reconnect says hello with."""
        reply = await self.request("auth", {"token": token})
        self.token = token
        return reply

    async def receive(self, wait_s: float | None = None) -> ServerFrame:
        """The next push; raises ``ConnectionLost`` once the client is closed for good."""
        if self._finished and self._inbox.empty():
            raise ConnectionLost(f"closed ({self.close_code})")
        frame = await asyncio.wait_for(self._inbox.get(), wait_s)
        if frame is None:
            self._finished = True
            raise ConnectionLost(f"closed ({self.close_code})")
        return frame

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> ServerFrame:
        try:
            return await self.receive()
        except ConnectionLost:
            raise StopAsyncIteration from None

    # -- internals ---------------------------------------------------------------------

    async def _send(self, frame: dict[str, Any]) -> None:
        if self._ws is None or self._closing:
            raise ConnectionLost("not connected")
        try:
            await self._ws.send(orjson.dumps(frame), text=True)
        except ConnectionClosed as exc:
            raise ConnectionLost(str(exc)) from exc

    async def _renew_loop(self) -> None:
        """Renew ``renew_before_s`` before each token's ``exp``, until closed."""
        provider = self._token_provider
        assert provider is not None
        while not self._finished:
            expiry = token_expiry(self.token)
            if expiry is None:
                return
            left = expiry - time.time()
            # ``renew_before_s`` ahead, but never in the first half of a token's life:
            # a short-lived token is not renewed in a tight loop.
            await asyncio.sleep(max(left - self._renew_before, left / 2, 0.0))
            try:
                await self.renew(await provider())
            except ClientError:
                log.warning("the server refused the renewed token; the socket closes")
                return
            except (ConnectionLost, TimeoutError, OSError):
                await asyncio.sleep(RENEW_RETRY_S)  # dropped meanwhile, or REST unreachable

    async def _open(self) -> ClientConnection:
        """Connect and say hello (resuming when there is a session); returns the socket."""
        provider, expiry = self._token_provider, token_expiry(self.token)
        if provider is not None and expiry is not None and expiry - time.time() < 5:
            self.token = await provider()  # too late to renew: say hello with a fresh one
        ws = await connect(self.url, open_timeout=self._open_timeout, compression=None)
        hello: dict[str, Any] = {"token": self.token}
        if self.session is not None:
            hello["resume"] = {"session": self.session, "seq": self.last_seq}
        try:
            await ws.send(orjson.dumps({"t": "hello", "d": hello}), text=True)
            async with asyncio.timeout(self._open_timeout):
                welcome = decode_server(await ws.recv())
        except BaseException:
            await ws.close()
            raise
        if welcome.t != "welcome":
            await ws.close()
            raise _client_error(welcome) if welcome.t == "error" else ConnectionLost(welcome.t)
        data = welcome.d if isinstance(welcome.d, dict) else {}
        if data.get("session") != self.session:
            self.last_seq = 0  # a new session numbers its frames from 1
        self.session = data.get("session")
        self.user = data.get("user")
        self.resumed = bool(data.get("resumed"))
        return ws

    async def _run(self) -> None:
        try:
            while self._ws is not None:
                ws = self._ws
                with contextlib.suppress(ConnectionClosed):
                    async for raw in ws:
                        await self._dispatch(raw)
                self.close_code = ws.close_code
                self._fail_pending()
                if self._closing or not self._reconnect or self.close_code in FINAL_CLOSES:
                    break
                before = self.session
                self._ws = await self._reopen()
                if self._ws is not None:
                    self._start_rejoin(before)
        finally:
            self._finished = True
            with contextlib.suppress(asyncio.QueueFull):
                self._inbox.put_nowait(None)

    async def _reopen(self) -> ClientConnection | None:
        delay, ceiling = self._backoff
        start = self._urls.index(self.url) if self.url in self._urls else 0
        for attempt in range(self._max_reconnects):
            await asyncio.sleep(delay)
            # The same gateway first, then the others in turn (its node may be gone).
            self.url = self._urls[(start + attempt) % len(self._urls)]
            try:
                ws = await self._open()
            except (OSError, TimeoutError, InvalidHandshake, ConnectionClosed, ProtocolError):
                delay = min(ceiling, delay * 2)
                continue
            except ClientError:
                return None  # e.g. the token is no longer accepted
            self.reconnects += 1
            return ws
        return None

    async def _dispatch(self, raw: str | bytes) -> None:
        try:
            frame = decode_server(raw)
        except ProtocolError:
            return  # a server bug; nothing the caller could do with it
        self._track(frame)
        if frame.re is not None:
            future = self._pending.get(frame.re)
            if future is not None and not future.done():
                future.set_result(frame)
                return
        if frame.s is not None:
            self.last_seq = max(self.last_seq, frame.s)
        await self._inbox.put(frame)

    def _track(self, frame: ServerFrame) -> None:
        """Remember the rooms and races the client is in, to rejoin them after a reconnect."""
        data = frame.d if isinstance(frame.d, dict) else {}
        name = data.get("room") if frame.t in ("room.joined", "room.left") else data.get("race")
        if not isinstance(name, str):
            return
        if frame.t == "room.joined":
            self.rooms.add(name)
        elif frame.t == "room.left":
            self.rooms.discard(name)
        elif frame.t in RACE_IN:
            self.races.add(name)
        elif frame.t in RACE_OUT:
            self.races.discard(name)

    def _start_rejoin(self, before: str | None) -> None:
        if self._rejoiner is not None:
            self._rejoiner.cancel()
        new_session = before is not None and before != self.session
        self._rejoiner = asyncio.create_task(self._rejoin(new_session), name="typogram-rejoin")

    async def _rejoin(self, new_session: bool) -> None:
        """After a reconnect: rooms again if the session is new, races always."""
        wanted = [("room.join", {"room": r}) for r in sorted(self.rooms) if new_session]
        wanted += [("race.join", {"race": r}) for r in sorted(self.races)]
        for t, d in wanted:
            for _ in range(REJOIN_TRIES):
                try:
                    self.rejoins += 1
                    reply = await self.request(t, d)
                except ClientError as exc:
                    if exc.code == "unavailable":  # the race is changing hands
                        await asyncio.sleep(REJOIN_RETRY_S)
                        continue
                    if t == "race.join":
                        self.races.discard(d["race"])  # finished, or the seat is gone
                    break
                except (ConnectionLost, TimeoutError):
                    return  # dropped again: the next reconnect rejoins
                await self._inbox.put(reply)
                break

    def _fail_pending(self) -> None:
        for future in self._pending.values():
            if not future.done():
                future.set_exception(ConnectionLost("connection closed before the reply"))
        self._pending.clear()


def _client_error(frame: ServerFrame) -> ClientError:
    data = frame.d if isinstance(frame.d, dict) else {}
    details = data.get("details")
    return ClientError(
        str(data.get("code", "internal")),
        str(data.get("message", "")),
        details if isinstance(details, dict) else None,
    )
