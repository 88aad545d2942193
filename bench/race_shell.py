"""The race shell on one machine, no sockets: CPU per ``race.progress`` through ``Races``.

Two ``Races`` nodes ("a" and "b") on the embedded adapters (memory cache,
in-process pub/sub), one running race of five created on "a" with members
on both nodes, sessions attached to links that drop what they are sent.
Each case sends ``race.progress`` reports through ``Races.dispatch`` and
reports process CPU (``time.process_time``) per report, including what the
engines do with it (forwarding, serving, ticking and snapshots to the five
sessions) until the reports have been served:

* ``owner`` -- from a session on node "a", which owns the race,
* ``forwarded`` -- from a session on node "b" (quiet batches to "a").

What the shell costs on top of the core (``bench/race_core.py``); the
websocket and Redis I/O of a real node are not in it. Run::

    python -m bench.race_shell
    python -m bench.race_shell --reports 50000 --repeat 5
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Mapping
from typing import Any

import uvloop

from gateway.races.messages import Join
from gateway.races.service import Races
from gateway.sessions.session import Session, SessionRegistry
from typogram.adapters.memory_cache import MemoryCache
from typogram.adapters.memory_events import InProcessEventLog
from typogram.adapters.memory_pubsub import MemoryPubSub
from typogram.adapters.memory_queues import MemoryMatchQueues
from typogram.adapters.memory_scripts import MemoryFencedWrites
from typogram.protocol import RaceCreate, RaceProgress, RaceStart
from typogram.settings import load
from typogram.tokens import Claims, TokenType

TEXT = ("the quick brown fox jumps over a lazy dog " * 24)[:995].strip()
PLAYERS = 5


class Link:
    """An attached socket that drops what it is sent."""

    def send(self, frame: bytes, kind: str) -> None:
        pass

    def terminate(self, code: int, reason: str, *, flush: bool = False) -> None:
        pass


def _ignore(kind: str, data: Mapping[str, Any]) -> None:
    pass


async def measure(case: str, reports: int) -> float:
    settings = load(
        env={},
        environment="test",
        jwt_secret="bench-" + "s" * 40,
        race_countdown_ms=0,
        race_max_private_text=len(TEXT),
        race_time_limit_ms=900_000,
    )
    async with (
        MemoryCache() as cache,
        MemoryPubSub() as pubsub,
        InProcessEventLog() as events,
        MemoryMatchQueues() as queues,
    ):
        registries = [
            SessionRegistry(window_s=60, max_detached=10, replay_frames=64, replay_bytes=1 << 20)
            for _ in range(2)
        ]
        nodes = [
            Races(
                settings,
                node_id=node,
                cache=cache,
                fences=MemoryFencedWrites(cache),
                pubsub=pubsub,
                events=events,
                sessions=registries[index],
                clock=time.time,
                queues=queues,
            )
            for index, node in enumerate("ab")
        ]
        for node in nodes:
            await node.open()
        tasks = [asyncio.create_task(node.run()) for node in nodes]
        try:
            sessions: list[Session] = []
            for n in range(PLAYERS):
                claims = Claims(f"u{n}", TokenType.GUEST, 0, f"u{n}", "guest", "", 2_000_000_000)
                session = registries[n % 2].create(claims)
                session.link = Link()
                sessions.append(session)
            created: dict[str, Any] = {}

            def reply(kind: str, data: Mapping[str, Any]) -> None:
                if kind == "race.created":
                    created.update(data)

            await nodes[0].dispatch(sessions[0], RaceCreate(text=TEXT), reply)
            race_id = str(created["race"])
            for n in range(1, PLAYERS):
                join = Join(f"u{n}", f"u{n}", guest=True)
                await nodes[n % 2]._apply(sessions[n], race_id, join, _ignore)
            await nodes[0].dispatch(sessions[0], RaceStart(race=race_id), _ignore)
            await asyncio.sleep(0.1)  # running
            sender = sessions[0] if case == "owner" else sessions[1]
            node = nodes[0] if case == "owner" else nodes[1]
            started = time.process_time()
            for k in range(reports):
                # errors changes every time: every report changes the race
                await node.dispatch(sender, RaceProgress(race=race_id, pos=0, errors=k), _ignore)
                if k % 200 == 199:
                    await asyncio.sleep(0)  # let batches go out and ticks run
            await asyncio.sleep(0.3)  # the last batch served (idle time costs no CPU)
            return (time.process_time() - started) / reports
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for node in nodes:
                await node.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--reports", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs per case; the best is kept")
    args = parser.parse_args()
    print("| case | µs / report (best) |")
    print("|---|---:|")
    for case in ("owner", "forwarded"):
        best = min(uvloop.run(measure(case, args.reports)) for _ in range(args.repeat))
        print(f"| {case} | {best * 1e6:.2f} |", flush=True)


if __name__ == "__main__":
    main()
