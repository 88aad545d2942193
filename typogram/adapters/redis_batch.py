"""Automatic pipelining: commands issued in one event-loop turn share one round trip.

A caller awaits ``call(*command)`` as it would ``execute_command``; every
command issued in the same loop turn goes out in one write on the
batcher's own connection (``redis_wire.Pipeline``), and each caller gets its
own reply or its own error. Commands reach Redis in the order they were
issued. The connection is opened on first use and again after it was lost
(the commands in flight then fail with ``ConnectionError``: they may or may
not have run, as with any client). Each connect resolves the endpoint
again, so with Sentinel a reconnect after a failover finds the new master.

The queue is bounded by the callers: the gateway bounds in-flight
``chat.send`` work per node (``gateway_chat_max_inflight``, fewer while its loop lags).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from typogram.adapters.redis_endpoint import RedisEndpoint
from typogram.adapters.redis_wire import Pipeline, connect


class CommandBatcher:
    def __init__(
        self, endpoint: RedisEndpoint | str, timeout_s: float, client_name: str | None = None
    ) -> None:
        self._endpoint = RedisEndpoint(endpoint) if isinstance(endpoint, str) else endpoint
        self._timeout_s = timeout_s
        self._client_name = client_name
        self._wire: Pipeline | None = None
        self._lock = asyncio.Lock()
        self._closed = False
        self._round_trips = self._commands = 0  # of connections already replaced
        self.connects = 0

    @property
    def round_trips(self) -> int:
        return self._round_trips + (self._wire.writes if self._wire else 0)

    @property
    def commands(self) -> int:
        return self._commands + (self._wire.commands if self._wire else 0)

    async def call(self, *command: Any) -> Any:
        """Send ``command`` with this loop turn's batch; its reply, or its error raised here."""
        return await (await self._ready()).call(*command)

    async def call_many(self, commands: Iterable[tuple[Any, ...]]) -> list[Any]:
        """Send ``commands`` in this loop turn's batch; their replies in order.

        The first error reply is raised (after every reply arrived)."""
        wire = await self._ready()
        replies = await asyncio.gather(
            *(wire.call(*command) for command in commands), return_exceptions=True
        )
        for reply in replies:
            if isinstance(reply, BaseException):
                raise reply  # the first error; the others were retrieved with it
        return list(replies)

    async def _ready(self) -> Pipeline:
        wire = self._wire
        if wire is None or wire.closed or self._closed:
            wire = await self._connect()
        return wire

    async def _connect(self) -> Pipeline:
        async with self._lock:
            if self._closed:
                raise RuntimeError("the command batcher is closed")
            wire = self._wire
            if wire is None or wire.closed:
                if wire is not None:
                    self._round_trips += wire.writes
                    self._commands += wire.commands
                timeout, endpoint = self._timeout_s, self._endpoint
                wire = self._wire = await connect(
                    await endpoint.resolve(),  # with Sentinel: the master as of now
                    lambda: Pipeline(timeout),
                    timeout,
                    self._client_name,
                    expect_master=endpoint.uses_sentinel,
                )
                self.connects += 1
            return wire

    async def aclose(self) -> None:
        self._closed = True
        if self._wire is not None:
            self._wire.close()
