"""Login sessions over REST on both backends: a replayed refresh token revokes its session
(its access tokens too), and only that one (issue 14, row 9)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from typogram.platform import Platform

pytestmark = pytest.mark.integration

PASSWORD = "correct horse battery"


async def register(client: httpx.AsyncClient, name: str) -> dict[str, Any]:
    answer = await client.post(
        "/api/v1/auth/register",
        json={"username": name, "email": f"{name}@example.com", "password": PASSWORD},
    )
    assert answer.status_code == 201, answer.text
    pair: dict[str, Any] = answer.json()
    return pair


async def refresh(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.post("/api/v1/auth/refresh", json={"refresh_token": token})


async def me(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {token}"})


async def test_a_replay_revokes_the_sessions_access_tokens_and_no_other(
    client: httpx.AsyncClient, platform: Platform
) -> None:
    pair = await register(client, "sess_ann")
    login = {"login": "sess_ann", "password": PASSWORD}
    other = (await client.post("/api/v1/auth/login", json=login)).json()
    rotated = (await refresh(client, pair["refresh_token"])).json()
    assert (await me(client, rotated["access_token"])).status_code == 200

    replay = await refresh(client, pair["refresh_token"])
    assert replay.status_code == 401
    assert replay.json()["error"]["code"] == "unauthorized"
    for token in (pair["access_token"], rotated["access_token"]):
        refused = await me(client, token)
        assert refused.status_code == 401
        assert refused.json()["error"]["message"] == "session has been revoked"
    assert (await refresh(client, rotated["refresh_token"])).status_code == 401
    assert (await me(client, other["access_token"])).status_code == 200
    assert (await refresh(client, other["refresh_token"])).status_code == 200
    entries = await platform.accounts.audit_entries(pair["user"]["id"])
    assert [e["action"] for e in entries].count("session_revoke") == 1


async def test_concurrent_replays_answer_401_and_revoke_the_session(
    client: httpx.AsyncClient,
) -> None:
    pair = await register(client, "sess_bob")
    rotated = (await refresh(client, pair["refresh_token"])).json()
    answers = await asyncio.gather(*(refresh(client, pair["refresh_token"]) for _ in range(6)))
    assert [a.status_code for a in answers] == [401] * 6
    assert (await me(client, rotated["access_token"])).status_code == 401


async def test_two_refreshes_at_once_look_like_a_replay(client: httpx.AsyncClient) -> None:
    # Rotation is strict: a client must never spend one refresh token twice (the web
    # client serialises its refreshes across tabs). One wins; the loser is a replay.
    pair = await register(client, "sess_cat")
    answers = await asyncio.gather(*(refresh(client, pair["refresh_token"]) for _ in range(4)))
    codes = sorted(a.status_code for a in answers)
    assert codes == [200, 401, 401, 401]
    won = next(a for a in answers if a.status_code == 200).json()
    assert (await me(client, won["access_token"])).status_code == 401
