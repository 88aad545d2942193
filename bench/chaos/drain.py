"""A gateway drained (SIGTERM) under chat load: how long it takes, and nothing acked is lost.

Two ``typogram gateway`` nodes (A, B) and a ``typogram worker chat`` on
MariaDB, Redis and a broker of their own. Chatters on both nodes send to one
room at a steady pace and keep the id of every ``chat.send`` the server
acknowledged; a listener on B records every ``chat.message`` it gets. A
gets SIGTERM mid-conversation: it tells its clients to go (1012) and exits;
they resume their sessions on B and carry on. Then:

* ``drain_s``: SIGTERM to exit (goal < 30 s; the setting bounds it);
* ``lost_stored``: acknowledged messages missing from ``chat_messages``;
* ``lost_delivered``: acknowledged messages the listener on B never got;
* ``reconnect_max_s``: the longest a chatter of A was without a node.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from dataclasses import dataclass, field

from sqlalchemy import select

from bench.chaos.outcome import Outcome
from bench.chaos.stack import (
    broker_stack,
    chaos_settings,
    cheap_passwords,
    start_worker,
    stop_processes,
)
from bench.common import SECRET, GatewayProcess
from tests.race_players import Player, close_players, connected_player
from typogram.client import ClientError, ConnectionLost
from typogram.db.schema import chat_messages
from typogram.platform import Platform, open_platform

ROOM = "chaos"
DRAIN_GOAL_S = 30.0
STORED_WITHIN_S = 30.0


@dataclass
class Chat:
    acked: set[str] = field(default_factory=set)
    gaps: list[float] = field(default_factory=list)  # seconds without a node, per reconnect
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    failures: list[str] = field(default_factory=list)


async def gateway_drain(chatters: int = 20, rate_per_s: float = 2.0) -> Outcome:
    outcome = Outcome("gateway_drain")
    async with broker_stack() as stack:
        settings = chaos_settings(stack.root, jwt_secret=SECRET, **stack.backends)
        nodes: list[GatewayProcess] = []
        worker = None
        try:
            async with open_platform(settings, migrate=True, passwords=cheap_passwords()) as p:
                worker = start_worker(stack.root, "chat", stack.backends)
                for _ in range(2):
                    nodes.append(
                        await asyncio.to_thread(GatewayProcess, stack.root, **stack.backends)
                    )
                await _chat_and_drain(outcome, p, nodes, chatters, rate_per_s)
        finally:
            await stop_processes(nodes, worker)
    return outcome


async def _chat_and_drain(
    outcome: Outcome,
    platform: Platform,
    nodes: list[GatewayProcess],
    chatters: int,
    rate_per_s: float,
) -> None:
    node_a, node_b = nodes
    chat = Chat()
    players: list[Player] = []
    tokens = [platform.tokens.issue_guest(f"g{i}")[0] for i in range(chatters + 1)]
    try:
        listener = await connected_player(node_b.url, tokens[0], "listener", 1)
        players.append(listener)
        await listener.client.request("room.join", {"room": ROOM})
        for index, token in enumerate(tokens[1:]):
            node = index % 2
            player = await connected_player(nodes[node].url, token, f"c{index}", node)
            players.append(player)
            await player.client.request("room.join", {"room": ROOM})
        async with asyncio.TaskGroup() as tasks:
            for player in players[1:]:
                tasks.create_task(_chatter(chat, player, node_b.url, 1 / rate_per_s, players))
            await asyncio.sleep(2.0)  # steady conversation first
            node_a.proc.terminate()
            signalled = time.monotonic()
            code = await asyncio.to_thread(node_a.proc.wait)
            drain_s = time.monotonic() - signalled
            await asyncio.sleep(2.0)  # the conversation goes on on B
            chat.stop.set()
        await asyncio.sleep(1.0)  # deliveries in flight arrive
        heard = {str(f.d["id"]) for _, f in listener.frames if f.t == "chat.message"}
        stored = await _stored(platform, chat.acked)
    finally:
        await close_players(players)
    outcome.figures |= {
        "chatters": chatters,
        "acked": len(chat.acked),
        "drain_s": round(drain_s, 2),
        "exit_code": code,
        "reconnect_max_s": round(max(chat.gaps), 2) if chat.gaps else None,
        "lost_stored": len(chat.acked - stored),
        "lost_delivered": len(chat.acked - heard),
    }
    outcome.check(code == 0, f"the drained node exited with {code}")
    outcome.check(drain_s < DRAIN_GOAL_S, f"drain took {drain_s:.1f} s")
    outcome.check(not chat.failures, f"chatters failed: {chat.failures[:3]}")
    outcome.check(chat.acked <= stored, f"{len(chat.acked - stored)} acked messages not stored")
    outcome.check(chat.acked <= heard, f"{len(chat.acked - heard)} acked messages not delivered")


async def _chatter(
    chat: Chat, player: Player, fallback_url: str, period_s: float, everyone: list[Player]
) -> None:
    """Send until told to stop; when the node goes away, resume on ``fallback_url``."""
    current = player
    for number in itertools.count():
        if chat.stop.is_set():
            return
        try:
            sent = await current.client.request(
                "chat.send", {"room": ROOM, "text": f"{current.user} {number}"}, wait_s=5
            )
            chat.acked.add(str(sent.d["id"]))
        except (ConnectionLost, ClientError, TimeoutError) as exc:
            if isinstance(exc, ClientError) and exc.code != "unavailable":
                chat.failures.append(repr(exc))
                return
            if current.client.close_code is None and not isinstance(exc, ConnectionLost):
                continue  # the node is still there: try again
            lost_at = time.monotonic()
            current = await _resume(current, fallback_url)
            everyone.append(current)
            chat.gaps.append(time.monotonic() - lost_at)
        await asyncio.sleep(period_s)


async def _resume(old: Player, url: str) -> Player:
    back = await connected_player(
        url, old.client.token, old.user, 1, session=(old.client.session, old.client.last_seq)
    )
    with contextlib.suppress(ClientError):  # resumed sessions keep their rooms
        await back.client.request("room.join", {"room": ROOM})
    return back


async def _stored(platform: Platform, ids: set[str]) -> set[str]:
    deadline = time.monotonic() + STORED_WITHIN_S
    found: set[str] = set()
    while time.monotonic() < deadline:
        async with platform.db.read(primary=True) as conn:
            rows = await conn.execute(
                select(chat_messages.c.id).where(chat_messages.c.id.in_(list(ids)))
            )
            found = {str(row[0]) for row in rows}
        if found >= ids:
            break
        await asyncio.sleep(0.3)
    return found
