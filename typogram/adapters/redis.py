"""Distributed adapters on Redis: ``RedisCache`` and ``RedisPubSub``.

Commands, scripts and PUBLISHes go through one pipelined connection per
adapter (``redis_batch.CommandBatcher``), the subscriber through its own
(``redis_wire.Subscriber``); redis-py's client is kept for the start-up PING
and for loading a script Redis has forgotten.

Every key and channel gets the deployment's ``redis_prefix`` on the wire;
callers never see it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Iterable, Mapping, Sequence
from itertools import islice
from typing import Any, Final, Self

import hiredis
from redis.asyncio import BlockingConnectionPool, Redis
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError, RedisError

from typogram.adapters.listeners import deliver
from typogram.adapters.redis_batch import CommandBatcher
from typogram.adapters.redis_endpoint import RedisEndpoint
from typogram.adapters.redis_wire import Subscriber, connect, reply_error
from typogram.errors import BackendUnavailable
from typogram.ports import Listener
from typogram.settings import Settings
from typogram.tasks import Supervisor

log = logging.getLogger(__name__)

DEFAULT_MAX_CONNECTIONS: Final = 64
PUBLISH_BATCH: Final = 1_000  # PUBLISHes per pipeline round trip in ``publish_many``
RECONNECT_MIN_S: Final = 0.05
# A reconnect attempt is a sentinel query and a TCP connect: cheap enough to try twice a
# second, so the subscriber is back within half a second of a failover completing.
RECONNECT_MAX_S: Final = 0.5

# INCRBY, then PEXPIRE only if this call created the key, atomically (one script).
_INCR_WITH_TTL: Final = """
local created = redis.call('EXISTS', KEYS[1]) == 0
local value = redis.call('INCRBY', KEYS[1], ARGV[1])
if created then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return value
"""

# Plain writes in one command (``write_batch`` without lists): one reply for the lot instead
# of one per SET. SET KEYS[i] to ARGV[i + 1], PX ARGV[1]; returns how many.
_SET_MANY: Final = """
local px = ARGV[1]
for i = 1, #KEYS do redis.call('SET', KEYS[i], ARGV[i + 1], 'PX', px) end
return #KEYS
"""


def _as_bytes(value: bytes | str) -> bytes:
    """Replies are bytes (no ``decode_responses``); the stubs also allow str."""
    return value if isinstance(value, bytes) else value.encode()


def _reason(exc: BaseException) -> str:
    return "no answer in time" if isinstance(exc, TimeoutError) else str(exc) or repr(exc)


def ttl_ms(ttl: float) -> int:
    if not ttl > 0:
        raise ValueError(f"ttl must be a positive number of seconds, got {ttl!r}")
    return max(1, round(ttl * 1000))


async def _connect(
    endpoint: RedisEndpoint, timeout_s: float, max_connections: int, client_name: str | None
) -> Redis:
    """A client on its own bounded pool, checked with PING; ``BackendUnavailable`` if not."""
    options: dict[str, Any] = {
        "client_name": client_name,  # shows in CLIENT LIST: which role holds a connection
        "max_connections": max_connections,
        "socket_connect_timeout": timeout_s,
        "socket_timeout": timeout_s,  # a command never hangs forever on a dead server
        "socket_keepalive": True,
    }
    try:
        if endpoint.uses_sentinel:  # a pool that asks the sentinels on every new connection
            client = endpoint.client(**options)
        else:
            pool = BlockingConnectionPool.from_url(
                endpoint.url,
                timeout=timeout_s,  # wait for a free pooled connection at most this long
                **options,
            )
            client = Redis.from_pool(pool)
    except ValueError as exc:
        raise BackendUnavailable("Redis", endpoint.describe(), f"invalid URL: {exc}") from exc
    try:
        await asyncio.wait_for(client.ping(), timeout_s)
    except (RedisError, OSError) as exc:  # TimeoutError is an OSError
        await client.aclose()
        raise BackendUnavailable("Redis", endpoint.describe(), _reason(exc)) from exc
    return client


class _RedisAdapter:
    """Lifecycle shared by both adapters: one client, entered once, closed once."""

    def __init__(
        self,
        url: str | RedisEndpoint,
        *,
        prefix: str = "",
        connect_timeout_s: float = 5.0,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        client_name: str | None = None,
        tasks: Supervisor | None = None,
    ) -> None:
        if not url:
            raise ValueError("a Redis URL is required, e.g. redis://127.0.0.1:6379/0")
        self._endpoint = RedisEndpoint(url) if isinstance(url, str) else url
        self._prefix = prefix
        self._timeout_s = connect_timeout_s
        self._max_connections = max_connections
        self._client_name = client_name
        self._tasks = tasks if tasks is not None else Supervisor()
        self._client: Redis | None = None
        self._closed = False
        self._setup()

    def _setup(self) -> None:
        """Subclasses set up their own state here."""

    @classmethod
    def from_settings(cls, settings: Settings, *, tasks: Supervisor | None = None) -> Self:
        return cls(
            RedisEndpoint.from_settings(settings),
            prefix=settings.redis_prefix,
            connect_timeout_s=settings.backend_connect_timeout_s,
            tasks=tasks,
        )

    async def __aenter__(self) -> Self:
        if self._client is not None or self._closed:
            raise RuntimeError(f"{type(self).__name__} can be entered once")
        try:
            self._client = await _connect(
                self._endpoint, self._timeout_s, self._max_connections, self._client_name
            )
        except BaseException:
            await self._endpoint.aclose()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._closed = True
        if self._client is not None:
            await self._client.aclose()
        await self._endpoint.aclose()

    def _redis(self) -> Redis:
        if self._closed or self._client is None:
            what = "closed" if self._closed else "not entered yet"
            raise RuntimeError(f"{type(self).__name__} is {what}")
        return self._client

    async def ping(self) -> None:
        await self._redis().ping()

    def shares_server(self, other: _RedisAdapter) -> bool:
        """Same Redis and key prefix: a script run by one may act for the other."""
        return self._endpoint.key() == other._endpoint.key() and self._prefix == other._prefix


class RedisCache(_RedisAdapter):
    """The ``Cache`` port on Redis. Hit and miss counts are this process's ``get`` calls."""

    def _setup(self) -> None:
        self._hits = self._misses = 0
        self._incr_script: AsyncScript | None = None
        self._set_many_script: AsyncScript | None = None
        self._scripts: dict[str, AsyncScript] = {}  # the features' scripts, by body
        self._batcher: CommandBatcher | None = None

    async def __aenter__(self) -> Self:
        await super().__aenter__()
        self._incr_script = self._redis().register_script(_INCR_WITH_TTL)
        self._set_many_script = self._redis().register_script(_SET_MANY)
        self._batcher = CommandBatcher(self._endpoint, self._timeout_s, self._client_name)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._batcher is not None:
            await self._batcher.aclose()
        await super().__aexit__(*exc)

    def _batch(self) -> CommandBatcher:
        self._redis()  # raises once closed
        assert self._batcher is not None, "set up on enter"
        return self._batcher

    def _call(self, *command: Any) -> Awaitable[Any]:
        """One command through the batcher: shares this loop turn's write, no pool."""
        return self._batch().call(*command)

    async def _eval(self, script: AsyncScript | None, keys: list[Any], args: list[Any]) -> Any:
        """EVALSHA ``script`` through the batcher; loads it again if Redis forgot it."""
        assert script is not None, "registered on enter"
        try:
            return await self._call("EVALSHA", script.sha, len(keys), *keys, *args)
        except NoScriptError:  # Redis restarted or flushed its scripts
            return await script(keys=keys, args=args)

    @property
    def prefix(self) -> str:
        """Prepended to every key on the wire (``redis_prefix``)."""
        return self._prefix

    def run_script(self, body: str, keys: list[Any], args: list[Any]) -> Awaitable[Any]:
        """Run the Lua script ``body`` on wire ``keys`` (prefixed by the caller) and
        ``args``, through the batcher: the features' atomic steps on this cache's keys
        (``typogram.adapters.redis_scripts``)."""
        script = self._scripts.get(body)
        if script is None:
            script = self._scripts[body] = self._redis().register_script(body)
        return self._eval(script, keys, args)

    async def get(self, key: str) -> bytes | None:
        value = await self._call("GET", self._prefix + key)
        if value is None:
            self._misses += 1
            return None
        self._hits += 1
        return _as_bytes(value)

    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        if ttl is None:
            await self._call("SET", self._prefix + key, value)
        else:
            await self._call("SET", self._prefix + key, value, "PX", ttl_ms(ttl))

    async def set_if_absent(self, key: str, value: bytes, ttl: float | None = None) -> bool:
        px = () if ttl is None else ("PX", ttl_ms(ttl))
        return await self._call("SET", self._prefix + key, value, "NX", *px) is not None

    async def delete(self, *keys: str) -> int:
        if not keys:
            return 0
        return int(await self._call("DEL", *(self._prefix + key for key in keys)))

    async def ttl(self, key: str) -> float | None:
        ms = int(await self._call("PTTL", self._prefix + key))
        return None if ms < 0 else ms / 1000  # -2: missing, -1: no expiry

    async def incr(self, key: str, amount: int = 1, ttl: float | None = None) -> int:
        if ttl is None:
            return int(await self._call("INCRBY", self._prefix + key, amount))
        args = [amount, ttl_ms(ttl)]
        return int(await self._eval(self._incr_script, [self._prefix + key], args))

    async def incr_each(self, keys: Sequence[str], ttl: float) -> list[int]:
        script, batcher = self._incr_script, self._batch()
        assert script is not None, "registered on enter"
        px = ttl_ms(ttl)
        try:  # batched with whatever else this turn of the loop sends
            replies = await batcher.call_many(
                ("EVALSHA", script.sha, 1, self._prefix + k, 1, px) for k in keys
            )
        except NoScriptError:  # Redis restarted or flushed its scripts: load it again
            replies = [await script(keys=[self._prefix + k], args=[1, px]) for k in keys]
        return [int(reply) for reply in replies]

    async def list_push(
        self, key: str, value: bytes, max_len: int, ttl: float | None = None
    ) -> None:
        if max_len < 1:
            raise ValueError("max_len must be at least 1")
        name = self._prefix + key
        commands: list[tuple[Any, ...]] = [("RPUSH", name, value), ("LTRIM", name, -max_len, -1)]
        if ttl is not None:
            commands.append(("PEXPIRE", name, ttl_ms(ttl)))
        await self._transaction(commands)

    async def list_range(self, key: str, start: int = 0, stop: int = -1) -> list[bytes]:
        items = await self._call("LRANGE", self._prefix + key, start, stop)
        return [_as_bytes(item) for item in items]

    async def list_remove(self, key: str, value: bytes) -> int:
        removed: int = await self._call("LREM", self._prefix + key, 0, value)
        return int(removed)

    async def _transaction(self, commands: list[tuple[Any, ...]]) -> list[Any]:
        """MULTI, ``commands``, EXEC: queued back to back on the batcher's connection,
        so nothing else interleaves; the first error among the replies is raised."""
        replies = await self._batch().call_many([("MULTI",), *commands, ("EXEC",)])
        results = replies[-1]
        if results is None:
            raise ConnectionError("Redis aborted the transaction")
        for result in results:
            if isinstance(result, hiredis.ReplyError):
                raise reply_error(result)
        return list(results)

    async def write_batch(
        self,
        lists: Mapping[str, tuple[Sequence[bytes], int]],
        values: Mapping[str, bytes],
        ttl: float,
    ) -> None:
        px = ttl_ms(ttl)
        if not lists:
            if values:
                names = [self._prefix + key for key in values]
                await self._eval(self._set_many_script, names, [px, *values.values()])
            return
        commands: list[tuple[Any, ...]] = []
        for key, (items, max_len) in lists.items():
            name = self._prefix + key
            if items:
                commands.append(("RPUSH", name, *items))
            commands.append(("LTRIM", name, -max(1, max_len), -1))
            commands.append(("PEXPIRE", name, px))
        for key, value in values.items():
            commands.append(("SET", self._prefix + key, value, "PX", px))
        await self._transaction(commands)

    async def zadd(
        self, key: str, scores: Mapping[str, float], *, only_greater: bool = False
    ) -> int:
        if not scores:
            return 0
        flags = ("GT", "CH") if only_greater else ("CH",)
        pairs = [part for member, score in scores.items() for part in (repr(float(score)), member)]
        return int(await self._call("ZADD", self._prefix + key, *flags, *pairs))

    async def zscore(self, key: str, member: str) -> float | None:
        score = await self._call("ZSCORE", self._prefix + key, member)
        return None if score is None else float(score)

    async def zrevrank(self, key: str, member: str) -> int | None:
        rank = await self._call("ZREVRANK", self._prefix + key, member)
        return None if rank is None else int(rank)

    async def zrevrange(self, key: str, start: int, stop: int) -> list[tuple[str, float]]:
        flat = await self._call("ZREVRANGE", self._prefix + key, start, stop, "WITHSCORES")
        return [(bytes(flat[i]).decode(), float(flat[i + 1])) for i in range(0, len(flat), 2)]

    async def zrem(self, key: str, *members: str) -> int:
        if not members:
            return 0
        return int(await self._call("ZREM", self._prefix + key, *members))

    async def expire(self, key: str, ttl: float) -> bool:
        # A non-positive ttl deletes the key, as Redis does.
        ms = round(ttl * 1000) if ttl <= 0 else ttl_ms(ttl)
        return bool(await self._call("PEXPIRE", self._prefix + key, ms))

    def statistics(self) -> dict[str, float]:
        lookups = self._hits + self._misses
        return {
            "hits": self._hits,
            "misses": self._misses,
            "hit_rate": self._hits / lookups if lookups else 0.0,
        }


class RedisPubSub(_RedisAdapter):
    """The ``PubSub`` port on Redis: one subscriber connection, parsed as bytes arrive.

    Listeners are reference-counted per channel in this process: the first
    ``subscribe`` of a channel sends SUBSCRIBE and returns once Redis has
    confirmed it (so a message published afterwards is delivered); the last
    ``unsubscribe`` sends UNSUBSCRIBE. The subscriber connection
    (``redis_wire.Subscriber``) calls listeners on the event loop as messages
    are parsed; one that raises is logged and the others still run. If the
    connection drops, a supervisor task reconnects with exponential backoff
    and subscribes every channel again; messages published during the outage
    are lost, as Redis pub/sub is fire-and-forget. PUBLISHes go through the
    command batcher (one write per loop turn).
    """

    def _setup(self) -> None:
        self._listeners: dict[str, list[Listener]] = {}
        # What a message on a wire channel name goes to: the channel as callers name
        # it and a snapshot of its listeners, kept in step with ``_listeners``.
        self._routes: dict[bytes, tuple[str, tuple[Listener, ...]]] = {}
        self._confirmations: dict[bytes, asyncio.Future[None]] = {}
        self._lock = asyncio.Lock()  # orders SUBSCRIBE/UNSUBSCRIBE and reconnects
        self._conn: Subscriber | None = None
        self._lost = asyncio.Event()
        self._supervisor: asyncio.Task[None] | None = None
        self._published = self._delivered = self._listener_errors = self._reconnects = 0
        self._batcher: CommandBatcher | None = None

    async def __aenter__(self) -> Self:
        await super().__aenter__()
        self._batcher = CommandBatcher(self._endpoint, self._timeout_s, self._client_name)
        try:
            # Connect now, so a dead Redis is reported at start like every backend.
            self._conn = await self._open_subscriber()
        except (RedisError, OSError) as exc:
            await self.__aexit__()
            raise BackendUnavailable("Redis", self._endpoint.describe(), _reason(exc)) from exc
        self._supervisor = self._tasks.start("redis-subscriber", self._supervise(), lasting=True)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._closed = True
        if self._batcher is not None:
            await self._batcher.aclose()
        if self._supervisor is not None:
            self._supervisor.cancel()
            await asyncio.wait([self._supervisor])  # never swallows our own cancellation
        if self._conn is not None:
            self._conn.close()
        self._listeners.clear()
        self._routes.clear()
        await super().__aexit__()

    def _wire(self, channel: str) -> bytes:
        return (self._prefix + channel).encode()

    def published_by_script(self, channel: str) -> bytes:
        """The wire name of ``channel`` for a script that PUBLISHes on it on this server
        (``shares_server``), counting that message as published by this adapter."""
        self._published += 1
        return self._wire(channel)

    async def publish(self, channel: str, message: bytes) -> None:
        """PUBLISH, pipelined with the other publishes of this turn of the event loop."""
        self._redis()
        assert self._batcher is not None, "set up on enter"
        await self._batcher.call("PUBLISH", self._wire(channel), message)
        self._published += 1

    async def publish_many(self, messages: Iterable[tuple[str, bytes]]) -> None:
        """PUBLISH in batches of at most ``PUBLISH_BATCH``: one round trip per batch."""
        self._redis()
        assert self._batcher is not None, "set up on enter"
        batcher, pending = self._batcher, iter(messages)
        while batch := list(islice(pending, PUBLISH_BATCH)):
            await batcher.call_many(("PUBLISH", self._wire(ch), message) for ch, message in batch)
            self._published += len(batch)

    async def subscribe(self, channel: str, listener: Listener) -> None:
        """Add a listener; on a channel's first, wait for Redis to confirm SUBSCRIBE.

        If Redis does not confirm within ``connect_timeout_s`` (it is down, or
        the subscriber is reconnecting) this raises and registers nothing.
        """
        self._redis()
        async with self._lock:
            if listeners := self._listeners.get(channel):
                listeners.append(listener)
                self._route(channel)
                return
            wire = self._wire(channel)
            confirmed = self._confirmations[wire] = asyncio.get_running_loop().create_future()
            self._listeners[channel] = [listener]
            self._route(channel)
            try:
                self._subscriber().subscribe(wire)
                await asyncio.wait_for(confirmed, self._timeout_s)
            except BaseException:
                self._listeners.pop(channel, None)
                self._route(channel)
                raise
            finally:
                self._confirmations.pop(wire, None)

    async def unsubscribe(self, channel: str, listener: Listener) -> None:
        """Remove one registration of ``listener``; unknown listeners are ignored."""
        self._redis()
        async with self._lock:
            listeners = self._listeners.get(channel)
            if not listeners or listener not in listeners:
                return
            listeners.remove(listener)
            if listeners:
                self._route(channel)
                return
            del self._listeners[channel]  # from now on its messages are dropped here
            self._route(channel)
            try:
                self._subscriber().unsubscribe(self._wire(channel))
            except ConnectionError as exc:
                # A reconnect subscribes only to channels still listed, so this heals.
                log.warning("UNSUBSCRIBE failed: %s", exc, extra={"channel": channel})

    def _route(self, channel: str) -> None:
        """Bring ``_routes`` in line with ``_listeners[channel]`` after a change."""
        listeners = self._listeners.get(channel)
        if listeners:
            self._routes[self._wire(channel)] = (channel, tuple(listeners))
        else:
            self._routes.pop(self._wire(channel), None)

    def _subscriber(self) -> Subscriber:
        conn = self._conn
        if conn is None or conn.closed:
            raise ConnectionError("the Redis subscriber is reconnecting")
        return conn

    # -- the subscriber connection ----------------------------------------------

    async def _open_subscriber(self) -> Subscriber:
        self._lost.clear()
        return await connect(
            await self._endpoint.resolve(),  # with Sentinel: the master as of now
            lambda: Subscriber(self._on_message, self._on_subscribed, self._on_lost),
            self._timeout_s,
            self._client_name,
            expect_master=self._endpoint.uses_sentinel,
        )

    def _on_message(self, wire: bytes, payload: bytes) -> None:
        route = self._routes.get(wire)
        if route is None:
            return
        delivered, failed = deliver(route[1], route[0], payload)
        self._delivered += delivered
        self._listener_errors += failed

    def _on_subscribed(self, wire: bytes) -> None:
        confirmed = self._confirmations.get(wire)
        if confirmed is not None and not confirmed.done():
            confirmed.set_result(None)

    def _on_lost(self, exc: Exception) -> None:
        for waiting in self._confirmations.values():
            if not waiting.done():
                waiting.set_exception(ConnectionError(f"Redis subscriber lost: {exc}"))
        if not self._closed:
            log.warning("Redis subscriber lost: %s", exc)
        self._lost.set()

    async def _supervise(self) -> None:
        """Whenever the subscriber connection is lost, open another and SUBSCRIBE again."""
        while True:
            await self._lost.wait()
            delay = RECONNECT_MIN_S
            while True:
                await asyncio.sleep(delay)
                try:
                    await self._resubscribe()
                    break
                except Exception as exc:  # whatever broke, a fresh connection is the cure
                    delay = min(delay * 2, RECONNECT_MAX_S)
                    log.warning(
                        "Redis subscriber reconnect failed (%s: %s); retrying in %.2fs",
                        type(exc).__name__,
                        exc,
                        delay,
                    )

    async def _resubscribe(self) -> None:
        """Replace the subscriber connection and SUBSCRIBE every listed channel again."""
        async with self._lock:
            conn = self._conn = await self._open_subscriber()
            if self._listeners:
                conn.subscribe(*map(self._wire, self._listeners))
        self._reconnects += 1
        log.info("Redis subscriber reconnected (%d channels)", len(self._listeners))

    def statistics(self) -> dict[str, float]:
        return {
            "channels": len(self._listeners),
            "listeners": sum(len(v) for v in self._listeners.values()),
            "published": self._published,
            "delivered": self._delivered,
            "listener_errors": self._listener_errors,
            "reconnects": self._reconnects,
        }
