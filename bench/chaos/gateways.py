"""Gateway nodes lost under live races: SIGKILL one of three while every race runs.

The whole distributed platform in processes: three ``typogram gateway``
nodes and a ``typogram worker races`` on MariaDB (a database of its own),
Redis (a prefix of its own) and a Kafka-protocol broker of its own. Registered
players (two a race) spread over the three nodes queue, are matched and type
their race; once every race has started, the node that holds a third of
them is SIGKILLed. Its players reconnect to a surviving node with their
session and last sequence number (the SDK's resume), re-join their race by
id and type on; the others never stop. Then:

* ``resumed_5s_pct``: players of the killed node back in their race within
  5 s of the kill (goal: all);
* ``races_finished``: races every player finished, with one ``race.result``
  that every player got, the same for both, naming both;
* ``results_lost`` / ``results_doubled``: ``race_results`` rows the races
  worker stored, against one per player per race.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import statistics
import subprocess
import time
import uuid
from collections import defaultdict
from typing import Any

from sqlalchemy import func, select

from bench.chaos.outcome import Outcome
from bench.chaos.stack import (
    broker_stack,
    chaos_settings,
    cheap_passwords,
    start_worker,
    stop_processes,
)
from bench.common import SECRET, GatewayProcess
from tests.integration.test_races import human_log
from tests.race_players import Player, finish, matched, type_until
from typogram.client import ClientError, TypogramClient
from typogram.db.schema import race_results
from typogram.platform import Platform, open_platform
from typogram.tokens import TokenType

RESUME_GOAL_S = 5.0
STORED_WITHIN_S = 30.0
RACES: dict[str, Any] = {
    "race_words": 6,
    "race_countdown_ms": 1000,
    "race_max_players": 2,  # a race starts as soon as two are matched
    "match_max_wait_ms": 60_000,
    "match_interval_ms": 50,
    "race_lease_s": 1.5,
    "race_forward_timeout_s": 0.5,
    "gateway_drain_timeout_s": 3,
}


async def gateway_kill(races: int = 200, wpm: float = 45.0) -> Outcome:
    outcome = Outcome("gateway_kill")
    async with broker_stack() as stack:
        settings = chaos_settings(stack.root, jwt_secret=SECRET, **stack.backends)
        processes: list[GatewayProcess] = []
        worker: subprocess.Popen[bytes] | None = None
        try:
            async with open_platform(settings, migrate=True, passwords=cheap_passwords()) as p:
                tokens = await _players(p, 2 * races)
                worker = start_worker(stack.root, "races", stack.backends)
                for _ in range(3):
                    processes.append(
                        await asyncio.to_thread(
                            GatewayProcess, stack.root, **stack.backends, **RACES
                        )
                    )
                await _race_and_kill(outcome, p, processes, tokens, races, wpm)
        finally:
            await stop_processes(processes, worker)
    return outcome


async def _players(platform: Platform, count: int) -> list[tuple[str, str]]:
    """``count`` registered users (no password: they never log in); (user id, token) each."""
    found = []
    for _ in range(count):
        name = f"r{uuid.uuid4().hex[:12]}"
        user = await platform.accounts.create_user(name, f"{name}@example.com", "-")
        token, _ = platform.tokens.issue(user.id, TokenType.ACCESS, name=name)
        found.append((user.id, token))
    return found


async def connected_player(
    url: str, token: str, user: str, node: int, session: tuple[str | None, int] | None = None
) -> Player:
    """A connected, reading ``Player``; with ``session`` (id, last seq) it resumes that one."""
    client = TypogramClient(url, token, reconnect=False)
    if session is not None:
        client.session, client.last_seq = session
    await client.__aenter__()
    player = Player(client, user, node)
    player.reader = asyncio.create_task(player.read())
    return player


async def close_players(players: list[Player]) -> None:
    for player in players:
        with contextlib.suppress(Exception):
            await player.client.close()
        if player.reader is not None:
            player.reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await player.reader


async def _race_and_kill(
    outcome: Outcome,
    platform: Platform,
    nodes: list[GatewayProcess],
    tokens: list[tuple[str, str]],
    races: int,
    wpm: float,
) -> None:
    players = list(
        await asyncio.gather(
            *(
                connected_player(nodes[i % 3].url, token, user, i % 3)
                for i, (user, token) in enumerate(tokens)
            )
        )
    )
    resumed: list[Player] = []
    try:
        # Pairs queue together (one from each of two nodes), so every pair is one race.
        pairs = [players[i : i + 2] for i in range(0, len(players), 2)]
        found = [await matched(pair) for pair in pairs]
        rng = random.Random(5)
        logs = {p.user: human_log(f["text"], wpm * rng.uniform(0.8, 1.2), rng) for pair, f in
                zip(pairs, found, strict=True) for p in pair}  # fmt: skip
        kill_at = max(f["start_at"] for f in found) / 1000 + 1.0  # every race is running
        moved, resume_s = await _kill_during(nodes[0], pairs, found, logs, kill_at, nodes, resumed)
        await _judge(outcome, platform, pairs, found, moved, resume_s, resumed)
    finally:
        await close_players(players + resumed)


async def _kill_during(
    victim: GatewayProcess,
    pairs: list[list[Player]],
    found: list[dict[str, Any]],
    logs: dict[str, list[list[Any]]],
    kill_at: float,
    nodes: list[GatewayProcess],
    resumed: list[Player],
) -> tuple[int, list[float]]:
    """Everyone types; the victim node dies at ``kill_at``; its players come back."""
    resume_s: list[float] = []
    killed = asyncio.Event()
    killed_at = 0.0

    async def one(player: Player, race: dict[str, Any]) -> dict[str, Any]:
        log, text, start_at = logs[player.user], race["text"], race["start_at"]
        if player.node != 0:
            await type_until(player, race["race"], text, start_at, log, log[-1][0])
            return await finish(player, race["race"], text, log)
        await type_until(player, race["race"], text, start_at, log, kill_at * 1000 - start_at)
        await killed.wait()
        back = await _resume(player, nodes[1 + len(resumed) % 2].url, race["race"])
        resumed.append(back)
        resume_s.append(time.monotonic() - killed_at)
        await type_until(back, race["race"], text, start_at, log, log[-1][0])
        return await finish(back, race["race"], text, log)

    async def kill() -> None:
        nonlocal killed_at
        await asyncio.sleep(max(0.0, kill_at - time.time()))
        victim.proc.kill()
        killed_at = time.monotonic()
        await asyncio.to_thread(victim.proc.wait)
        killed.set()

    async with asyncio.TaskGroup() as tasks:
        tasks.create_task(kill())
        for pair, race in zip(pairs, found, strict=True):
            for player in pair:
                tasks.create_task(_guarded(one(player, race)))
    moved = sum(1 for pair in pairs for p in pair if p.node == 0)
    return moved, resume_s


async def _guarded(work: Any) -> dict[str, Any] | None:
    """A player who could not finish is a finding, not a crash of the scenario."""
    try:
        return dict(await work)
    except (AssertionError, ClientError, TimeoutError, OSError) as exc:
        return {"error": repr(exc)}


async def _resume(old: Player, url: str, race: str) -> Player:
    """Reconnect with the old session on another node and re-join the race by id."""
    session = (old.client.session, old.client.last_seq)
    back = await connected_player(url, old.client.token, old.user, 1, session)
    deadline = time.monotonic() + 15.0
    while True:
        try:
            await back.client.request("race.join", {"race": race})
            return back
        except ClientError as exc:  # unavailable until a surviving node adopts the race
            if exc.code != "unavailable" or time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)


async def _judge(
    outcome: Outcome,
    platform: Platform,
    pairs: list[list[Player]],
    found: list[dict[str, Any]],
    moved: int,
    resume_s: list[float],
    resumed: list[Player],
) -> None:
    now_playing = {p.user: p for p in resumed}
    finished = doubled = 0
    for pair, race in zip(pairs, found, strict=True):
        results = []
        for player in pair:
            current = now_playing.get(player.user, player)
            seen = {str(f.d) for _, f in current.frames if f.t == "race.result"} | {
                str(f.d) for _, f in player.frames if f.t == "race.result"
            }
            if not seen:
                with contextlib.suppress(AssertionError):
                    seen = {str((await current.push("race.result", wait_s=10)).d)}
            doubled += max(0, len(seen) - 1)
            results.append(seen)
        standings_ok = len(results[0]) == 1 and results[0] == results[1]
        named = all(p.user in next(iter(results[0]), "") for p in pair) if standings_ok else False
        finished += int(standings_ok and named)
        del race
    within = sum(1 for s in resume_s if s <= RESUME_GOAL_S)
    outcome.figures |= {
        "races": len(pairs),
        "players_moved": moved,
        "resumed_5s_pct": round(100 * within / moved, 2) if moved else None,
        "resume_median_s": round(statistics.median(resume_s), 2) if resume_s else None,
        "resume_max_s": round(max(resume_s), 2) if resume_s else None,
        "races_finished": finished,
        "results_doubled": doubled,
    }
    outcome.check(within == moved, f"{moved - within} of {moved} players not back within 5 s")
    outcome.check(finished == len(pairs), f"{len(pairs) - finished} races without one result")
    outcome.check(doubled == 0, f"{doubled} players got two different race results")
    await _check_stored(outcome, platform, [f["race"] for f in found])


async def _check_stored(outcome: Outcome, platform: Platform, races: list[str]) -> None:
    deadline = time.monotonic() + STORED_WITHIN_S
    rows: dict[str, int] = defaultdict(int)
    while time.monotonic() < deadline:
        async with platform.db.read(primary=True) as conn:
            found = await conn.execute(
                select(race_results.c.race_id, func.count())
                .where(race_results.c.race_id.in_(races))
                .group_by(race_results.c.race_id)
            )
            rows = defaultdict(int, {str(r[0]): int(r[1]) for r in found})
        if all(rows[race] >= 2 for race in races):
            break
        await asyncio.sleep(0.3)
    lost = sum(max(0, 2 - rows[race]) for race in races)
    extra = sum(max(0, rows[race] - 2) for race in races)
    outcome.figures["results_lost"] = lost
    outcome.figures["results_stored_twice"] = extra
    outcome.check(lost == 0, f"{lost} race results never stored")
    outcome.check(extra == 0, f"{extra} race results stored twice")
