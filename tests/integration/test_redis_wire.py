"""The lean Redis connections (``typogram.adapters.redis_wire``) against a real Redis."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
import redis.asyncio
from redis.exceptions import NoScriptError, ResponseError

from typogram.adapters.redis import RedisCache
from typogram.adapters.redis_batch import CommandBatcher
from typogram.adapters.redis_scripts import RedisPushLog
from typogram.adapters.redis_wire import Pipeline, connect

pytestmark = pytest.mark.integration


async def test_replies_come_back_to_their_callers_in_order(
    redis_url: str, unique_prefix: str
) -> None:
    batcher = CommandBatcher(redis_url, 5.0)
    key = unique_prefix + "n"
    try:
        replies = await asyncio.gather(*(batcher.call("INCR", key) for _ in range(500)))
        assert replies == list(range(1, 501))
        assert batcher.commands == 500
        assert batcher.round_trips < 500  # one write per loop turn, not per command
        assert await batcher.call("GET", key) == b"500"
    finally:
        await batcher.call("DEL", key)
        await batcher.aclose()


async def test_call_many_answers_in_order_and_raises_the_first_error(
    redis_url: str, unique_prefix: str
) -> None:
    batcher = CommandBatcher(redis_url, 5.0)
    key = unique_prefix + "many"
    try:
        assert await batcher.call_many([("RPUSH", key, b"a"), ("RPUSH", key, b"b")]) == [1, 2]
        with pytest.raises(ResponseError):
            await batcher.call_many([("RPUSH", key, b"c"), ("INCR", key)])  # wrong type
        assert await batcher.call("LRANGE", key, 0, -1) == [b"a", b"b", b"c"]
    finally:
        await batcher.call("DEL", key)
        await batcher.aclose()


async def test_error_replies_raise_redis_py_errors(redis_url: str) -> None:
    batcher = CommandBatcher(redis_url, 5.0)
    try:
        with pytest.raises(NoScriptError):
            await batcher.call("EVALSHA", "0" * 40, 0)
        with pytest.raises(ResponseError):
            await batcher.call("NOSUCHCOMMAND")
        assert await batcher.call("PING") == b"PONG"  # the connection is still in step
    finally:
        await batcher.aclose()


async def test_the_url_database_is_selected(redis_url: str, unique_prefix: str) -> None:
    base = redis_url.rsplit("/", 1)[0]
    other = f"{base}/15"
    batcher = CommandBatcher(other, 5.0)
    admin = redis.asyncio.Redis.from_url(other)
    key = unique_prefix + "db"
    try:
        await batcher.call("SET", key, b"here")
        assert await admin.get(key) == b"here"
    finally:
        await admin.delete(key)
        await admin.aclose()
        await batcher.aclose()


async def test_a_killed_connection_fails_in_flight_calls_and_reconnects(
    redis_url: str, unique_prefix: str
) -> None:
    name = f"wire-{unique_prefix.rstrip(':')}"
    batcher = CommandBatcher(redis_url, 5.0, name)
    admin = redis.asyncio.Redis.from_url(redis_url)
    try:
        assert await batcher.call("PING") == b"PONG"
        blocked = asyncio.ensure_future(batcher.call("BLPOP", unique_prefix + "never", 10))
        await asyncio.sleep(0.1)
        clients = [c for c in await admin.client_list() if c.get("name") == name]
        assert len(clients) == 1
        await admin.client_kill_filter(_id=clients[0]["id"])
        with pytest.raises(ConnectionError):
            await asyncio.wait_for(blocked, 5)
        assert await batcher.call("PING") == b"PONG"  # a fresh connection
    finally:
        await admin.aclose()
        await batcher.aclose()


async def test_a_server_that_never_answers_times_out() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            await reader.read()  # swallow every command, answer nothing
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        wire = await connect(f"redis://127.0.0.1:{port}", lambda: Pipeline(0.3), 1.0, None)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(wire.call("PING"), 5)
        assert wire.closed
        with pytest.raises(ConnectionError):
            wire.call("PING")
    finally:
        server.close()
        await server.wait_closed()


async def test_the_cache_recovers_when_redis_forgets_its_scripts(
    redis_url: str, unique_prefix: str
) -> None:
    async with RedisCache(redis_url, prefix=unique_prefix) as cache:
        pushes = RedisPushLog(cache)
        assert await pushes.append_numbered("seq", "log", b"a", 10, 60) == 1
        admin = redis.asyncio.Redis.from_url(redis_url)
        try:
            await admin.script_flush()
        finally:
            await admin.aclose()
        assert await pushes.append_numbered("seq", "log", b"b", 10, 60) == 2
        assert await cache.list_range("log") == [b"1 a", b"2 b"]
        await cache.delete("seq", "log")
