"""Tournaments: REST (admin create, join), the score and rating workers, live watching."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from rest.app import create_app
from rooms import tournament
from tests.conftest import cheap_passwords, make_settings
from tests.integration.test_gateway import Start, hello, recv, send, start_node  # noqa: F401
from typogram import topics
from typogram.db.schema import user_ratings
from typogram.platform import Platform, open_platform
from typogram.ports import Event
from typogram.tokens import TokenType
from workers import races, tournament_store

pytestmark = pytest.mark.integration


@pytest.fixture
async def embedded(tmp_path: Path) -> AsyncIterator[Platform]:
    settings = make_settings(data_dir=str(tmp_path))
    async with open_platform(settings, migrate=True, passwords=cheap_passwords()) as platform:
        yield platform


async def _register(client: httpx.AsyncClient, name: str) -> tuple[str, dict[str, str]]:
    response = await client.post(
        "/api/v1/auth/register",
        json={"username": name, "email": f"{name}@example.com", "password": "correct horse"},
    )
    assert response.status_code == 201, response.text
    body = response.json()
    return body["user"]["id"], {"Authorization": f"Bearer {body['access_token']}"}


async def test_admin_creates_users_join_races_score_and_ratings(embedded: Platform) -> None:
    transport = httpx.ASGITransport(app=create_app(embedded))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        alice, alice_auth = await _register(client, "alice")
        bob, bob_auth = await _register(client, "bob")
        boss, _ = await _register(client, "boss")
        version = await embedded.accounts.token_version(boss) or 0
        token, _ = embedded.tokens.issue(
            boss, TokenType.ACCESS, name="boss", version=version, role="admin"
        )
        admin = {"Authorization": f"Bearer {token}"}
        now = int(time.time() * 1000)
        spec = {"title": "Spring Cup", "starts_at": now - 1000, "ends_at": now + 3_600_000}
        assert (
            await client.post("/api/v1/tournaments", json=spec, headers=alice_auth)
        ).status_code == 403
        bad = {**spec, "ends_at": now - 5000}
        assert (
            await client.post("/api/v1/tournaments", json=bad, headers=admin)
        ).status_code == 400
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
        assert listed[0]["participants"] == 2

        standings = [
            {"user": alice, "place": 1, "wpm": 91.5, "done": True, "guest": False},
            {"user": bob, "place": 2, "wpm": 70.0, "done": True, "guest": False},
        ]
        data = {"race": "r1", "tournament": tid, "started_at": now, "ended_at": now + 9000}
        event = Event("tournament.race", {**data, "standings": standings}, key=tid, id="t-r1")
        await races.handle_tournament_score(embedded, topics.TOURNAMENT_SCORES, event)
        await races.handle_tournament_score(embedded, topics.TOURNAMENT_SCORES, event)  # replay
        view = (await client.get(f"/api/v1/tournaments/{tid}")).json()
        assert [(r["user"], r["score"], r["races"]) for r in view["top"]] == [
            (alice, 91.5, 1),
            (bob, 70.0, 1),
        ]

        finished = Event("race.finished", {"race": "r1", "standings": standings}, id="r1")
        await races.handle_race_event(embedded, topics.RACE_EVENTS, finished)
        await races.handle_race_event(embedded, topics.RACE_EVENTS, finished)  # idempotent
        async with embedded.db.read() as conn:
            rows = {r.user_id: r for r in await conn.execute(select(user_ratings))}
        assert rows[alice].mu > rows[bob].mu and rows[alice].races == 1
        profile = (await client.get("/api/v1/users/alice")).json()
        assert profile["rating"] >= 0


async def test_watchers_see_state_and_rankings_change(start_node: Start) -> None:  # noqa: F811
    node = await start_node()
    now = int(time.time() * 1000)
    state = tournament.TournamentState("cup1", "Cup", now - 2000, now - 1000, now + 600_000)
    state, _ = tournament.handle(state, tournament.Join("ann", "Ann"), now)
    await tournament_store.save(node.cache, state, now)
    ws, _ = await hello(node, "watcher")
    await send(ws, "tournament.watch", {"tournament": "nope"}, id=1)
    assert (await recv(ws))["d"]["code"] == "not_found"
    await send(ws, "tournament.watch", {"tournament": "cup1"}, id=2)
    first = await recv(ws, "tournament.state")
    assert first["d"]["phase"] == "running" and first["d"]["participants"] == 1
    assert (await recv(ws, "tournament.rankings"))["d"] == {"tournament": "cup1", "top": []}

    completed = tournament.RaceCompleted(
        "r9", now, now + 1, [{"user": "ann", "place": 1, "wpm": 77.0, "done": True}]
    )
    await tournament_store.change(
        node.cache, node.pubsub, "cup1", lambda s: tournament.handle(s, completed, now), now
    )
    pushed = await recv(ws, "tournament.rankings")
    assert pushed["d"]["top"][0]["user"] == "ann" and "s" in pushed
    await ws.close()
