"""The network between REST and Redis slows down, then breaks, then heals.

Netem (``tc``) on the loopback would slow every process on the machine, so
the scenario puts a TCP proxy of its own between REST (in process, SQLite)
and Redis: ``DelayProxy`` holds every chunk for a set delay in each
direction, and ``cut`` closes every connection and refuses new ones until
``heal``. Under result submissions:

* ``p95_ms_base`` / ``p95_ms_delayed``: REST p95 without and with
  ``delay_ms`` each way (what one Redis round trip more costs a request);
* during the cut, every answer is the usual one or a fast 503 (the
  invariants of ``backends``), and after the heal results are accepted again
  within ``recovered_after_heal_s``; every 201 is stored once.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from bench.chaos.backends import RECOVERY_LIMIT_S, check_recovered, typing_on
from bench.chaos.outcome import Outcome
from bench.chaos.stack import REDIS_URL, chaos_settings, redis_prefix


@dataclass
class DelayProxy:
    """``127.0.0.1:<port>`` → ``target``, every chunk held ``delay_s`` each way."""

    target_host: str
    target_port: int
    delay_s: float = 0.0
    port: int = 0
    _server: asyncio.Server | None = None
    _writers: set[asyncio.StreamWriter] = field(default_factory=set)
    _pumps: set[asyncio.Task[None]] = field(default_factory=set)
    _cut: bool = False

    async def __aenter__(self) -> DelayProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        self.cut()
        for pump in list(self._pumps):
            pump.cancel()
        await asyncio.gather(*self._pumps, return_exceptions=True)
        await self._server.wait_closed()

    def cut(self) -> None:
        """Drop every connection; refuse new ones until ``heal``."""
        self._cut = True
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    def heal(self) -> None:
        self._cut = False

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._cut:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(self.target_host, self.target_port)
        except OSError:
            writer.transport.abort()
            return
        self._writers |= {writer, up_writer}
        for source, sink in ((reader, up_writer), (up_reader, writer)):
            pump = asyncio.create_task(self._pump(source, sink))
            self._pumps.add(pump)
            pump.add_done_callback(self._pumps.discard)

    async def _pump(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        """Forward in order, each chunk released ``delay_s`` after it arrived."""
        held: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def release() -> None:
            while True:
                due, chunk = await held.get()
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                if not chunk:
                    sink.close()
                    return
                sink.write(chunk)
                await sink.drain()

        releaser = asyncio.create_task(release())
        try:
            while chunk := await source.read(65536):
                held.put_nowait((time.monotonic() + self.delay_s, chunk))
            held.put_nowait((time.monotonic() + self.delay_s, b""))
            await releaser
        except (ConnectionError, OSError):
            pass
        finally:
            releaser.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError, OSError):
                await releaser
            self._writers.discard(sink)
            sink.transport.abort()


async def network_delay(typists: int = 4, delay_ms: float = 25.0, cut_s: float = 3.0) -> Outcome:
    outcome = Outcome("network_delay")
    target = urlsplit(REDIS_URL)
    with tempfile.TemporaryDirectory() as root, redis_prefix() as prefix:
        async with DelayProxy(target.hostname or "127.0.0.1", target.port or 6379) as proxy:
            settings = chaos_settings(
                root,
                redis_url=f"redis://127.0.0.1:{proxy.port}{target.path or '/0'}",
                redis_prefix=prefix,
            )
            async with typing_on(settings, typists) as (platform, typing):
                async with asyncio.TaskGroup() as tasks:
                    tasks.create_task(typing.run())
                    await asyncio.sleep(1.0)
                    base = time.monotonic()
                    await asyncio.sleep(3.0)
                    proxy.delay_s = delay_ms / 1000
                    delayed = time.monotonic()
                    await asyncio.sleep(3.0)
                    proxy.delay_s = 0.0
                    proxy.cut()
                    cut_at = time.monotonic()
                    await asyncio.sleep(cut_s)
                    proxy.heal()
                    healed = time.monotonic()
                    recovered = await typing.until_accepted_after(healed, RECOVERY_LIMIT_S)
                    typing.stop.set()
                probe = typing.probe
                outcome.figures |= {
                    "delay_ms_each_way": delay_ms,
                    "p95_ms_base": probe.p95_ms(base + 0.5, delayed),
                    "p95_ms_delayed": probe.p95_ms(delayed + 0.5, cut_at),
                    "cut_s": round(healed - cut_at, 2),
                    "recovered_after_heal_s": None if recovered is None else round(recovered, 2),
                }
                await check_recovered(
                    outcome,
                    platform,
                    typing,
                    recovered,
                    "nothing accepted after the network healed",
                    outage="the cut",
                )
    return outcome
