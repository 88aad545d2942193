"""The asyncio client SDK against a real gateway: requests, pushes, reconnect with resume."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.integration.test_gateway import TIMEOUT, Start, _until, start_node
from typogram.client import ClientError, ConnectionLost, TypogramClient

__all__ = ["start_node"]


async def next_of(client: TypogramClient, t: str) -> dict[str, Any]:
    while True:
        frame = await client.receive(TIMEOUT)
        if frame.t == t:
            return dict(frame.d)


async def test_request_reply_and_pushes(start_node: Start) -> None:
    node = await start_node()
    async with (
        TypogramClient(node.url, node.token("alice")) as alice,
        TypogramClient(node.url, node.token("bob")) as bob,
    ):
        assert alice.user == {"id": "alice", "name": "alice", "guest": False}
        joined = await alice.request("room.join", {"room": "lobby"})
        assert joined.t == "room.joined" and joined.d["members"][0]["id"] == "alice"
        await bob.request("room.join", {"room": "lobby"})
        assert (await alice.receive(TIMEOUT)).t == "room.presence"
        await bob.send("chat.send", {"room": "lobby", "text": "hello"})
        message = await alice.receive(TIMEOUT)
        assert (message.t, message.d["text"]) == ("chat.message", "hello")
        assert alice.last_seq == message.s
        with pytest.raises(ClientError) as raised:
            await alice.request("room.leave", {"room": "elsewhere"})
        assert raised.value.code == "not_found"


async def test_a_bad_token_raises_client_error(start_node: Start) -> None:
    node = await start_node()
    with pytest.raises(ClientError) as raised:
        async with TypogramClient(node.url, "nope"):
            pass
    assert raised.value.code == "unauthorized"


async def test_reconnects_and_resumes_after_a_drop(start_node: Start) -> None:
    node = await start_node()
    async with (
        TypogramClient(node.url, node.token("alice"), backoff_s=0.05) as alice,
        TypogramClient(node.url, node.token("bob")) as bob,
    ):
        await alice.request("room.join", {"room": "lobby"})
        await bob.request("room.join", {"room": "lobby"})
        await bob.send("chat.send", {"room": "lobby", "text": "one"})
        assert (await next_of(alice, "chat.message"))["text"] == "one"
        session = alice.session
        assert alice._ws is not None
        alice._ws.transport.abort()  # the network drops
        await bob.send("chat.send", {"room": "lobby", "text": "two"})
        assert (await next_of(alice, "chat.message"))["text"] == "two"  # replayed on resume
        assert alice.reconnects == 1 and alice.resumed and alice.session == session
        pong = await alice.request("ping")
        assert pong.t == "pong"


async def test_iteration_ends_when_the_server_closes_for_good(start_node: Start) -> None:
    node = await start_node()
    client = TypogramClient(node.url, node.token("alice"), backoff_s=0.05, max_reconnects=2)
    async with client:
        node.stop.set()  # drain: 1012, the client tries to come back and cannot

        async def drain() -> list[str]:
            return [frame.t async for frame in client]

        assert await asyncio.wait_for(drain(), TIMEOUT * 2) == []
    with pytest.raises(ConnectionLost):
        await client.receive(0.1)
    await asyncio.wait_for(_until(lambda: node.gateway.statistics()["connections"] == 0), TIMEOUT)


async def test_a_cancel_that_crossed_its_match_raises_with_the_race(start_node: Start) -> None:
    """An error frame's ``details`` reach ``ClientError.details``: the race of a seat
    the player holds, which ``race.join {race}`` takes up."""
    node = await start_node(match_interval_ms=50, match_max_wait_ms=200, race_words=6)
    queue = {"mode": "race", "difficulty": "easy", "lang": "en"}
    async with (
        TypogramClient(node.url, node.token("alice")) as alice,
        TypogramClient(node.url, node.token("bob")) as bob,
    ):
        ticket = (await alice.request("match.join", queue)).d["ticket"]
        await bob.request("match.join", queue)
        race = (await next_of(bob, "match.found"))["race"]
        with pytest.raises(ClientError) as raised:
            await alice.request("match.cancel", {"ticket": ticket})
        assert (raised.value.code, raised.value.details) == ("conflict", {"race": race})
        joined = await alice.request("race.join", raised.value.details)
        assert joined.t == "race.joined" and joined.d["race"] == race
