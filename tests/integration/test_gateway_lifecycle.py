"""Gateway lifecycle: admission, drain, slow consumers, resume, replacement, revocation."""

from __future__ import annotations

import asyncio

import orjson
from websockets.asyncio.client import connect

from tests.integration.test_gateway import (
    TIMEOUT,
    Start,
    _until,
    closed_with,
    hello,
    recv,
    send,
    start_node,
)
from typogram import keys
from typogram.protocol import push_payload

__all__ = ["start_node"]  # the fixture, imported so pytest finds it here


async def test_over_the_connection_limit_is_refused_with_1013(start_node: Start) -> None:
    node = await start_node(ws_max_connections=1)
    first, _ = await hello(node, "u1")
    async with connect(node.url) as second:
        assert await closed_with(second) == 1013
    await send(first, "ping", id=1)
    assert (await recv(first))["t"] == "pong"
    assert node.metric("typogram_gateway_closes_total", code="1013") == 1
    await first.close()


async def test_drain_closes_clients_with_1012_and_stops_accepting(start_node: Start) -> None:
    node = await start_node()
    a, _ = await hello(node, "alice")
    b, _ = await hello(node, "bob")
    node.stop.set()
    assert await closed_with(a) == 1012
    assert await closed_with(b) == 1012
    await asyncio.wait_for(_until(lambda: node.gateway.statistics()["sessions"] == 0), TIMEOUT)
    try:
        async with connect(node.url, open_timeout=1) as late:
            assert await closed_with(late) in {1012, 1006}
    except OSError:
        pass  # refused at TCP level: the listener is closed


async def test_a_slow_consumer_is_closed_with_4008(start_node: Start) -> None:
    node = await start_node(ws_send_queue_size=8)
    # A client that stops reading: its library buffers 1 frame, then TCP fills up.
    slow = await connect(node.url, max_queue=1)
    await send(slow, "hello", {"token": node.token("slow")})
    await recv(slow, "welcome")
    await send(slow, "room.join", {"room": "flood"})
    await recv(slow, "room.joined")
    big = push_payload("room.notice", {"room": "flood", "blob": "x" * 100_000})
    for _ in range(400):
        await node.pubsub.publish(keys.channel_room("flood"), big)
        await asyncio.sleep(0)
        if node.metric("typogram_gateway_slow_consumer_closes_total"):
            break
    assert node.metric("typogram_gateway_slow_consumer_closes_total") == 1
    assert node.gateway.statistics()["send_queue_depth"] == 0  # freed at once
    assert await closed_with(slow) in {4008, 1006}
    await asyncio.wait_for(_until(lambda: node.gateway.statistics()["connections"] == 0), TIMEOUT)


async def test_resume_replays_what_was_missed(start_node: Start) -> None:
    node = await start_node()
    a, welcome = await hello(node, "alice")
    session = welcome["d"]["session"]
    b, _ = await hello(node, "bob")
    for ws in (a, b):
        await send(ws, "room.join", {"room": "lobby"})
        await recv(ws, "room.joined")
    await send(b, "chat.send", {"room": "lobby", "text": "one"})
    seen = await recv(a, "chat.message")
    a.transport.abort()  # an abnormal drop: the session waits for a resume
    await asyncio.wait_for(_until(lambda: node.gateway.statistics()["connections"] == 1), TIMEOUT)
    for text in ("two", "three"):
        await send(b, "chat.send", {"room": "lobby", "text": text})
    await recv(b, "chat.message")

    async with connect(node.url) as again:
        resume = {"session": session, "seq": seen["s"]}
        await send(again, "hello", {"token": node.token("alice"), "resume": resume})
        welcome = await recv(again)
        assert welcome["d"]["resumed"] is True and welcome["d"]["session"] == session
        replayed = [await recv(again), await recv(again)]
        assert [f["d"]["text"] for f in replayed] == ["two", "three"]
        assert [f["s"] for f in replayed] == [seen["s"] + 1, seen["s"] + 2]
        await send(b, "chat.send", {"room": "lobby", "text": "four"})
        live = await recv(again, "chat.message")
        assert live["d"]["text"] == "four" and live["s"] == seen["s"] + 3
    assert node.metric("typogram_gateway_resumes_total", result="hit") == 1
    await b.close()


async def test_resume_after_a_gap_sends_fresh_snapshots(start_node: Start) -> None:
    node = await start_node(ws_replay_frames=2)
    a, welcome = await hello(node, "alice")
    await send(a, "room.join", {"room": "lobby"})
    await recv(a, "room.joined")
    a.transport.abort()
    await asyncio.wait_for(_until(lambda: node.gateway.statistics()["connections"] == 0), TIMEOUT)
    b, _ = await hello(node, "bob")
    await send(b, "room.join", {"room": "lobby"})
    await recv(b, "room.joined")
    for text in ("1", "2", "3"):
        await send(b, "chat.send", {"room": "lobby", "text": text})
    async with connect(node.url) as again:
        resume = {"session": welcome["d"]["session"], "seq": 0}
        await send(again, "hello", {"token": node.token("alice"), "resume": resume})
        assert (await recv(again))["d"]["resumed"] is False
        snapshot = await recv(again, "room.joined")
        assert [m["text"] for m in snapshot["d"]["history"]] == ["1", "2", "3"]
    assert node.metric("typogram_gateway_resumes_total", result="miss") == 1
    await b.close()


async def test_resume_of_an_unknown_session_starts_fresh(start_node: Start) -> None:
    node = await start_node()
    async with connect(node.url) as ws:
        resume = {"session": "nope", "seq": 3}
        await send(ws, "hello", {"token": node.token("u1"), "resume": resume})
        welcome = await recv(ws)
        assert welcome["d"]["resumed"] is False and welcome["d"]["session"] != "nope"


async def test_another_users_session_cannot_be_resumed(start_node: Start) -> None:
    node = await start_node()
    a, welcome = await hello(node, "alice")
    async with connect(node.url) as ws:
        resume = {"session": welcome["d"]["session"], "seq": 0}
        await send(ws, "hello", {"token": node.token("mallory"), "resume": resume})
        stolen = await recv(ws)
        assert stolen["d"]["session"] != welcome["d"]["session"]
    await a.close()


async def test_a_newer_connection_replaces_the_old_one_with_4002(start_node: Start) -> None:
    node = await start_node()
    old, welcome = await hello(node, "alice")
    async with connect(node.url) as new:
        resume = {"session": welcome["d"]["session"], "seq": 0}
        await send(new, "hello", {"token": node.token("alice"), "resume": resume})
        assert (await recv(new))["d"]["resumed"] is True
        assert await closed_with(old) == 4002
        await send(new, "ping", id=5)
        assert (await recv(new, "pong"))["re"] == 5


async def test_a_normal_close_ends_the_session(start_node: Start) -> None:
    node = await start_node()
    a, welcome = await hello(node, "alice")
    await a.close()
    await asyncio.wait_for(_until(lambda: node.gateway.statistics()["sessions"] == 0), TIMEOUT)
    async with connect(node.url) as ws:
        resume = {"session": welcome["d"]["session"], "seq": 0}
        await send(ws, "hello", {"token": node.token("alice"), "resume": resume})
        assert (await recv(ws))["d"]["resumed"] is False


async def test_detached_sessions_expire_after_the_window(start_node: Start) -> None:
    node = await start_node(ws_resume_window_s=0.2)
    a, _ = await hello(node, "alice")
    b, _ = await hello(node, "bob")
    for ws in (a, b):
        await send(ws, "room.join", {"room": "lobby"})
        await recv(ws, "room.joined")
    a.transport.abort()
    left = await recv(b, "room.presence")
    assert [u["id"] for u in left["d"]["left"]] == ["alice"]
    assert node.gateway.statistics()["sessions"] == 1
    await b.close()


async def test_revoke_closes_older_tokens_with_4001(start_node: Start) -> None:
    node = await start_node()
    old, _ = await hello(node, "alice", version=0)
    fresh, _ = await hello(node, "alice", version=1)
    other, _ = await hello(node, "bob", version=0)
    revoke = orjson.dumps({"t": "revoke", "d": {"version": 1}})
    await node.pubsub.publish(keys.channel_user("alice"), revoke)
    assert await closed_with(old) == 4001
    for ws in (fresh, other):
        await send(ws, "ping", id=1)
        assert (await recv(ws, "pong"))["re"] == 1
    await fresh.close()
    await other.close()


async def test_user_channel_pushes_reach_every_connection_of_the_user(start_node: Start) -> None:
    node = await start_node()
    one, _ = await hello(node, "alice")
    two, _ = await hello(node, "alice")
    await node.pubsub.publish(
        keys.channel_user("alice"), push_payload("achievement.unlocked", {"name": "first"})
    )
    for ws in (one, two):
        frame = await recv(ws, "achievement.unlocked")
        assert frame["d"] == {"name": "first"} and frame["s"] == 1
        await ws.close()
