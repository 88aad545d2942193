"""Concurrent races of five across two gateway processes through Redis.

Starts two ``typogram gateway`` processes on one Redis (``--redis``, a DB
index other than 0, a fresh key prefix) with the per-connection rate limit
lifted, then grows the number of running races step by step (``--races``,
default 50, 200, 500, 1000). Every race is private and built exactly: the
host (on node 1) sends ``race.create`` with a fixed 995-character text, four
more clients join by code, members alternating between the two nodes (so
three are on the owner's node and two are forwarded), and the host starts
it. With ``--spread-owners`` every other race is hosted (so owned) on node
2 instead, as when players create races on every node: each gateway then
ticks half the races. With ``--colocate`` all five members of a race connect
to its host's node (no forwarding, and no other node needs its snapshots).
``--procs`` picows client processes each own whole races, so a sender and
the snapshots it waits for share one clock. ``--profile`` profiles the
first gateway by CPU time during the measured steps only.

Once a race runs, each client sends ``race.progress`` twice a second (the
rate clients batch keystrokes at, see docs/protocol.md), ``pos`` rising by 2
each time, with phases spread over the half second. Races from earlier
steps keep running, so step R has R races (5R players) live. Per step,
after the new races started, it measures for ``--step-s`` seconds plus a
grace period:

* p50/p95/p99 latency from a ``race.progress`` to the first ``race.state``
  the sender receives that shows its ``pos`` at least that far, and p50/p95
  of the reports forwarded (racers on the node that does not own the race),
* delivered ``race.state`` frames per second (all clients),
* server CPU per delivered frame: utime+stime of both gateway processes from
  ``/proc/PID/stat`` over the step, divided by delivered frames, and its
  kernel part (stime) apart; Redis CPU the same way from ``INFO cpu``, and
  the client processes' CPU (the load generator shares the machine).

It stops growing once p95 passes two seconds. Run::

    python -m bench.races
    python -m bench.races --races 50,200 --step-s 10 --procs 2
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import re
import time
import uuid
from collections import Counter
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

import orjson
import redis
from picows import WSFrame, WSMsgType, WSTransport, ws_connect

from bench.common import (
    GatewayProcess,
    Peer,
    cpu_s,
    cpu_times,
    delete_prefix,
    join_all,
    migrated_dir,
    percentile,
    print_table,
    raise_nofile,
    recv_all,
    token_service,
)

SIZE = 5
STATE = b'{"t":"race.state"'  # how the server's snapshot frames begin
POS = re.compile(rb'"pos":(\d+)')
GRACE_S = 1.5
PERIOD_S = 0.5  # each client sends race.progress twice a second
BUCKETS = 50  # phases within the period: one bucket every 10 ms
STEP_CHARS = 2
TEXT = ("the quick brown fox jumps over a lazy dog " * 24)[:995].strip()
SETUP_TIMEOUT_S = 120.0  # per setup step (connect, create, join, countdown)
SETUP_PARALLEL = 8  # races being built at once per client process (more swamps the gateways)
SETUP_RETRIES = 5  # a setup request answered ``unavailable`` is sent again


class RacePeer(Peer):
    """A racer's connection: ``race.state`` frames go to ``on_state`` as bytes, unparsed."""

    def __init__(
        self,
        token: str,
        on_frame: Callable[[Peer, dict[str, Any]], None],
        on_state: Callable[[Peer, bytes], None],
    ) -> None:
        super().__init__(token, on_frame)
        self.on_state = on_state

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type == WSMsgType.TEXT:
            payload = frame.get_payload_as_bytes()
            if payload.startswith(STATE):
                self.frames += 1
                self.on_state(self, payload)
                return
        super().on_ws_frame(transport, frame)


class Racer:
    """One client in one race: what it reported and when, awaiting snapshots."""

    __slots__ = ("index", "key", "peer", "pending", "pos", "race", "running_at", "user", "waiters")

    def __init__(self, peer: Peer, user: str, index: int) -> None:
        self.peer = peer
        self.user = user
        self.key = b'"user":' + orjson.dumps(user)  # how its entry in a race.state begins
        self.index = index
        self.race = ""
        self.pos = 0
        self.running_at = float("inf")  # monotonic time of start_at
        self.pending: list[tuple[int, int, str]] = []  # (pos, sent ns, step)
        self.waiters: dict[str, asyncio.Future[dict[str, Any]]] = {}


class Worker:
    """One client process: its races and the counters of the current step."""

    def __init__(
        self, urls: list[str], prefix: str, spread: bool = False, colocate: bool = False
    ) -> None:
        self.urls = urls
        self.prefix = prefix
        self.spread = spread  # host every other race on the next node
        self.colocate = colocate  # every member on the host's node
        self.racers: dict[Peer, Racer] = {}
        self.buckets: list[list[Racer]] = [[] for _ in range(BUCKETS)]
        self.step = ""
        self.latencies: list[float] = []
        self.forwarded: list[float] = []  # those of racers on a node other than the owner's
        self.delivered = 0
        self.errors: Counter[str] = Counter()
        self.made = 0
        self.user = 0
        self.retries = 0  # setup requests sent again after ``unavailable``

    # -- frames -----------------------------------------------------------------------------

    def on_state(self, peer: Peer, payload: bytes) -> None:
        """A ``race.state``, read without a JSON parse: the sender's own ``pos`` is found
        by its entry's ``"user":"…"`` key (the load generator's hot path: ~4 frames per
        racer a second; parsing each one cost the machine the gateways share)."""
        racer = self.racers.get(peer)
        if racer is None:
            return
        self.delivered += 1
        at = payload.find(racer.key)
        found = POS.search(payload, at) if at >= 0 else None
        seen = int(found.group(1)) if found is not None else -1
        now = time.time_ns()
        while racer.pending and racer.pending[0][0] <= seen:
            _, sent, step = racer.pending.pop(0)
            if step == self.step:
                self.latencies.append((now - sent) / 1e6)
                if racer.index % 2 and not self.colocate:  # members alternate nodes
                    self.forwarded.append((now - sent) / 1e6)

    def on_frame(self, peer: Peer, message: dict[str, Any]) -> None:
        racer = self.racers.get(peer)
        if racer is None:
            return
        kind = message.get("t")
        if kind == "error":
            data = message["d"]
            self.errors[f"{data.get('code', '?')}: {str(data.get('message', ''))[:40]}"] += 1
            if message.get("re") is not None:  # a setup step refused: fail what waits for it
                for failing in racer.waiters.values():
                    if not failing.done():
                        failing.set_exception(RuntimeError(str(message["d"])))
                racer.waiters.clear()
            return
        waiter = racer.waiters.pop(str(kind)) if kind in racer.waiters else None
        if waiter is not None and not waiter.done():
            waiter.set_result(message)

    def _expect(self, racer: Racer, kind: str) -> asyncio.Future[dict[str, Any]]:
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        racer.waiters[kind] = future
        return future

    # -- building races -----------------------------------------------------------------------

    async def _connect(self, token: str, url: str, user_id: str, index: int) -> Racer:
        _, listener = await ws_connect(lambda: RacePeer(token, self.on_frame, self.on_state), url)
        assert isinstance(listener, RacePeer)
        peer = listener
        await asyncio.wait_for(peer.welcome, SETUP_TIMEOUT_S)
        racer = Racer(peer, user_id, index)
        self.racers[peer] = racer
        return racer

    async def _ask(self, racer: Racer, frame: dict[str, Any], kind: str) -> dict[str, Any]:
        """Send a setup request and wait for its answer; retry on ``unavailable`` (as
        docs/protocol.md tells clients: a forwarded request times out under load)."""
        for attempt in range(SETUP_RETRIES + 1):
            answer = self._expect(racer, kind)
            racer.peer.send(frame)
            try:
                return await asyncio.wait_for(answer, SETUP_TIMEOUT_S)
            except RuntimeError as exc:
                if "unavailable" not in str(exc) or attempt == SETUP_RETRIES:
                    raise
                self.retries += 1
                await asyncio.sleep(0.5)
        raise AssertionError("unreachable")

    def _url(self, member: int, shift: int) -> str:
        return self.urls[(shift if self.colocate else member + shift) % len(self.urls)]

    async def _race(
        self, gate: asyncio.Semaphore, tokens: list[tuple[str, str]], number: int
    ) -> None:
        shift = number if self.spread else 0  # the host's node
        async with gate:  # the five connect at once, then the four join at once
            members = await asyncio.gather(
                *(
                    self._connect(token, self._url(i, shift), user, i)
                    for i, (token, user) in enumerate(tokens)
                )
            )
            host = members[0]
            create = {"t": "race.create", "id": 1, "d": {"text": TEXT}}
            data = (await self._ask(host, create, "race.created"))["d"]
            join = {"t": "race.join", "id": 2, "d": {"code": data["code"]}}
            await asyncio.gather(*(self._ask(r, join, "race.joined") for r in members[1:]))
            countdowns = [self._expect(r, "race.countdown") for r in members]
            host.peer.send({"t": "race.start", "id": 3, "d": {"race": data["race"]}})
            for racer, waiting in zip(members, countdowns, strict=True):
                start_at = (await asyncio.wait_for(waiting, SETUP_TIMEOUT_S))["d"]["start_at"]
                racer.race = data["race"]
                racer.running_at = time.monotonic() + start_at / 1000 - time.time() + 0.05
                self.buckets[(self.made * SIZE + racer.index) % BUCKETS].append(racer)
            self.made += 1

    async def grow(self, count: int) -> dict[str, Any]:
        started = time.monotonic()
        service = token_service()
        tokens = []
        for number in range(self.user, self.user + count * SIZE):
            token, claims = service.issue_guest(f"{self.prefix}{number}")
            tokens.append((token, claims.subject))
        self.user += count * SIZE
        gate = asyncio.Semaphore(SETUP_PARALLEL)
        before = self.made
        results = await asyncio.gather(
            *(self._race(gate, tokens[i * SIZE : (i + 1) * SIZE], i) for i in range(count)),
            return_exceptions=True,
        )
        failures = [repr(r) for r in results if isinstance(r, BaseException)][:3]
        return {
            "made": self.made - before,
            "setup_s": time.monotonic() - started,
            "fail": failures,
            "retries": self.retries,
        }

    # -- load ----------------------------------------------------------------------------------

    async def send_forever(self) -> None:
        tick = PERIOD_S / BUCKETS
        index = 0
        next_at = time.monotonic()
        while True:
            next_at += tick
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            now = time.monotonic()
            for racer in self.buckets[index % BUCKETS]:
                if now < racer.running_at or racer.pos + STEP_CHARS > len(TEXT):
                    continue
                if not racer.peer.open:
                    continue
                racer.pos += STEP_CHARS
                racer.pending.append((racer.pos, time.time_ns(), self.step))
                racer.peer.send(
                    {"t": "race.progress", "d": {"race": racer.race, "pos": racer.pos, "errors": 0}}
                )
            index += 1

    async def measure(self, step: str, duration_s: float) -> dict[str, Any]:
        self.latencies, self.forwarded, self.delivered = [], [], 0
        self.errors.clear()
        self.step = step
        started = time.monotonic()
        await asyncio.sleep(duration_s)
        self.step = ""  # later sends are not measured; frames still count in the grace
        await asyncio.sleep(GRACE_S)
        elapsed = time.monotonic() - started
        closed = sum(not r.peer.open for r in self.racers.values())
        return {
            "elapsed": elapsed,
            "delivered": self.delivered,
            "latencies": self.latencies,
            "forwarded": self.forwarded,
            "errors": dict(self.errors),
            "closed": closed,
        }


async def _worker_main(
    urls: list[str], prefix: str, spread: bool, colocate: bool, pipe: Connection
) -> None:
    worker = Worker(urls, prefix, spread, colocate)
    loop = asyncio.get_running_loop()
    sender = asyncio.create_task(worker.send_forever())
    try:
        while (command := await loop.run_in_executor(None, pipe.recv))[0] != "stop":
            if command[0] == "grow":
                pipe.send(await worker.grow(command[1]))
            elif command[0] == "measure":
                pipe.send(await worker.measure(command[1], command[2]))
    finally:
        sender.cancel()
        for racer in worker.racers.values():
            transport = racer.peer.transport
            if racer.peer.open and transport is not None:
                transport.send_close()
                transport.disconnect()
    pipe.send(("done",))


def _worker_process(
    urls: list[str], prefix: str, spread: bool, colocate: bool, pipe: Connection
) -> None:
    raise_nofile()
    import uvloop

    uvloop.run(_worker_main(urls, prefix, spread, colocate, pipe))


def _redis_cpu(client: redis.Redis) -> float:
    info = client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def run(args: argparse.Namespace, gateways: list[GatewayProcess]) -> list[dict[str, Any]]:
    urls = [g.url for g in gateways]
    ctx = mp.get_context("spawn")
    procs, pipes = [], []
    rows: list[dict[str, Any]] = []
    rds = redis.Redis.from_url(args.redis)
    try:
        for index in range(args.procs):
            mine, theirs = ctx.Pipe()
            proc = ctx.Process(
                target=_worker_process,
                args=(urls, f"w{index}u", args.spread_owners, args.colocate, theirs),
            )
            proc.start()
            procs.append(proc)
            pipes.append(mine)
        have = 0
        for number, target in enumerate(args.races):
            new = target - have
            shares = [
                new // args.procs + (1 if i < new % args.procs else 0) for i in range(args.procs)
            ]
            for pipe, share in zip(pipes, shares, strict=True):
                pipe.send(("grow", share))
            grown = recv_all(pipes, args.setup_timeout_s)
            have += sum(g["made"] for g in grown)
            setup_s = max(g["setup_s"] for g in grown)
            failures = [f for g in grown for f in g["fail"]]
            time.sleep(1.5)  # the newest countdowns end and their first reports go out
            cpu0 = [cpu_s(g.pid) for g in gateways]
            sys0 = sum(cpu_times(g.pid)[1] for g in gateways)
            clients0 = sum(cpu_s(p.pid) for p in procs if p.pid is not None)
            redis0 = _redis_cpu(rds)
            with gateways[0].profiling():  # --profile: the measured part only
                for pipe in pipes:
                    pipe.send(("measure", f"s{number}", args.step_s))
                results = recv_all(pipes, args.step_s + GRACE_S + 60)
            per_node = [cpu_s(g.pid) - c for g, c in zip(gateways, cpu0, strict=True)]
            server_cpu = sum(per_node)
            server_sys = sum(cpu_times(g.pid)[1] for g in gateways) - sys0
            clients_cpu = sum(cpu_s(p.pid) for p in procs if p.pid is not None) - clients0
            redis_cpu = _redis_cpu(rds) - redis0
            elapsed = max(r["elapsed"] for r in results)
            delivered = sum(r["delivered"] for r in results)
            latencies = [x for r in results for x in r["latencies"]]
            forwarded = [x for r in results for x in r["forwarded"]]
            errors: Counter[str] = Counter()
            for r in results:
                errors.update(r["errors"])
            row = {
                "races": have,
                "players": have * SIZE,
                "setup_s": round(setup_s, 1),
                "progress/s": round(len(latencies) / args.step_s),
                "p50_ms": round(percentile(latencies, 50), 1),
                "p95_ms": round(percentile(latencies, 95), 1),
                "p99_ms": round(percentile(latencies, 99), 1),
                "fwd_p50/p95_ms": (
                    f"{percentile(forwarded, 50):.0f}/{percentile(forwarded, 95):.0f}"
                    if forwarded
                    else "-"
                ),
                "state/s": round(delivered / elapsed),
                "gw_cpu_us/frame": round(1e6 * server_cpu / max(1, delivered), 1),
                "gw_sys_us/frame": round(1e6 * server_sys / max(1, delivered), 1),
                "gw_cpu_%": round(100 * server_cpu / elapsed),
                "gw_cpu_%_per_node": "/".join(str(round(100 * c / elapsed)) for c in per_node),
                "redis_cpu_%": round(100 * redis_cpu / elapsed),
                "clients_cpu_%": round(100 * clients_cpu / elapsed),
                "errors": dict(errors),
                "closed": sum(r["closed"] for r in results),
            }
            row["setup_retries"] = sum(g["retries"] for g in grown)  # so far, all steps
            if failures:
                row["setup_failures"] = failures
            rows.append(row)
            print(row, flush=True)
            if row["p95_ms"] > 2000 or have < target * 0.9:
                break
        for pipe in pipes:
            pipe.send(("stop",))
        recv_all(pipes, 60)
    finally:
        join_all(procs)
        rds.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/14")
    parser.add_argument("--races", default="50,200,500,1000")
    parser.add_argument("--procs", type=int, default=2, help="client processes")
    parser.add_argument("--step-s", type=float, default=10.0)
    parser.add_argument("--setup-timeout-s", type=float, default=240.0)
    parser.add_argument(
        "--spread-owners", action="store_true", help="host every other race on node 2"
    )
    parser.add_argument(
        "--colocate", action="store_true", help="all five members of a race on its host's node"
    )
    parser.add_argument(
        "--profile", default="", help="cProfile the first gateway (measured steps) into this file"
    )
    args = parser.parse_args()
    args.races = [int(r) for r in args.races.split(",")]
    raise_nofile()
    data_dir = migrated_dir()
    prefix = f"bench{uuid.uuid4().hex[:8]}:"
    settings = {
        "redis_url": args.redis,
        "redis_prefix": prefix,
        "ws_rate_per_s": 1_000_000,
        "ws_rate_burst": 1_000_000,
        "ws_max_connections": 20_000,
        "ws_send_queue_size": 4096,
        "race_countdown_ms": 1000,
        "race_time_limit_ms": 900_000,
        "race_max_private_text": 1000,
    }
    gateways = [GatewayProcess(data_dir, profile=args.profile, profile_steps=True, **settings)]
    gateways.append(GatewayProcess(data_dir, **settings))
    rows: list[dict[str, Any]] = []
    try:
        rows = run(args, gateways)
    finally:
        for gateway in gateways:
            gateway.stop()
        delete_prefix(args.redis, prefix)
    print_table(rows, skip=("setup_failures", "setup_retries"))


if __name__ == "__main__":
    main()
