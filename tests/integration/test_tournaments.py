"""Tournaments on both backends: REST (create, edit, join, view), scores from the
``tournaments`` worker, the sweep that ends them, live watching, and a record that
survives the cache (the state is rebuilt from the database after a flush)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import select
from websockets.asyncio.client import connect

from gateway.server import Gateway, gateway_of
from rooms import tournament
from tests.conftest import flush_cache
from tests.conftest import register_user as register
from tests.integration.test_gateway import recv, send
from tournaments.store import TournamentStore
from typogram import keys, topics
from typogram.db.schema import tournament_participants, tournament_races, tournaments
from typogram.platform import Platform
from typogram.ports import Event
from typogram.tokens import TokenType
from workers import races

pytestmark = pytest.mark.integration
HOUR = 3_600_000


async def admin_of(platform: Platform, client: httpx.AsyncClient) -> tuple[str, dict[str, str]]:
    boss, _ = await register(client, "boss")
    state = await platform.revocation.state(boss)
    version = state.version if state else 0
    token, _ = platform.tokens.issue(
        boss, TokenType.ACCESS, name="boss", version=version, role="admin"
    )
    return boss, {"Authorization": f"Bearer {token}"}


async def running_cup(
    platform: Platform, client: httpx.AsyncClient, title: str, *names: str, join: int = 99
) -> tuple[str, int, list[tuple[str, dict[str, str]]]]:
    """A running tournament (started a second ago, an hour to go) and users, the first
    ``join`` of them joined: its id, the creation time and the users."""
    users = [await register(client, name) for name in names]
    _, admin = await admin_of(platform, client)
    now = int(time.time() * 1000)
    spec = {"title": title, "starts_at": now - 1000, "ends_at": now + HOUR}
    tid = (await client.post("/api/v1/tournaments", json=spec, headers=admin)).json()["tournament"]
    for _, auth in users[:join]:
        joined = await client.post(f"/api/v1/tournaments/{tid}/join", headers=auth)
        assert joined.status_code == 200, joined.text
    return tid, now, users


def race_event(tid: str, race_id: str, started: int, *rows: tuple[str, int, float]) -> Event:
    standings = [
        {"user": u, "place": place, "wpm": wpm, "done": True, "guest": False, "time_ms": 9000}
        for u, place, wpm in rows
    ]
    data = {"race": race_id, "tournament": tid, "started_at": started, "ended_at": started + 9000}
    return Event(
        "tournament.race",
        {**data, "standings": standings},
        key=tid,
        id=f"t-{race_id}",
        ts=max(started + 9000, int(time.time() * 1000)),  # published when the race ended
    )


async def score(platform: Platform, event: Event) -> None:
    await races.handle_tournament_score(platform, topics.TOURNAMENT_SCORES, event)


def top_of(view: dict[str, Any]) -> list[tuple[str, float, int]]:
    return [(r["user"], r["score"], r["races"]) for r in view["top"]]


async def test_admin_creates_users_join_races_score_and_ratings(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    alice, alice_auth = await register(client, "alice")
    bob, bob_auth = await register(client, "bob")
    _, admin = await admin_of(platform, client)
    now = int(time.time() * 1000)
    spec = {"title": "Spring Cup", "starts_at": now - 1000, "ends_at": now + HOUR}
    refused = await client.post("/api/v1/tournaments", json=spec, headers=alice_auth)
    assert refused.status_code == 403
    bad = {**spec, "ends_at": now - 5000}
    assert (await client.post("/api/v1/tournaments", json=bad, headers=admin)).status_code == 400
    created = await client.post("/api/v1/tournaments", json=spec, headers=admin)
    assert created.status_code == 201, created.text
    tid = created.json()["tournament"]
    assert created.json()["phase"] == "running"
    for auth in (alice_auth, bob_auth):
        joined = await client.post(f"/api/v1/tournaments/{tid}/join", headers=auth)
        assert joined.status_code == 200, joined.text
    again = await client.post(f"/api/v1/tournaments/{tid}/join", headers=alice_auth)
    assert again.status_code == 409
    listed = (await client.get("/api/v1/tournaments")).json()
    assert [t["tournament"] for t in listed] == [tid]
    assert listed[0]["participants"] == 2 and listed[0]["phase"] == "running"

    event = race_event(tid, "r1", now, (alice, 1, 91.5), (bob, 2, 70.0))
    await score(platform, event)
    await score(platform, event)  # replay
    view = (await client.get(f"/api/v1/tournaments/{tid}")).json()
    assert top_of(view) == [(alice, 91.5, 1), (bob, 70.0, 1)]
    async with platform.db.read(primary=True) as conn:
        rows = {r.user_id: r for r in await conn.execute(select(tournament_participants))}
        counted = [r.race_id for r in await conn.execute(select(tournament_races))]
    assert (rows[alice].score, rows[alice].races, rows[bob].score) == (91.5, 1, 70.0)
    assert counted == ["r1"]


async def test_standings_survive_a_cache_flush_and_replays_still_count_once(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    tid, now, [(alice, alice_auth), (bob, _)] = await running_cup(
        platform, client, "Flush Cup", "alice", "bob"
    )
    first = race_event(tid, "r1", now, (alice, 1, 80.0), (bob, 2, 60.0))
    await score(platform, first)
    before = (await client.get(f"/api/v1/tournaments/{tid}")).json()

    await flush_cache(platform)
    assert await platform.cache.get(keys.tournament_state(tid)) is None
    after = (await client.get(f"/api/v1/tournaments/{tid}")).json()
    assert top_of(after) == top_of(before) == [(alice, 80.0, 1), (bob, 60.0, 1)]
    assert after["participants"] == 2 and after["seq"] == before["seq"]
    await flush_cache(platform)
    await score(platform, first)  # replayed after the flush: counted already, from the database
    await score(platform, race_event(tid, "r2", now + 1, (bob, 1, 95.0), (alice, 2, 70.0)))
    view = (await client.get(f"/api/v1/tournaments/{tid}")).json()
    assert top_of(view) == [(bob, 95.0, 2), (alice, 80.0, 2)]
    again = await client.post(f"/api/v1/tournaments/{tid}/join", headers=alice_auth)
    assert again.status_code == 409  # still a participant after the flush


async def test_only_rated_accepted_finishes_reach_the_standings(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    """Issue 13: a custom-text race ("ab" at 240 WPM) and a flagged finish gave rank 1 in
    a tournament although the boards and ratings refused them."""
    tid, now, [(alice, _), (bob, _)] = await running_cup(
        platform, client, "Honest Cup", "alice", "bob"
    )
    custom = race_event(tid, "r1", now, (alice, 1, 240.0), (bob, 2, 200.0))
    await score(platform, replace(custom, data={**custom.data, "custom": True}))
    flagged = race_event(tid, "r2", now + 1, (alice, 1, 230.0), (bob, 2, 60.0))
    cheat, honest = flagged.data["standings"]
    results = {alice: {"wpm": 230.0, "flags": ["progress_mismatch"]}}
    standings = [{**cheat, "rated": False}, honest]
    await score(platform, replace(flagged, data={**flagged.data, "standings": standings}))
    again = {**flagged.data, "results": results, "race": "r3"}  # flags in the results alone
    await score(platform, replace(flagged, id="t-r3", data=again))
    view = (await client.get(f"/api/v1/tournaments/{tid}")).json()
    assert top_of(view) == [(bob, 60.0, 2)]
    await flush_cache(platform)  # the database holds the same standings
    assert top_of((await client.get(f"/api/v1/tournaments/{tid}")).json()) == [(bob, 60.0, 2)]


async def test_the_sweep_moves_phases_and_ends_a_tournament_with_final_ranks(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    alice, alice_auth = await register(client, "alice")
    bob, bob_auth = await register(client, "bob")
    _, cy_auth = await register(client, "cyd")
    _, admin = await admin_of(platform, client)
    now = int(time.time() * 1000)
    spec = {"title": "Night Cup", "opens_at": now - 10, "starts_at": now + 1000}
    spec |= {"ends_at": now + 2000, "scoring": "points"}
    created = (await client.post("/api/v1/tournaments", json=spec, headers=admin)).json()
    tid = created["tournament"]
    assert created["phase"] == "open"
    for auth in (alice_auth, bob_auth, cy_auth):
        assert (await client.post(f"/api/v1/tournaments/{tid}/join", headers=auth)).is_success
    store = TournamentStore.of(platform)
    pushes: list[dict[str, Any]] = []

    def listen(channel: str, message: bytes) -> None:
        pushes.append(orjson.loads(message))

    await platform.pubsub.subscribe(keys.channel_tournament(tid), listen)
    assert await store.sweep(now + 1500) == 1  # open -> running
    assert await store.sweep(now + 1600) == 0
    await score(platform, race_event(tid, "r1", now + 1100, (alice, 1, 70.0), (bob, 2, 60.0)))
    await flush_cache(platform)  # the end must come from the database, not the cache
    end = now + 2000 + 180_000
    assert await store.sweep(end - 1) == 0
    assert await store.sweep(end) == 1
    assert await store.sweep(end + 10) == 0  # once
    async with platform.db.read(primary=True) as conn:
        row = (await conn.execute(select(tournaments).where(tournaments.c.id == tid))).one()
        ranks = {
            r.user_id: r.final_rank
            for r in await conn.execute(
                select(tournament_participants).where(
                    tournament_participants.c.tournament_id == tid
                )
            )
        }
    assert row.status == "finished" and row.finished_at is not None
    assert ranks[alice] == 1 and ranks[bob] == 2 and len(ranks) == 3
    assert [v for u, v in ranks.items() if u not in (alice, bob)] == [None]  # raced no race
    await asyncio.sleep(0.05)  # pub/sub delivery
    phases = [p["d"]["phase"] for p in pushes if p["t"] == "tournament.state"]
    assert phases == ["running", "finished"]
    final = [p for p in pushes if p["t"] == "tournament.rankings"][-1]
    assert [r["user"] for r in final["d"]["top"]] == [alice, bob]

    await flush_cache(platform)
    view = (await client.get(f"/api/v1/tournaments/{tid}")).json()
    assert view["phase"] == "finished" and [r["user"] for r in view["top"]] == [alice, bob]
    late = await client.patch(f"/api/v1/tournaments/{tid}", json={"title": "x"}, headers=admin)
    assert late.status_code == 409


async def test_creation_and_edits_are_audited_and_edits_keep_the_rules(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    _, alice_auth = await register(client, "alice")
    boss, admin = await admin_of(platform, client)
    now = int(time.time() * 1000)
    spec = {"title": "Edit Cup", "starts_at": now + HOUR, "ends_at": now + 2 * HOUR}
    tid = (await client.post("/api/v1/tournaments", json=spec, headers=admin)).json()["tournament"]
    path = f"/api/v1/tournaments/{tid}"
    assert (await client.patch(path, json={"title": "x"}, headers=alice_auth)).status_code == 403
    assert (await client.patch(path, json={}, headers=admin)).status_code == 400
    assert (await client.patch(path, json={"seq": 1}, headers=admin)).status_code == 400
    unknown = await client.patch(
        "/api/v1/tournaments/" + "f" * 32, json={"title": "x"}, headers=admin
    )
    assert unknown.status_code == 404
    long_id = await client.patch(
        "/api/v1/tournaments/" + "f" * 33, json={"title": "x"}, headers=admin
    )
    assert long_id.status_code == 404
    backwards = {"starts_at": now + 3 * HOUR}  # after its end
    assert (await client.patch(path, json=backwards, headers=admin)).status_code == 400
    edit = {"title": "Summer Cup", "opens_at": now - 2000, "starts_at": now - 1000}
    edit["min_rating"] = 1000.0
    edited = await client.patch(path, json=edit, headers=admin)
    assert edited.status_code == 200, edited.text
    assert (edited.json()["title"], edited.json()["phase"]) == ("Summer Cup", "running")
    running = await client.patch(path, json={"scoring": "points"}, headers=admin)
    assert running.status_code == 409
    cleared = await client.patch(path, json={"min_rating": None}, headers=admin)
    assert cleared.status_code == 200
    await flush_cache(platform)
    assert (await client.get(path)).json()["title"] == "Summer Cup"
    assert (await client.post(f"{path}/join", headers=alice_auth)).status_code == 200

    log = await platform.accounts.audit_entries(boss)
    actions = [(e["action"], e["outcome"]) for e in log]
    assert actions.count(("tournament_create", "success")) == 1
    assert actions.count(("tournament_edit", "success")) == 2
    edits = [orjson.loads(e["detail"]) for e in log if e["action"] == "tournament_edit"]
    first = edits[-1]  # newest first
    assert first["tournament"] == tid
    assert first["changes"]["title"] == ["Edit Cup", "Summer Cup"]
    assert first["changes"]["starts_at"] == [now + HOUR, now - 1000]
    assert edits[0]["changes"] == {"min_rating": [1000.0, None]}


async def test_a_cached_state_behind_or_ahead_of_the_database(
    platform: Platform, client: httpx.AsyncClient
) -> None:
    tid, now, [(alice, _), (bob, bob_auth)] = await running_cup(
        platform, client, "Stale Cup", "alice", "bob", join=1
    )
    store = TournamentStore.of(platform)
    stale = await store.load(tid)
    assert stale is not None
    await client.post(f"/api/v1/tournaments/{tid}/join", headers=bob_auth)
    # A cache that lost the join (an older state put back): the database is ahead of it.
    await platform.cache.set(keys.tournament_state(tid), tournament.encode(stale))
    await score(platform, race_event(tid, "r1", now, (alice, 1, 70.0), (bob, 2, 65.0)))
    view = (await client.get(f"/api/v1/tournaments/{tid}")).json()
    assert top_of(view) == [(alice, 70.0, 1), (bob, 65.0, 1)]  # bob's join was not lost

    # A tournament from before the database kept standings: the cache is ahead of it.
    legacy = await store.load(tid)
    assert legacy is not None
    async with platform.db.write() as conn:
        await conn.execute(tournament_races.delete())
        await conn.execute(
            tournament_participants.update().values(score=0, races=0, achieved_at=None)
        )
        await conn.execute(tournaments.update().values(seq=0, status="scheduled"))
    await score(platform, race_event(tid, "r2", now + 5, (bob, 1, 99.0)))
    await flush_cache(platform)
    view = (await client.get(f"/api/v1/tournaments/{tid}")).json()
    assert top_of(view) == [(bob, 99.0, 2), (alice, 70.0, 1)]


Start = Callable[[], Awaitable[tuple[str, Gateway]]]


@pytest.fixture
async def gateway_on(platform: Platform) -> AsyncIterator[Start]:
    """A gateway node on the test's own backends, reading tournaments through the store."""
    stop = asyncio.Event()
    serving: list[asyncio.Task[None]] = []
    async with contextlib.AsyncExitStack() as stack:

        async def start() -> tuple[str, Gateway]:
            settings = platform.settings.replace(ws_port=0)
            gateway = await stack.enter_async_context(gateway_of(platform, settings))
            serving.append(asyncio.create_task(gateway.serve(stop)))
            return f"ws://127.0.0.1:{gateway.port}/ws", gateway

        try:
            yield start
        finally:
            stop.set()
            await asyncio.gather(*serving, return_exceptions=True)


async def test_watchers_see_state_and_rankings_after_a_flush(
    platform: Platform, client: httpx.AsyncClient, gateway_on: Start
) -> None:
    tid, now, [(alice, _)] = await running_cup(platform, client, "Watch Cup", "alice")
    await flush_cache(platform)
    url, _ = await gateway_on()
    # A real account: the node checks every token against the platform's revocation.
    _, headers = await register(client, "watcher1")
    token = headers["Authorization"].removeprefix("Bearer ")
    async with connect(url) as ws:
        await send(ws, "hello", {"token": token}, id=1)
        assert (await recv(ws))["t"] == "welcome"
        await send(ws, "tournament.watch", {"tournament": "nope"}, id=2)
        assert (await recv(ws))["d"]["code"] == "not_found"
        await send(ws, "tournament.watch", {"tournament": tid}, id=3)
        first = await recv(ws, "tournament.state")
        assert first["d"]["phase"] == "running" and first["d"]["participants"] == 1
        assert (await recv(ws, "tournament.rankings"))["d"] == {"tournament": tid, "top": []}
        await score(platform, race_event(tid, "r9", now, (alice, 1, 77.0)))
        pushed = await recv(ws, "tournament.rankings")
        assert pushed["d"]["top"][0]["user"] == alice and "s" in pushed
