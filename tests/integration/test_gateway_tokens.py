"""A live socket's token: expiry and revocation re-checked, renewal with ``auth`` (issue 14).

In process with the in-memory adapters (``start_node``); the same over two
real gateway processes on Redis is in ``test_revocation_cluster.py``.
"""

from __future__ import annotations

import asyncio
import time

import orjson
import pytest
from websockets.asyncio.client import connect

from tests.integration.test_gateway import (
    Node,
    Start,
    closed_with,
    hello,
    recv,
    send,
    start_node,
)
from typogram.client import TypogramClient
from typogram.tokens import TokenType

__all__ = ["start_node"]

pytestmark = pytest.mark.integration

TTL_S = 900


def token_expiring_in(node: Node, user: str, seconds: float, *, version: int = 0) -> str:
    """An access token of ``user`` whose ``exp`` is ``seconds`` from now."""
    issued = time.time() + seconds - TTL_S
    token, _ = node.tokens.issue(user, TokenType.ACCESS, name=user, version=version, now=issued)
    return token


async def test_a_socket_closes_when_its_token_expires(start_node: Start) -> None:
    # Row 2: with exp 4 s away the socket used to answer 8 s later.
    node = await start_node(access_token_ttl_s=TTL_S)
    async with connect(node.url) as ws:
        await send(ws, "hello", {"token": token_expiring_in(node, "u1", 1.5)}, id=1)
        assert (await recv(ws))["t"] == "welcome"
        started = time.monotonic()
        assert await closed_with(ws) == 4001
        assert ws.close_reason == "token expired"
        assert time.monotonic() - started < 3.5  # expiry is looked at every second


async def test_a_revocation_without_a_notice_is_caught_by_the_recheck(start_node: Start) -> None:
    node = await start_node(ws_token_check_s=0.5)
    ws, _ = await hello(node, "u1", version=0)
    node.versions["u1"] = 1  # revoked where no notice reaches this node
    assert await closed_with(ws) == 4001
    assert ws.close_reason == "token has been revoked"


async def test_auth_renews_the_token_and_the_socket_lives_on(start_node: Start) -> None:
    node = await start_node(access_token_ttl_s=TTL_S)
    async with connect(node.url) as ws:
        await send(ws, "hello", {"token": token_expiring_in(node, "u1", 2.0)}, id=1)
        assert (await recv(ws))["t"] == "welcome"
        fresh = node.token("u1", version=1)
        node.versions["u1"] = 1  # the renewal may carry a newer version
        await send(ws, "auth", {"token": fresh}, id=7)
        renewed = await recv(ws)
        assert renewed["t"] == "auth.renewed" and renewed["re"] == 7
        assert renewed["d"]["expires_at"] > time.time() + 60
        await asyncio.sleep(2.5)  # past the first token's exp
        await send(ws, "ping", {}, id=8)
        assert (await recv(ws))["t"] == "pong"


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("another user", "the token is another user's"),
        ("expired", "token expired"),
        ("revoked", "token has been revoked"),
        ("garbage", "invalid token"),
        ("refresh", "a refresh token is not accepted here"),
    ],
)
async def test_a_bad_renewal_is_refused_and_ends_the_socket(
    start_node: Start, case: str, message: str
) -> None:
    node = await start_node(access_token_ttl_s=TTL_S)
    node.versions["u1"] = 1
    tokens = {
        "another user": node.token("u2", version=1),
        "expired": token_expiring_in(node, "u1", -5, version=1),
        "revoked": node.token("u1", version=0),
        "garbage": "not-a-jwt",
        "refresh": node.tokens.issue("u1", TokenType.REFRESH, version=1)[0],
    }
    ws, _ = await hello(node, "u1", version=1)
    await send(ws, "auth", {"token": tokens[case]}, id=5)
    refused = await recv(ws)
    assert refused["t"] == "error" and refused["re"] == 5
    assert refused["d"] == {"code": "unauthorized", "message": message}
    assert await closed_with(ws) == 4001


@pytest.mark.parametrize(
    "d",
    [{}, {"token": ""}, {"token": 5}, {"token": None}, {"token": "x" * 5000}, [], "token"],
)
async def test_a_malformed_auth_frame_is_a_bad_request_and_the_socket_stays(
    start_node: Start, d: object
) -> None:
    node = await start_node()
    ws, _ = await hello(node, "u1")
    await ws.send(orjson.dumps({"t": "auth", "id": 3, "d": d}).decode())
    reply = await recv(ws)
    assert (reply["t"], reply["re"], reply["d"]["code"]) == ("error", 3, "bad_request")
    await send(ws, "ping", {}, id=4)
    assert (await recv(ws))["t"] == "pong"
    await ws.close()


async def test_auth_as_the_first_frame_is_refused(start_node: Start) -> None:
    node = await start_node()
    async with connect(node.url) as ws:
        await send(ws, "auth", {"token": node.token("u1")}, id=2)
        reply = await recv(ws)
        assert (reply["re"], reply["d"]["code"]) == (2, "unauthorized")
        assert await closed_with(ws) == 4001


async def test_the_sdk_renews_before_expiry_by_itself(start_node: Start) -> None:
    node = await start_node(access_token_ttl_s=TTL_S)
    fetched: list[str] = []

    async def provider() -> str:
        fetched.append(node.token("u1"))
        return fetched[-1]

    first = token_expiring_in(node, "u1", 2.5)
    async with TypogramClient(
        node.url, first, reconnect=False, token_provider=provider, renew_before_s=1.5
    ) as client:
        await asyncio.sleep(3.5)  # past the first token's exp
        assert (await client.request("ping")).t == "pong"
        assert client.token == fetched[0] != first
        assert len(fetched) == 1  # the fresh token is not renewed again right away
