"""Moderation with roles on two gateway nodes sharing one cache (in memory and on Redis).

Each test reproduces a row of the security review that held on the old
rule ("the first member of an empty room moderates it", mutes and slow mode
keyed by the user id only): it failed then and passes now.
"""

from __future__ import annotations

from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from gateway.server import Gateway
from tests.integration.test_gateway import TIMEOUT, recv, send
from tests.integration.test_gateway_resume import Nodes, _chat, _in_lobby, _url, nodes
from typogram.tokens import TokenService

__all__ = ["nodes"]


async def _guest(gateway: Gateway, room: str = "lobby") -> tuple[ClientConnection, str]:
    """A fresh guest token (a new identity, the same address), in ``room``."""
    token, claims = TokenService(gateway.settings).issue_guest("Gus")
    ws = await connect(_url(gateway), open_timeout=TIMEOUT)
    await send(ws, "hello", {"token": token}, id=1)
    assert (await recv(ws))["t"] == "welcome"
    await send(ws, "room.join", {"room": room}, id=2)
    await recv(ws, "room.joined")
    return ws, claims.subject


async def _refused(ws: ClientConnection, t: str, d: dict[str, Any]) -> str:
    await send(ws, t, d, id=77)
    reply = await recv(ws)
    while reply.get("re") != 77:
        reply = await recv(ws)
    assert reply["t"] == "error", reply
    code: str = reply["d"]["code"]
    return code


async def test_a_guest_first_in_the_lobby_moderates_nothing(nodes: Nodes) -> None:
    a, b = await nodes(2)
    guest, _ = await _guest(a)  # the first member of the empty lobby
    bob, _ = await _in_lobby(b, "bob")
    assert await _refused(guest, "chat.mute", {"room": "lobby", "user": "bob"}) == "forbidden"
    assert await _refused(guest, "chat.slowmode", {"room": "lobby", "seconds": 3600}) == "forbidden"
    first, _ = await _in_lobby(a, "first")  # nor does a registered user
    assert await _refused(first, "chat.mute", {"room": "lobby", "user": "bob"}) == "forbidden"
    await _chat(bob, "still talking")
    for ws in (guest, bob, first):
        await ws.close()


async def test_a_muted_guest_stays_muted_with_a_fresh_token_on_any_node(nodes: Nodes) -> None:
    a, b = await nodes(2)
    mod, _ = await _in_lobby(a, "mod", role="moderator")
    guest, guest_id = await _guest(b)  # held by the other node
    await send(mod, "chat.mute", {"room": "lobby", "user": guest_id}, id=5)
    muted = await recv(mod, "chat.muted")
    assert muted["d"] == {"room": "lobby", "user": guest_id}
    assert await _refused(guest, "chat.send", {"room": "lobby", "text": "hi"}) == "forbidden"
    await guest.close()
    for node in (b, a):
        again, _ = await _guest(node)
        assert await _refused(again, "chat.send", {"room": "lobby", "text": "hi"}) == "forbidden"
        await again.close()
    bob, _ = await _in_lobby(b, "bob")  # registered, same address: not held
    await _chat(bob, "hello")
    await send(mod, "chat.unmute", {"room": "lobby", "user": guest_id}, id=6)
    await recv(mod, "chat.unmuted")
    free, _ = await _guest(b)
    await send(free, "chat.send", {"room": "lobby", "text": "thanks"}, id=7)
    assert (await recv(free, "chat.sent"))["re"] == 7
    for ws in (mod, bob, free):
        await ws.close()


async def test_fresh_guest_tokens_wait_out_slow_mode(nodes: Nodes) -> None:
    a, b = await nodes(2)
    mod, _ = await _in_lobby(a, "mod", role="admin")
    await send(mod, "chat.slowmode", {"room": "lobby", "seconds": 60}, id=5)
    await recv(mod, "room.moderation")
    first, _ = await _guest(b)
    await send(first, "chat.send", {"room": "lobby", "text": "one"}, id=6)
    await recv(first, "chat.sent")
    second, _ = await _guest(a)
    code = await _refused(second, "chat.send", {"room": "lobby", "text": "two"})
    assert code == "rate_limited"
    for ws in (mod, first, second):
        await ws.close()


async def test_a_user_room_is_its_owners_and_the_owner_appoints(nodes: Nodes) -> None:
    a, b = await nodes(2)
    guest, _ = await _guest(a, "den")  # first, but guests never own
    owner, _ = await _hello_in(a, "owner", "den")
    bob, _ = await _hello_in(b, "bob", "den")
    carol, _ = await _hello_in(b, "carol", "den")
    assert await _refused(bob, "chat.mute", {"room": "den", "user": "carol"}) == "forbidden"
    await send(owner, "chat.appoint", {"room": "den", "user": "bob"}, id=5)
    assert (await recv(owner, "chat.appointed"))["d"] == {"room": "den", "user": "bob"}
    moderation = await recv(carol, "room.moderation")
    assert moderation["d"]["owner"] == "owner" and moderation["d"]["moderators"] == ["bob"]
    await send(bob, "chat.mute", {"room": "den", "user": "carol"}, id=6)  # on the other node
    assert (await recv(bob, "chat.muted"))["re"] == 6
    assert await _refused(carol, "chat.send", {"room": "den", "text": "hi"}) == "forbidden"
    assert await _refused(bob, "chat.mute", {"room": "den", "user": "owner"}) == "forbidden"
    assert await _refused(bob, "chat.appoint", {"room": "den", "user": "carol"}) == "forbidden"
    code = await _refused(owner, "chat.appoint", {"room": "den", "user": "ghost"})
    assert code == "not_found"
    for bad in ({"room": "den"}, {"room": "den", "user": ""}, {"room": "bad room", "user": "x"}):
        assert await _refused(owner, "chat.appoint", bad) == "bad_request"
    await owner.close()  # ownership outlives the owner's leaving
    back, _ = await _hello_in(b, "owner", "den")
    await send(back, "chat.unappoint", {"room": "den", "user": "bob"}, id=8)
    assert (await recv(back, "chat.unappointed"))["re"] == 8
    for ws in (guest, back, bob, carol):
        await ws.close()


async def test_guests_only_read_in_system_rooms_when_set(nodes: Nodes) -> None:
    (a,) = await nodes(1, gateway_chat_guests_read_only=True)
    guest, _ = await _guest(a)
    assert await _refused(guest, "chat.send", {"room": "lobby", "text": "hi"}) == "forbidden"
    await guest.close()
    den, _ = await _guest(a, "den")
    await send(den, "chat.send", {"room": "den", "text": "hi"}, id=5)
    assert (await recv(den, "chat.sent"))["re"] == 5
    await den.close()


async def test_presence_answers_only_for_roommates(nodes: Nodes) -> None:
    a, b = await nodes(2)
    alice, _ = await _hello_in(a, "alice", "den")
    bob, _ = await _hello_in(b, "bob", "den")
    stranger, _ = await _hello_in(b, "zed", "elsewhere")
    query = {"users": ["alice", "bob", "zed"]}
    await send(bob, "presence.query", query, id=5)
    state = (await recv(bob, "presence.state"))["d"]["users"]
    assert state == {"alice": "online", "bob": "online", "zed": "offline"}
    await send(stranger, "presence.query", query, id=6)
    state = (await recv(stranger, "presence.state"))["d"]["users"]
    assert state == {"alice": "offline", "bob": "offline", "zed": "online"}
    for ws in (alice, bob, stranger):
        await ws.close()


async def _hello_in(gateway: Gateway, user: str, room: str) -> tuple[ClientConnection, str]:
    from tests.integration.test_gateway_resume import _hello

    ws, welcome = await _hello(gateway, user)
    await send(ws, "room.join", {"room": room}, id=2)
    await recv(ws, "room.joined")
    return ws, welcome["session"]
