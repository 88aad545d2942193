"""Automatic pipelining: commands issued in one event-loop turn share one round trip.

A caller awaits ``call(*command)`` as it would ``execute_command``; the
``CommandBatcher``'s own task sends everything queued since its last round
trip as one non-transactional pipeline and hands each caller its own reply
(or its own error). One pipeline is in flight at a time, so commands reach
Redis in the order they were issued, and the batcher holds one pooled
connection at most. Under load this turns N round trips (each paying
redis-py's pool, packing and timeout machinery) into one; idle, it costs one
extra task switch.

The queue is bounded by the callers: the gateway bounds in-flight
``chat.send`` work per node (``gateway_chat_max_inflight``).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, Final

from redis.asyncio import Redis

MAX_BATCH: Final = 1_000  # commands per pipeline round trip


class CommandBatcher:
    def __init__(self, client: Redis, name: str) -> None:
        self._client = client
        self._pending: list[tuple[tuple[Any, ...], asyncio.Future[Any]]] = []
        self._wake = asyncio.Event()
        self._closed = False
        self._task = asyncio.create_task(self._run(), name=name)
        self.round_trips = 0
        self.commands = 0

    async def call(self, *command: Any) -> Any:
        """Send ``command`` with the next batch; its reply, or its error raised here."""
        if self._closed:
            raise RuntimeError("the command batcher is closed")
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending.append((command, future))
        self._wake.set()
        return await future

    async def aclose(self) -> None:
        self._closed = True
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._fail(self._pending, ConnectionError("the command batcher is closed"))
        self._pending = []

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                batch = self._pending[:MAX_BATCH]
                del self._pending[:MAX_BATCH]
                await self._send(batch)

    async def _send(self, batch: list[tuple[tuple[Any, ...], asyncio.Future[Any]]]) -> None:
        try:
            async with self._client.pipeline(transaction=False) as pipe:
                for command, _ in batch:
                    pipe.execute_command(*command)
                replies = await pipe.execute(raise_on_error=False)
        except asyncio.CancelledError:
            self._fail(batch, ConnectionError("the command batcher is closed"))
            raise
        except Exception as exc:  # every caller of this batch gets the error
            self._fail(batch, exc)
            return
        self.round_trips += 1
        self.commands += len(batch)
        for (_, future), reply in zip(batch, replies, strict=True):
            if future.done():  # its caller was cancelled
                continue
            if isinstance(reply, Exception):
                future.set_exception(reply)
            else:
                future.set_result(reply)

    @staticmethod
    def _fail(batch: list[tuple[tuple[Any, ...], asyncio.Future[Any]]], exc: Exception) -> None:
        for _, future in batch:
            if not future.done():
                future.set_exception(exc)
