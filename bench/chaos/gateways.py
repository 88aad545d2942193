"""Gateway nodes lost under live races: SIGKILL one of three while every race runs.

The whole distributed platform in processes: three ``typogram gateway``
nodes and a ``typogram worker races`` on MariaDB (a database of its own),
Redis (a prefix of its own) and a Kafka-protocol broker of its own. Registered
players (two a race) spread over the three nodes queue, are matched and type
their race; once every race has started, the node that holds a third of
them is SIGKILLed. Its players reconnect to a surviving node with their
session and last sequence number (the SDK's resume), re-join their race by
id and type on; the others never stop. Chat members (guests, in rooms of
``ROOM_SIZE`` spread over the three nodes) listen while a writer on a
surviving node sends acknowledged messages before, during and after the
kill; the killed node's members resume elsewhere too. Then:

* ``resumed_5s_pct``: players of the killed node back in their race within
  5 s of the kill (goal: all);
* ``same_session_pct`` / ``resumed_true_pct``: of the killed node's clients
  (players and chat members), those whose resume elsewhere kept their
  session id / got ``resumed: true`` (goals 99.9 % / 99 %);
* ``unavailable``: ``unavailable`` answers to the players' ``race.join``
  after the kill (goal 0);
* ``chat_lost``: acknowledged chat messages some member of their room never
  got, live, replayed or in a ``room.joined`` history (goal 0);
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
from dataclasses import dataclass, field
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
from bench.common import SECRET, GatewayProcess, guest_tokens
from tests.integration.test_races import human_log
from tests.race_players import (
    Player,
    close_players,
    connected_player,
    finish,
    matched,
    type_until,
)
from typogram.client import ClientError
from typogram.db.schema import race_results
from typogram.platform import Platform, open_platform
from typogram.tokens import TokenType

RESUME_GOAL_S = 5.0
ROOM_SIZE = 50
ROOM_MESSAGE_EVERY_S = 0.5  # each room: a busy conversation, two messages a second
STORED_WITHIN_S = 30.0
RACES: dict[str, Any] = {
    "race_words": 6,
    "race_countdown_ms": 1000,
    "race_max_players": 2,  # a race starts as soon as two are matched
    "match_max_wait_ms": 60_000,
    "match_interval_ms": 50,
    "race_lease_s": 1.5,
    "race_forward_timeout_s": 0.5,
    "ws_takeover_wait_s": 0.5,
    "gateway_drain_timeout_s": 3,
}


@dataclass
class Resumes:
    """What the killed node's clients got back, and what chat was acknowledged."""

    clients: int = 0
    same_session: int = 0
    resumed: int = 0
    unavailable: int = 0
    acked: dict[str, str] = field(default_factory=dict)  # message id -> room
    chat_errors: int = 0

    def note(self, old: Player, back: Player) -> None:
        self.clients += 1
        self.same_session += int(back.client.session == old.client.session)
        self.resumed += int(back.client.resumed)


async def gateway_kill(races: int = 200, members: int = 0, wpm: float = 45.0) -> Outcome:
    outcome = Outcome("gateway_kill")
    async with broker_stack() as stack:
        settings = chaos_settings(stack.root, jwt_secret=SECRET, **stack.backends)
        processes: list[GatewayProcess] = []
        worker: subprocess.Popen[bytes] | None = None
        try:
            async with open_platform(settings, migrate=True, passwords=cheap_passwords()) as p:
                tokens = await registered_players(p, 2 * races)
                worker = start_worker(stack.root, "races", stack.backends)
                for _ in range(3):
                    processes.append(
                        await asyncio.to_thread(
                            GatewayProcess, stack.root, **stack.backends, **RACES
                        )
                    )
                await _race_and_kill(outcome, p, processes, tokens, races, members, wpm)
        finally:
            await stop_processes(processes, worker)
    return outcome


async def registered_players(platform: Platform, count: int) -> list[tuple[str, str]]:
    """``count`` registered users (no password: they never log in); (user id, token) each."""
    found = []
    for _ in range(count):
        name = f"r{uuid.uuid4().hex[:12]}"
        user = await platform.accounts.create_user(name, f"{name}@example.com", "-")
        token, _ = platform.tokens.issue(user.id, TokenType.ACCESS, name=name)
        found.append((user.id, token))
    return found


async def _race_and_kill(
    outcome: Outcome,
    platform: Platform,
    nodes: list[GatewayProcess],
    tokens: list[tuple[str, str]],
    races: int,
    members: int,
    wpm: float,
) -> None:
    listeners = await _members(nodes, members)
    players = list(
        await asyncio.gather(
            *(
                connected_player(nodes[i % 3].url, token, user, i % 3)
                for i, (user, token) in enumerate(tokens)
            )
        )
    )
    resumed: list[Player] = []
    resumes = Resumes()
    try:
        # Pairs queue together (one from each of two nodes), so every pair is one race.
        pairs = [players[i : i + 2] for i in range(0, len(players), 2)]
        found = [await matched(pair) for pair in pairs]
        rng = random.Random(5)
        logs = {p.user: human_log(f["text"], wpm * rng.uniform(0.8, 1.2), rng) for pair, f in
                zip(pairs, found, strict=True) for p in pair}  # fmt: skip
        kill_at = max(f["start_at"] for f in found) / 1000 + 1.0  # every race is running
        moved, resume_s = await _kill_during(
            nodes[0], pairs, found, logs, kill_at, nodes, resumed, listeners, resumes
        )
        await _judge(outcome, platform, pairs, found, moved, resume_s, resumed)
        _judge_sessions(outcome, resumes, listeners, resumed)
    finally:
        await close_players(players + resumed + listeners)


async def _members(nodes: list[GatewayProcess], count: int) -> list[Player]:
    """``count`` chat members over the three nodes, in rooms of ``ROOM_SIZE``."""
    members = []
    for index, token in enumerate(guest_tokens(count, "m")):
        member = await connected_player(nodes[index % 3].url, token, f"m{index}", index % 3)
        await member.client.request("room.join", {"room": _room(index)})
        members.append(member)
    return members


def _room(index: int) -> str:
    return f"chaos-{index // ROOM_SIZE}"


async def _write(writer: Player, rooms: list[str], resumes: Resumes, stop: asyncio.Event) -> None:
    """Acknowledged messages, round the rooms, until ``stop``."""
    for number in range(1_000_000):
        if stop.is_set():
            return
        room = rooms[number % len(rooms)]
        try:
            reply = await writer.client.request(
                "chat.send", {"room": room, "text": f"w {number}"}, wait_s=3
            )
            resumes.acked[str(reply.d["id"])] = room
        except (ClientError, TimeoutError):
            resumes.chat_errors += 1
        await asyncio.sleep(ROOM_MESSAGE_EVERY_S / len(rooms))


def _judge_sessions(
    outcome: Outcome, resumes: Resumes, listeners: list[Player], resumed: list[Player]
) -> None:
    back = {p.user: p for p in resumed}
    lost = 0
    for index, member in enumerate(listeners):
        seen: set[str] = set()
        for player in (member, back.get(member.user)):
            for _, frame in player.frames if player is not None else ():
                if frame.t == "chat.message":
                    seen.add(str(frame.d["id"]))
                elif frame.t == "room.joined":
                    seen.update(str(m["id"]) for m in frame.d.get("history", ()))
        room = _room(index)
        lost += sum(1 for m, r in resumes.acked.items() if r == room and m not in seen)
    clients = resumes.clients
    outcome.figures |= {
        "clients_moved": clients,
        "same_session_pct": round(100 * resumes.same_session / clients, 2) if clients else None,
        "resumed_true_pct": round(100 * resumes.resumed / clients, 2) if clients else None,
        "unavailable": resumes.unavailable,
        "chat_members": len(listeners),
        "chat_acked": len(resumes.acked),
        "chat_errors": resumes.chat_errors,
        "chat_lost": lost,
    }
    outcome.check(resumes.same_session == clients, "a resume elsewhere got a new session")
    outcome.check(lost == 0, f"{lost} acknowledged chat deliveries lost")


async def _kill_during(
    victim: GatewayProcess,
    pairs: list[list[Player]],
    found: list[dict[str, Any]],
    logs: dict[str, list[list[Any]]],
    kill_at: float,
    nodes: list[GatewayProcess],
    resumed: list[Player],
    listeners: list[Player],
    resumes: Resumes,
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
        back = await _resume(player, nodes[1 + len(resumed) % 2].url, race["race"], resumes)
        resumed.append(back)
        resumes.note(player, back)
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

    async def member(old: Player) -> dict[str, Any]:
        await killed.wait()
        session = (old.client.session, old.client.last_seq)
        url = nodes[1 + len(resumed) % 2].url
        back = await connected_player(url, old.client.token, old.user, 1, session)
        resumed.append(back)
        resumes.note(old, back)
        return {}

    stop = asyncio.Event()
    writer = next((p for p in listeners if p.node == 1), None)
    rooms = sorted({_room(i) for i in range(len(listeners))})
    if writer is not None:
        for room in rooms:  # it writes to every room
            with contextlib.suppress(ClientError):
                await writer.client.request("room.join", {"room": room})
    async with asyncio.TaskGroup() as tasks:
        tasks.create_task(kill())
        if writer is not None:
            writing = tasks.create_task(_write(writer, rooms, resumes, stop))
        for pair, race in zip(pairs, found, strict=True):
            for player in pair:
                tasks.create_task(_guarded(one(player, race)))
        for listener in listeners:
            if listener.node == 0:
                tasks.create_task(_guarded(member(listener)))
        await killed.wait()
        await asyncio.sleep(RESUME_GOAL_S)
        stop.set()
    if writer is not None:
        await writing
    await asyncio.sleep(1.0)  # the last deliveries
    moved = sum(1 for pair in pairs for p in pair if p.node == 0)
    return moved, resume_s


async def _guarded(work: Any) -> dict[str, Any] | None:
    """A player who could not finish is a finding, not a crash of the scenario."""
    try:
        return dict(await work)
    except (AssertionError, ClientError, TimeoutError, OSError) as exc:
        return {"error": repr(exc)}


async def _resume(old: Player, url: str, race: str, resumes: Resumes) -> Player:
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
            resumes.unavailable += 1
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
