"""The Redis master killed under chat on two gateways: how soon chat crosses nodes again.

Redis with Sentinel (``tests/clusters.py``), two ``typogram gateway`` nodes
on it (embedded SQL), chatters on both nodes talking in one room and a
listener on each node. The master is SIGKILLed; Sentinel promotes the
replica. Per message the scenario knows when it was acknowledged and
whether the listener on the *other* node got it:

* ``chat_back_s``: from the kill to the first acknowledged message that
  crossed to the other node (both nodes resubscribed, scripts run again);
* ``errors``: error replies to ``chat.send`` meanwhile (``unavailable``
  is the contract; any other code breaks an invariant);
* ``lost_before`` / ``lost_after``: acknowledged messages sent before the
  kill, or after chat was back, that never crossed (goal 0);
* ``missed_in_failover``: acknowledged during the failover and not
  delivered live (pub/sub keeps nothing; a client that joins again gets
  the room's history).
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.chaos.outcome import Outcome
from bench.common import GatewayProcess, guest_tokens, migrated_dir
from tests.clusters import RedisSentinelGroup
from tests.race_players import Player, close_players, connected_player
from typogram.client import ClientError, ConnectionLost

ROOM = "failover"
AFTER_KILL_S = 8.0


@dataclass
class Sent:
    acked: dict[str, tuple[float, int]] = field(default_factory=dict)  # id → (acked at, node)
    errors: Counter[str] = field(default_factory=Counter)


async def chat_failover(chatters: int = 10, rate_per_s: float = 2.0) -> Outcome:
    outcome = Outcome("chat_failover")
    data_dir = await asyncio.to_thread(migrated_dir)
    with tempfile.TemporaryDirectory() as root:
        group = RedisSentinelGroup(Path(root) / "redis")
        await asyncio.to_thread(group.start)
        nodes: list[GatewayProcess] = []
        players: list[Player] = []
        try:
            backends: dict[str, Any] = {
                "redis_url": "redis://",
                "redis_sentinels": ",".join(group.sentinels),
                "redis_prefix": f"chaos{uuid.uuid4().hex[:8]}:",
                "backend_connect_timeout_s": 1.0,
                "log_level": "ERROR",
            }
            for _ in range(2):
                nodes.append(await asyncio.to_thread(GatewayProcess, data_dir, **backends))
            tokens = guest_tokens(chatters + 2, "f")
            for index, token in enumerate(tokens):
                player = await connected_player(nodes[index % 2].url, token, f"p{index}", index % 2)
                players.append(player)
                await player.client.request("room.join", {"room": ROOM})
            await _run(outcome, group, players, 1 / rate_per_s)
        finally:
            await close_players(players)
            for node in nodes:
                await asyncio.to_thread(node.stop, 10.0)
            await asyncio.to_thread(group.stop)
            shutil.rmtree(data_dir, ignore_errors=True)
    return outcome


async def _run(
    outcome: Outcome, group: RedisSentinelGroup, players: list[Player], period_s: float
) -> None:
    listeners, chatters = players[:2], players[2:]
    sent, stop = Sent(), asyncio.Event()
    async with asyncio.TaskGroup() as tasks:
        for chatter in chatters:
            tasks.create_task(_chat(chatter, sent, period_s, stop))
        await asyncio.sleep(2.0)  # the conversation runs
        old = await asyncio.to_thread(group.kill_master)
        killed_at = time.monotonic()
        await asyncio.to_thread(group.wait_failover, old, 60.0)
        promoted_s = time.monotonic() - killed_at
        await asyncio.sleep(max(0.0, killed_at + AFTER_KILL_S - time.monotonic()))
        stop.set()
    await asyncio.sleep(1.0)  # deliveries in flight
    await asyncio.to_thread(group.rejoin, old)
    heard = [
        {str(f.d["id"]) for _, f in listener.frames if f.t == "chat.message"}
        for listener in listeners
    ]

    def crossed(message: str) -> bool:
        node = sent.acked[message][1]
        return message in heard[1 - node]

    after = sorted((at, m) for m, (at, _) in sent.acked.items() if at > killed_at)
    back_at = next((at for at, m in after if crossed(m)), None)
    before = [m for m, (at, _) in sent.acked.items() if at <= killed_at]
    settled = [m for at, m in after if back_at is not None and at > back_at + 1.0]
    during = [m for at, m in after if back_at is None or at <= back_at + 1.0]
    outcome.figures |= {
        "acked": len(sent.acked),
        "promoted_s": round(promoted_s, 2),
        "chat_back_s": None if back_at is None else round(back_at - killed_at, 2),
        "errors": sum(sent.errors.values()),
        "lost_before": sum(1 for m in before if not crossed(m)),
        "missed_in_failover": sum(1 for m in during if not crossed(m)),
        "lost_after": sum(1 for m in settled if not crossed(m)),
    }
    wrong = {code: n for code, n in sent.errors.items() if code != "unavailable"}
    outcome.check(back_at is not None, "no message crossed nodes after the failover")
    outcome.check(outcome.figures["lost_before"] == 0, "acked before the kill, never crossed")
    outcome.check(outcome.figures["lost_after"] == 0, "acked after chat was back, never crossed")
    outcome.check(not wrong, f"chat.send answered {wrong} during the failover (not unavailable)")


async def _chat(player: Player, sent: Sent, period_s: float, stop: asyncio.Event) -> None:
    number = 0
    while not stop.is_set():
        number += 1
        try:
            reply = await player.client.request(
                "chat.send", {"room": ROOM, "text": f"{player.user} {number}"}, wait_s=3
            )
            sent.acked[str(reply.d["id"])] = (time.monotonic(), player.node)
        except ClientError as exc:
            sent.errors[exc.code] += 1
        except (ConnectionLost, TimeoutError) as exc:
            sent.errors[type(exc).__name__] += 1
            if isinstance(exc, ConnectionLost):
                return
        await asyncio.sleep(period_s)
