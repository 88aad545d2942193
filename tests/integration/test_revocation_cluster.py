"""Revocation across two real ``typogram gateway`` processes on Redis (issue 14, rows 1, 2, 9).

The REST app runs in this process on the same SQLite data folder, Redis and
key prefix as the nodes, so a password change, a logout-all, a role change,
a ban or a replayed refresh token made here must close the user's sockets
on both nodes within ``WITHIN_S``. The nodes keep the default re-check
period (60 s): what closes the sockets in time is the ``revoke`` notice.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from rest.app import create_app
from tests.conftest import cheap_passwords
from tests.gateway_nodes import Node, migrate, running_nodes
from typogram.client import ClientError, ConnectionLost, TypogramClient
from typogram.platform import Platform, open_platform
from typogram.roles import Role
from typogram.settings import load
from typogram.staff import CLI, desk_of
from typogram.tokens import TokenType

pytestmark = pytest.mark.integration

SECRET = "revocation-cluster-secret-" + "r" * 32
WITHIN_S = 5.0
PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def prefix() -> str:
    return f"t{uuid.uuid4().hex[:12]}:"


@pytest.fixture(scope="module")
def nodes(
    tmp_path_factory: pytest.TempPathFactory, redis_url: str, prefix: str
) -> Iterator[tuple[Path, list[Node]]]:
    data_dir = migrate(tmp_path_factory.mktemp("revocation-data"), SECRET)
    with running_nodes(
        "AB",
        data_dir=data_dir,
        secret=SECRET,
        redis_url=redis_url,
        prefix=prefix,
        log_dir=tmp_path_factory.mktemp("revocation-logs"),
        env={"TYPOGRAM_GATEWAY_DRAIN_TIMEOUT_S": "3"},
    ) as running:
        yield data_dir, running


@pytest.fixture
async def rest(
    nodes: tuple[Path, list[Node]], redis_url: str, prefix: str
) -> AsyncIterator[tuple[Platform, httpx.AsyncClient]]:
    settings = load(
        env={},
        environment="test",
        jwt_secret=SECRET,
        data_dir=str(nodes[0]),
        redis_url=redis_url,
        redis_prefix=prefix,
        rate_limit_ip_per_min=100_000,
        login_attempts_per_15min=1000,
    )
    async with open_platform(settings, passwords=cheap_passwords()) as platform:
        transport = httpx.ASGITransport(app=create_app(platform))
        async with httpx.AsyncClient(transport=transport, base_url="http://rest") as client:
            yield platform, client


@pytest.fixture
async def sockets(nodes: tuple[Path, list[Node]]) -> AsyncIterator[Callable[..., Any]]:
    """``await open_socket(node_index, token)`` -> a client; all closed at the end."""
    opened: list[TypogramClient] = []

    async def open_socket(index: int, token: str) -> TypogramClient:
        client = TypogramClient(nodes[1][index].url, token, reconnect=False)
        await client.__aenter__()
        opened.append(client)
        await client.request("room.join", {"room": f"rv-{uuid.uuid4().hex[:8]}"})
        return client

    yield open_socket
    for client in opened:
        await client.close()


async def register(client: httpx.AsyncClient) -> dict[str, Any]:
    name = f"rv_{uuid.uuid4().hex[:10]}"
    answer = await client.post(
        "/api/v1/auth/register",
        json={"username": name, "email": f"{name}@example.com", "password": PASSWORD},
    )
    assert answer.status_code == 201, answer.text
    pair: dict[str, Any] = answer.json()
    return pair


async def login(client: httpx.AsyncClient, name: str) -> dict[str, Any]:
    answer = await client.post("/api/v1/auth/login", json={"login": name, "password": PASSWORD})
    assert answer.status_code == 200, answer.text
    pair: dict[str, Any] = answer.json()
    return pair


async def refresh(client: httpx.AsyncClient, refresh_token: str) -> httpx.Response:
    return await client.post("/api/v1/auth/refresh", json={"refresh_token": refresh_token})


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def expiring(platform: Platform, pair: dict[str, Any], seconds: float) -> str:
    """An access token of ``pair``'s user whose ``exp`` is ``seconds`` from now."""
    user, ttl = pair["user"], platform.settings.access_token_ttl_s
    token, _ = platform.tokens.issue(
        user["id"], TokenType.ACCESS, name=user["username"], now=time.time() + seconds - ttl
    )
    return token


async def closed_within(client: TypogramClient, within_s: float = WITHIN_S) -> int | None:
    """Wait for the server to close ``client``; its close code."""
    async with asyncio.timeout(within_s):
        while True:
            try:
                await client.receive()
            except ConnectionLost:
                return client.close_code


async def still_open(client: TypogramClient) -> None:
    assert (await client.request("ping")).t == "pong"


Revoke = Callable[[Platform, httpx.AsyncClient, dict[str, Any]], Awaitable[None]]


async def change_password(_: Platform, client: httpx.AsyncClient, pair: dict[str, Any]) -> None:
    answer = await client.post(
        "/api/v1/auth/password",
        json={"current_password": PASSWORD, "new_password": PASSWORD + " 2"},
        headers=bearer(pair["access_token"]),
    )
    assert answer.status_code == 200, answer.text
    # The new pair works, also on a gateway.
    fresh = answer.json()["access_token"]
    assert (await client.get("/api/v1/users/me", headers=bearer(fresh))).status_code == 200


async def logout_all(_: Platform, client: httpx.AsyncClient, pair: dict[str, Any]) -> None:
    answer = await client.post("/api/v1/auth/logout-all", headers=bearer(pair["access_token"]))
    assert answer.status_code == 200, answer.text


async def role_change(platform: Platform, _: httpx.AsyncClient, pair: dict[str, Any]) -> None:
    await desk_of(platform).set_role(CLI, pair["user"]["id"], Role.MODERATOR)


async def ban(platform: Platform, _: httpx.AsyncClient, pair: dict[str, Any]) -> None:
    await desk_of(platform).ban(CLI, pair["user"]["id"], reason="spam", ends_at=None)


@pytest.mark.parametrize("revoke", [change_password, logout_all, role_change, ban])
async def test_a_revocation_closes_the_users_sockets_on_every_node(
    rest: tuple[Platform, httpx.AsyncClient], sockets: Callable[..., Any], revoke: Revoke
) -> None:
    # Row 1: after POST /auth/password the old socket kept chatting for > 10 s.
    platform, client = rest
    pair = await register(client)
    on_a, on_b = await sockets(0, pair["access_token"]), await sockets(1, pair["access_token"])
    bystander = await sockets(1, (await register(client))["access_token"])
    started = time.monotonic()
    await revoke(platform, client, pair)
    assert await asyncio.gather(closed_within(on_a), closed_within(on_b)) == [4001, 4001]
    assert time.monotonic() - started < WITHIN_S
    await still_open(bystander)
    old = await client.get("/api/v1/users/me", headers=bearer(pair["access_token"]))
    assert old.status_code == 401


async def test_a_replayed_refresh_token_ends_its_session_everywhere(
    rest: tuple[Platform, httpx.AsyncClient], sockets: Callable[..., Any]
) -> None:
    # Row 9: the family's refresh tokens were revoked, its access tokens and sockets lived on.
    _, client = rest
    first = await register(client)
    other = await login(client, first["user"]["username"])  # a second login session
    rotated = await refresh(client, first["refresh_token"])
    assert rotated.status_code == 200, rotated.text
    thief = rotated.json()
    on_a = await sockets(0, first["access_token"])
    on_b = await sockets(1, thief["access_token"])
    elsewhere = await sockets(0, other["access_token"])

    replay = await refresh(client, first["refresh_token"])
    assert replay.status_code == 401
    assert replay.json()["error"]["code"] == "unauthorized"
    assert await asyncio.gather(closed_within(on_a), closed_within(on_b)) == [4001, 4001]
    await still_open(elsewhere)  # the user's other session is not touched

    for token in (first["access_token"], thief["access_token"]):
        refused = await client.get("/api/v1/users/me", headers=bearer(token))
        assert refused.status_code == 401
        assert refused.json()["error"]["message"] == "session has been revoked"
    assert (await refresh(client, thief["refresh_token"])).status_code == 401
    kept = await client.get("/api/v1/users/me", headers=bearer(other["access_token"]))
    assert kept.status_code == 200
    with pytest.raises(ClientError, match="unauthorized"):
        await sockets(1, thief["access_token"])  # and no new socket for the session


async def test_a_socket_outliving_its_token_is_closed(
    rest: tuple[Platform, httpx.AsyncClient], sockets: Callable[..., Any]
) -> None:
    # Row 2: with exp 4 s away, the socket still answered 8 s later.
    platform, client = rest
    short = expiring(platform, await register(client), 4)
    on_a, on_b = await sockets(0, short), await sockets(1, short)
    assert await asyncio.gather(closed_within(on_a, 6.5), closed_within(on_b, 6.5)) == [4001, 4001]


async def test_a_renewed_socket_outlives_its_first_token(
    rest: tuple[Platform, httpx.AsyncClient], sockets: Callable[..., Any]
) -> None:
    platform, client = rest
    pair = await register(client)
    socket = await sockets(1, expiring(platform, pair, 3))
    renewed = await socket.renew(pair["access_token"])
    assert renewed.d["expires_at"] > time.time() + 60
    await asyncio.sleep(4)
    await still_open(socket)
    stranger = await register(client)
    with pytest.raises(ClientError, match="unauthorized"):
        await socket.renew(stranger["access_token"])
    assert await closed_within(socket) == 4001
