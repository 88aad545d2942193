"""Room state shared across nodes: members, mutes and slow mode, expiry of a dead node."""

from __future__ import annotations

import asyncio

from prometheus_client import generate_latest

from gateway.chat.roomstate import SharedRooms
from rooms import chat
from tests.integration.test_gateway import recv, send
from tests.integration.test_gateway_resume import Nodes, _chat, _hello, _in_lobby, nodes

__all__ = ["nodes"]


async def test_members_are_listed_from_every_node(nodes: Nodes) -> None:
    a, b = await nodes(2)
    alice, _ = await _in_lobby(a, "alice")
    bob, _ = await _hello(b, "bob")
    await send(bob, "room.join", {"room": "lobby"}, id=2)
    joined = await recv(bob, "room.joined")
    assert sorted(m["id"] for m in joined["d"]["members"]) == ["alice", "bob"]
    await bob.close()
    await recv(alice, "room.presence")  # bob's arrival
    await recv(alice, "room.presence")  # and departure
    carol, _ = await _hello(b, "carol")
    await send(carol, "room.join", {"room": "lobby"}, id=2)
    joined = await recv(carol, "room.joined")
    assert sorted(m["id"] for m in joined["d"]["members"]) == ["alice", "carol"]
    for ws in (alice, carol):
        await ws.close()


async def test_a_mute_and_slow_mode_set_on_one_node_apply_on_another(nodes: Nodes) -> None:
    a, b = await nodes(2)
    mod, _ = await _in_lobby(a, "mod", role="moderator")  # staff moderate the lobby
    bob, _ = await _in_lobby(b, "bob")
    await send(mod, "chat.mute", {"room": "lobby", "user": "bob"}, id=5)
    assert (await recv(mod, "chat.muted"))["re"] == 5
    assert (await recv(bob, "room.moderation"))["d"]["muted"] == ["bob"]
    await send(bob, "chat.send", {"room": "lobby", "text": "hi"}, id=6)
    assert (await recv(bob, "error"))["d"]["code"] == "forbidden"
    await send(bob, "chat.mute", {"room": "lobby", "user": "mod"}, id=7)
    assert (await recv(bob, "error"))["d"]["code"] == "forbidden"  # bob moderates nothing
    await send(mod, "chat.unmute", {"room": "lobby", "user": "bob"}, id=8)
    await recv(bob, "room.moderation")
    await send(mod, "chat.slowmode", {"room": "lobby", "seconds": 60}, id=9)
    moderation = await recv(bob, "room.moderation")
    assert moderation["d"] == {
        "room": "lobby",
        "kind": "system",
        "owner": None,
        "moderators": [],
        "muted": [],
        "slow_mode_s": 60.0,
    }
    await _chat(bob, "first")
    await send(bob, "chat.send", {"room": "lobby", "text": "second"}, id=10)
    assert (await recv(bob, "error"))["d"]["code"] == "rate_limited"
    for ws in (mod, bob):
        await ws.close()


async def test_a_dead_nodes_members_expire_on_their_own(nodes: Nodes) -> None:
    (a,) = await nodes(1)
    cache = a._hub.store.cache
    ghost = SharedRooms(cache, "ghost-node", ttl=0.3, clock=a._hub.clock)
    state, _ = chat.handle(chat.ChatRoomState("lobby"), chat.Join(chat.User("ghost", "G")), 0)
    await ghost.refresh([state])  # a node that then dies without cleaning up
    alice, _ = await _hello(a, "alice")
    await send(alice, "room.join", {"room": "lobby"}, id=2)
    joined = await recv(alice, "room.joined")
    assert sorted(m["id"] for m in joined["d"]["members"]) == ["alice", "ghost"]
    await asyncio.sleep(0.4)
    await send(alice, "room.join", {"room": "lobby"}, id=3)
    joined = await recv(alice, "room.joined")
    assert [m["id"] for m in joined["d"]["members"]] == ["alice"]
    await alice.close()


async def test_no_metric_is_labelled_by_a_room_name_a_client_chose(nodes: Nodes) -> None:
    """Issue 14 row 8: rooms named by clients once became one label each."""
    (a,) = await nodes(1)
    alice, _ = await _in_lobby(a, "alice")
    names = [f"made-up-{n}" for n in range(20)]
    for number, name in enumerate(names, start=10):
        await send(alice, "room.join", {"room": name}, id=number)
        await recv(alice, "room.joined")
    scrape = generate_latest(a.metrics._registry).decode()
    assert not [name for name in names if name in scrape]
    assert a.metrics._registry.get_sample_value("typogram_gateway_rooms") == 21
    await alice.close()


async def test_online_counts_and_fanout_latency_are_exported(nodes: Nodes) -> None:
    (a,) = await nodes(1)
    alice, _ = await _in_lobby(a, "alice")
    await _chat(alice, "hello")
    registry = a.metrics._registry
    assert registry.get_sample_value("typogram_gateway_users_online") == 1
    assert registry.get_sample_value("typogram_gateway_rooms") == 1
    assert registry.get_sample_value("typogram_gateway_room_members") == 1
    count = registry.get_sample_value("typogram_gateway_fanout_latency_seconds_count")
    assert count is not None and count >= 1
    frames_in = registry.get_sample_value("typogram_gateway_frames_in_total", {"type": "chat.send"})
    assert frames_in == 1
    for kind in ("welcome", "room.joined", "chat.message"):
        assert registry.get_sample_value("typogram_gateway_frames_out_total", {"type": kind}) == 1
    await alice.close()
