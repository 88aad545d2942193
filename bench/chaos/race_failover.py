"""Redis lost under live matchmaking and races: failed over (Sentinel) or restarted.

The distributed platform in processes: two ``typogram gateway`` nodes and a
``typogram worker races`` on MariaDB (a database of its own), a Kafka-protocol
broker of its own and a Redis of its own, either a master + replica + three
sentinels (``mode="sentinel"``: the master is SIGKILLed and the replica
promoted) or one server with an append-only file (``mode="restart"``: it is
SIGKILLed and started again on its port ``down_s`` later). Registered
players spread over both nodes race in a loop: ``match.join``, wait for
``match.found`` (cancel and queue again after ``MATCH_WAIT_S``), type the
race (progress twice a second), ``race.finish``, wait for ``race.result``,
queue again. Redis is broken a few seconds in, while races run and players
queue; racing goes on for ``after_s`` more. Then:

* ``match_back_s``: from the break to the first ``match.found`` of a
  ``match.join`` sent after it (queues, the matcher and the user channels'
  pub/sub across nodes work again);
* ``race_back_s``: from the break to the first ``race.result`` of a race
  matched after it;
* ``in_two_races``: players some ``match.found`` (any client's) seated in
  a race they never took up while they played another one at the same
  time (goal 0): every ``match.found`` every client got is kept, and each
  race's seats are compared with what each player did and when;
* ``no_shows``: seats never taken up, their player in no other race
  meanwhile: a ``match.found`` that never reached its player (published
  to a node whose pub/sub had not resubscribed yet after the restart). The
  race forfeits such a seat ``race_no_show_ms`` after its start, so the
  others still get their result; the player's next ``match.join`` is a
  ``conflict`` until then;
* ``races_unfinished``: matched races whose players who took them up did
  not all get one and the same ``race.result`` (goal 0);
* ``results_lost`` / ``results_stored_twice``: finishes answered
  ``race.finished`` (acknowledged) with no ``race_results`` row, or two
  (goal 0);
* ``join_errors``: error answers to ``match.join`` meanwhile (``unavailable``
  is the contract while Redis is away); ``join_conflicts`` of them
  ``conflict``: the player was still marked queued or racing (a release lost
  with the writes of the last second before a crash); retried.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import random
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from bench.chaos.gateways import RACES, registered_players
from bench.chaos.outcome import Outcome
from bench.chaos.stack import (
    chaos_settings,
    cheap_passwords,
    fresh_database,
    start_worker,
    stop_processes,
)
from bench.common import SECRET, GatewayProcess
from tests.clusters import KafkaBroker, RedisSentinelGroup, RedisServer
from tests.integration.test_races import human_log
from tests.race_players import Player, close_players, connected_player, finish, type_until
from typogram.client import ClientError, ConnectionLost
from typogram.db.schema import race_results
from typogram.platform import Platform, open_platform

MATCH_WAIT_S = 8.0  # no match.found by then: cancel, queue again
RESULT_WAIT_S = 20.0
STORED_WITHIN_S = 30.0
WARMUP_S = 3.0  # races under way before Redis is broken
STEADY_WITHIN_S = 15.0  # half the players matched by then, or no steady state to break
SETTINGS: dict[str, Any] = RACES | {
    "race_words": 5,
    "race_time_limit_ms": 30_000,  # a race someone abandoned still ends
    "backend_connect_timeout_s": 1.0,
    "race_no_show_ms": 10_000,  # a seat nobody took up is forfeited within RESULT_WAIT_S
}
JOIN = {"mode": "race", "difficulty": "easy", "lang": "en"}


@dataclass
class Played:
    """One match a player got and what became of it."""

    user: str
    race: str
    joined_at: float  # monotonic, when match.join was sent
    found_at: float
    finished: bool = False  # race.finished answered: acknowledged
    result: str | None = None  # the race.result standings, as received
    result_at: float | None = None


@dataclass
class Racing:
    """What every racer did, and the errors it met."""

    played: list[Played] = field(default_factory=list)
    join_errors: Counter[str] = field(default_factory=Counter)
    finish_errors: Counter[str] = field(default_factory=Counter)
    requeued: int = 0
    stop: asyncio.Event = field(default_factory=asyncio.Event)


class RedisUnderTest:
    """The Redis of one run: what the processes are told, how it breaks and heals."""

    def __init__(self, root: Path, mode: str, down_s: float) -> None:
        if mode not in ("sentinel", "restart"):
            raise ValueError(f"mode must be sentinel or restart, not {mode!r}")
        self.mode, self.down_s = mode, down_s
        self.group = RedisSentinelGroup(root / "sentinel") if mode == "sentinel" else None
        self.server = RedisServer(root / "redis", appendonly=True) if mode == "restart" else None
        self._old_port = 0

    def start(self) -> None:
        if self.group is not None:
            self.group.start()
        elif self.server is not None:
            self.server.start()

    def settings(self, loaded: bool = False) -> dict[str, Any]:
        """The Redis settings, as variables for a process or (``loaded``) for ``load``."""
        if self.group is not None:
            sentinels = self.group.sentinels
            listed = tuple(sentinels) if loaded else ",".join(sentinels)
            return {"redis_url": "redis://", "redis_sentinels": listed}
        assert self.server is not None
        return {"redis_url": self.server.url}

    def fail(self) -> float:
        """Break it; seconds until it is back (promoted, or restarted and loaded)."""
        started = time.monotonic()
        if self.group is not None:
            self._old_port = self.group.kill_master()
            self.group.wait_failover(self._old_port, 60.0)
        elif self.server is not None:
            self.server.kill()
            time.sleep(self.down_s)
            self.server.restart()
        return time.monotonic() - started

    def heal(self) -> None:
        if self.group is not None and self._old_port:
            self.group.rejoin(self._old_port)

    def stop(self) -> None:
        if self.group is not None:
            self.group.stop()
        elif self.server is not None:
            self.server.stop()


async def race_failover(
    players: int = 16, mode: str = "sentinel", after_s: float = 12.0, down_s: float = 3.0
) -> Outcome:
    """``players`` racing in a loop on two nodes while Redis fails over or restarts."""
    outcome = Outcome(f"races_redis_{mode}")
    with tempfile.TemporaryDirectory() as root, fresh_database() as url:
        redis = RedisUnderTest(Path(root), mode, down_s)
        broker = KafkaBroker(Path(root) / "kafka")
        nodes: list[GatewayProcess] = []
        worker: subprocess.Popen[bytes] | None = None
        await asyncio.to_thread(redis.start)
        await asyncio.to_thread(broker.start)
        try:
            backends: dict[str, Any] = {
                "database_url": url,
                "redis_prefix": "chaosraces:",
                "kafka_bootstrap": broker.bootstrap,
                "kafka_topic_prefix": "chaosraces.",
                "log_level": "ERROR",
                **redis.settings(),
            }
            settings = chaos_settings(root, jwt_secret=SECRET, **(backends | redis.settings(True)))
            async with open_platform(settings, migrate=True, passwords=cheap_passwords()) as p:
                tokens = await registered_players(p, players)
                worker = start_worker(root, "races", backends)
                nodes += await asyncio.gather(
                    *(
                        asyncio.to_thread(
                            GatewayProcess, root, **backends, **SETTINGS, metrics_token=SCRAPE
                        )
                        for _ in "ab"
                    )
                )
                async with _connected(nodes, tokens) as racers:
                    await _race_through(outcome, p, redis, racers, after_s)
                outcome.figures |= await _lease_counts(nodes)
                if outcome.problems:
                    outcome.problems += _failures_logged(nodes)
        finally:
            await asyncio.gather(*(stop_processes([node], None) for node in nodes))
            await stop_processes([], worker)
            await asyncio.to_thread(broker.stop)
            await asyncio.to_thread(redis.stop)
    return outcome


SCRAPE = "chaos-scrape-token-0123"  # the nodes' metrics token (their HTTP port's /metrics)


async def _lease_counts(nodes: list[GatewayProcess]) -> dict[str, float]:
    """Race leases the nodes took back after finding them lapsed, and races they dropped
    (their lease taken, or lapsed with another node the last writer): from ``/metrics``."""
    wanted = {"races_retaken": "leases_retaken", "races_lost": "races_dropped"}
    counts = dict.fromkeys(wanted.values(), 0.0)
    auth = {"Authorization": f"Bearer {SCRAPE}"}
    async with httpx.AsyncClient(timeout=5, headers=auth) as client:
        for node in nodes:
            response = await client.get(f"http://127.0.0.1:{node.http_port}/metrics")
            text = response.raise_for_status().text
            for family in text_string_to_metric_families(text):
                for sample in family.samples:
                    stat = sample.labels.get("stat", "")
                    if sample.labels.get("component") == "races" and stat in wanted:
                        counts[wanted[stat]] += sample.value
    return counts


def _failures_logged(nodes: list[GatewayProcess]) -> list[str]:
    """The gateways' logged request failures (answered ``internal``): their last lines."""
    found: Counter[str] = Counter()
    for node in nodes:
        for line in node.log_path.read_text(errors="replace").splitlines():
            if '"msg":"handling ' in line and '"level":"error"' in line:
                with contextlib.suppress(ValueError, KeyError, IndexError):
                    record = json.loads(line)
                    found[f"{record['msg']}: {record['exc'].strip().splitlines()[-1]}"] += 1
    return [f"gateway log: {line} (x{n})" for line, n in found.most_common(3)]


@contextlib.asynccontextmanager
async def _connected(
    nodes: list[GatewayProcess], tokens: list[tuple[str, str]]
) -> AsyncIterator[list[Player]]:
    players: list[Player] = []
    try:
        for index, (user, token) in enumerate(tokens):
            node = index % len(nodes)
            players.append(await connected_player(nodes[node].url, token, user, node))
        yield players
    finally:
        await close_players(players)


async def _race_through(
    outcome: Outcome,
    platform: Platform,
    redis: RedisUnderTest,
    racers: list[Player],
    after_s: float,
) -> None:
    racing = Racing()
    async with asyncio.TaskGroup() as tasks:
        for index, player in enumerate(racers):
            tasks.create_task(_racer(player, racing, random.Random(index)))
        await asyncio.sleep(WARMUP_S)
        steady = await _until_racing(racing, len(racers) // 2)
        broken_at = time.monotonic()
        back_s = await asyncio.to_thread(redis.fail)
        await asyncio.sleep(max(0.0, broken_at + after_s - time.monotonic()))
        racing.stop.set()
    await asyncio.to_thread(redis.heal)
    outcome.figures["redis_back_s"] = round(back_s, 2)  # promoted, or restarted and loaded
    outcome.figures["matched_before_break"] = steady
    outcome.check(steady > 0, "nobody was matched before Redis broke (no steady state)")
    _judge_matches(outcome, racing, racers, broken_at)
    await _judge_stored(outcome, platform, racing)


async def _until_racing(racing: Racing, players: int) -> int:
    """Until ``players`` have been matched (at most ``STEADY_WITHIN_S``); how many were."""
    deadline = time.monotonic() + STEADY_WITHIN_S
    for _ in range(int(STEADY_WITHIN_S / 0.1)):
        if len(racing.played) >= players or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.1)
    return len(racing.played)


async def _racer(player: Player, racing: Racing, rng: random.Random) -> None:
    """Queue, race, finish, queue again, until ``racing.stop``; each match in ``played``."""
    while not racing.stop.is_set():
        joined_at = time.monotonic()
        try:
            queued = await player.client.request("match.join", JOIN, wait_s=3)
        except ClientError as exc:
            racing.join_errors[exc.code] += 1
            await asyncio.sleep(0.5)
            continue
        except (TimeoutError, ConnectionLost) as exc:
            racing.join_errors[type(exc).__name__] += 1
            if isinstance(exc, ConnectionLost):
                return
            continue
        found = await _frame(player, "match.found", joined_at, MATCH_WAIT_S)
        if found is None:
            racing.requeued += 1
            with contextlib.suppress(ClientError, TimeoutError):
                await player.client.request("match.cancel", {"ticket": queued.d["ticket"]})
            continue
        played = Played(player.user, str(found["race"]), joined_at, time.monotonic())
        racing.played.append(played)
        await _play(player, played, found, racing, rng)


async def _play(
    player: Player, played: Played, found: dict[str, Any], racing: Racing, rng: random.Random
) -> None:
    race, text, start_at = played.race, str(found["text"]), int(found["start_at"])
    log = human_log(text, rng.uniform(60, 90), rng)
    await type_until(player, race, text, start_at, log, log[-1][0])
    try:
        await finish(player, race, text, log)
        played.finished = True
    except (AssertionError, ClientError, TimeoutError, ConnectionLost) as exc:
        racing.finish_errors[f"{type(exc).__name__}: {exc}"[:120]] += 1
    result = await _frame(player, "race.result", played.found_at, RESULT_WAIT_S, race)
    if result is not None:
        played.result = str(sorted((s["user"], s["place"]) for s in result["standings"]))
        played.result_at = time.monotonic()


async def _frame(
    player: Player, t: str, after: float, wait_s: float, race: str | None = None
) -> dict[str, Any] | None:
    """The data of the first push ``t`` (of ``race``) that arrived after ``after``, or None."""
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        for at, frame in player.frames:
            if frame.t == t and at > after and (race is None or frame.d.get("race") == race):
                return dict(frame.d)
        await asyncio.sleep(0.02)
    return None


def _judge_matches(
    outcome: Outcome, racing: Racing, racers: list[Player], broken_at: float
) -> None:
    seats: dict[str, set[str]] = {}  # race -> users, from every match.found anyone got
    for player in racers:
        for _, frame in player.frames:
            if frame.t == "match.found":
                seats.setdefault(str(frame.d["race"]), set()).update(
                    str(p["id"]) for p in frame.d["players"]
                )
    by_race: dict[str, list[Played]] = {}
    by_user: dict[str, list[Played]] = {}
    for played in racing.played:
        by_race.setdefault(played.race, []).append(played)
        by_user.setdefault(played.user, []).append(played)
    in_two: set[str] = set()
    no_shows = 0
    for race, users in seats.items():
        start, end = _lifetime(race, racers, by_race.get(race, []))
        for user in users - {p.user for p in by_race.get(race, [])}:  # never taken up
            if any(_overlaps(p, start, end) for p in by_user.get(user, [])):
                in_two.add(user)  # seated here while racing elsewhere
            else:
                no_shows += 1
    unfinished = [
        race
        for race, played in by_race.items()
        if len({p.result for p in played}) != 1 or played[0].result is None
    ]
    after = [p for p in racing.played if p.joined_at > broken_at]
    matched_after = min((p.found_at for p in after), default=None)
    result_after = min((p.result_at for p in after if p.result_at is not None), default=None)
    outcome.figures |= {
        "players": len(racers),
        "races": len(seats),
        "match_back_s": _since(broken_at, matched_after),
        "race_back_s": _since(broken_at, result_after),
        "join_errors": sum(racing.join_errors.values()),
        "join_conflicts": racing.join_errors["conflict"],
        "requeued": racing.requeued,
        "finish_errors": sum(racing.finish_errors.values()),
        "in_two_races": len(in_two),
        "no_shows": no_shows,
        "races_unfinished": len(unfinished),
    }
    # ``conflict``: the player was still marked queued or racing; after a crash that lost
    # the last second of writes (the append-only file syncs once a second) a release can
    # be lost. Counted, retried; a player stuck there shows as a race never played.
    wrong = {c: n for c, n in racing.join_errors.items() if c not in ("unavailable", "conflict")}
    outcome.check(not in_two, f"{len(in_two)} players seated in two races: {sorted(in_two)[:3]}")
    outcome.check(
        not unfinished,
        f"{len(unfinished)} races without one result for all: "
        + "; ".join(_story(race, seats[race], by_race.get(race, [])) for race in unfinished[:2])
        + f" (finish errors: {dict(racing.finish_errors)})",
    )
    outcome.check(matched_after is not None, "no match made after Redis broke")
    outcome.check(result_after is not None, "no race matched after Redis broke finished")
    outcome.check(not wrong, f"match.join answered {wrong} (not unavailable or conflict)")


def _lifetime(race: str, racers: list[Player], played: list[Played]) -> tuple[float, float]:
    """From the first ``match.found`` of ``race`` any client got to its last result
    received (no result: still running when the drill ended)."""
    found = [
        at
        for player in racers
        for at, frame in player.frames
        if frame.t == "match.found" and frame.d.get("race") == race
    ]
    results = [p.result_at for p in played]
    end = math.inf if not results or None in results else max(r for r in results if r)
    return min(found), end


def _overlaps(played: Played, start: float, end: float) -> bool:
    finished = played.result_at if played.result_at is not None else math.inf
    return played.found_at <= end and finished >= start


def _story(race: str, seated: set[str], played: list[Played]) -> str:
    """What became of each seat of ``race``: who took it up, finished, got which result."""
    took = {p.user: p for p in played}
    seats = [
        f"{user[-4:]}:"
        + ("-" if user not in took else f"{'F' if took[user].finished else 'f'}{took[user].result}")
        for user in sorted(seated)
    ]
    return f"{race} [{', '.join(seats)}]"


def _since(start: float, moment: float | None) -> float | None:
    return None if moment is None else round(moment - start, 2)


async def _judge_stored(outcome: Outcome, platform: Platform, racing: Racing) -> None:
    """Every acknowledged finish has its ``race_results`` row, once."""
    acked = Counter(f"{p.race}:{p.user}" for p in racing.played if p.finished)
    races = sorted({p.race for p in racing.played})
    rows: Counter[str] = Counter()
    deadline = time.monotonic() + STORED_WITHIN_S
    while time.monotonic() < deadline and races:
        rows = await _rows(platform, races, lambda key: key in acked)
        if all(rows[key] >= 1 for key in acked):
            break
        await asyncio.sleep(0.3)
    lost = sum(1 for key in acked if rows[key] == 0)
    twice = sum(1 for n in rows.values() if n > 1)
    outcome.figures |= {
        "finishes_acked": len(acked),
        "results_lost": lost,
        "results_stored_twice": twice,
    }
    outcome.check(lost == 0, f"{lost} acknowledged finishes never stored")
    outcome.check(twice == 0, f"{twice} finishes stored twice")


async def _rows(
    platform: Platform, races: list[str], wanted: Callable[[str], bool]
) -> Counter[str]:
    async with platform.db.read(primary=True) as conn:
        found = await conn.execute(
            select(race_results.c.race_id, race_results.c.user_id, func.count())
            .where(race_results.c.race_id.in_(races))
            .group_by(race_results.c.race_id, race_results.c.user_id)
        )
        keys = {f"{r[0]}:{r[1]}": int(r[2]) for r in found}
    return Counter({key: n for key, n in keys.items() if wanted(key)})
