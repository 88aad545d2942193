"""``chat.send`` on the connections' lane (``GatewayConnection``) through real sockets.

A send that arrives while the reader waits is decoded in ``websockets``' frame
callback and served by a task of the connection; these tests check it behaves as
the queued path: delivered and acknowledged, refused with the same error (``re``
set), rate limited, and never overtaken by a frame sent after it, nor overtaking
one sent before it.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
from websockets.asyncio.client import ClientConnection

from tests.integration.test_gateway import Node, Start, hello, recv, send, start_node  # noqa: F401
from typogram.adapters.memory_scripts import MemoryPushLog

pytestmark = pytest.mark.integration


async def members(node: Node, room: str, *users: str) -> list[ClientConnection]:
    out = []
    for user in users:
        ws, _ = await hello(node, user)
        await send(ws, "room.join", {"room": room}, id=1)
        await recv(ws, "room.joined")
        out.append(ws)
    return out


async def replies(ws: ClientConnection, ids: set[int]) -> list[dict[str, Any]]:
    """The replies to ``ids``, in the order they came."""
    out: list[dict[str, Any]] = []
    while len(out) < len(ids):
        frame = await recv(ws)
        if frame.get("re") in ids:
            out.append(frame)
    return out


async def test_a_send_on_the_lane_is_delivered_acknowledged_and_refused_like_any(
    start_node: Start,  # noqa: F811
) -> None:
    node = await start_node(gateway_chat_max_text=20)
    ada, bob = await members(node, "lobby", "ada", "bob")
    before = node.gateway.statistics()["frames_on_lane"]
    await send(ada, "chat.send", {"room": "lobby", "text": "hello"}, id=2)
    (sent,) = await replies(ada, {2})
    assert sent["t"] == "chat.sent"
    assert (await recv(bob, "chat.message"))["d"]["text"] == "hello"
    assert node.gateway.statistics()["frames_on_lane"] == before + 1
    await send(ada, "chat.send", {"room": "elsewhere", "text": "hi"}, id=3)
    await send(ada, "chat.send", {"room": "lobby", "text": "x" * 21}, id=4)
    refused = await replies(ada, {3, 4})
    assert [(f["re"], f["d"]["code"]) for f in refused] == [(3, "not_found"), (4, "bad_request")]
    await send(ada, "ping", id=5)  # still open and answering
    assert (await replies(ada, {5}))[0]["t"] == "pong"
    for ws in (ada, bob):
        await ws.close()


async def test_a_burst_keeps_its_order_around_the_lane(
    start_node: Start,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    appended = MemoryPushLog.append_numbered

    async def round_trip(
        self: MemoryPushLog, counter: str, key: str, value: bytes, *args: Any, **kwargs: Any
    ) -> int:
        # As Redis would, and the first send of a burst slowest: it is still running when
        # the rest arrive, and would finish last if they overtook it.
        await asyncio.sleep(0.02 if b'.0"' in value else 0.001)
        return await appended(self, counter, key, value, *args, **kwargs)

    monkeypatch.setattr(MemoryPushLog, "append_numbered", round_trip)
    node = await start_node(ws_rate_per_s=1000, ws_rate_burst=1000)
    ada, bob = await members(node, "lobby", "ada", "bob")
    for round_ in range(10):
        # One write each: sends (the first may take the lane, the rest wait for it),
        # then a leave and a join that must come after every one of them.
        base = 100 * (round_ + 1)
        frames = [
            orjson.dumps(
                {"t": "chat.send", "id": base + n, "d": {"room": "lobby", "text": f"{round_}.{n}"}}
            )
            for n in range(5)
        ]
        frames.append(orjson.dumps({"t": "room.leave", "id": base + 5, "d": {"room": "lobby"}}))
        frames.append(orjson.dumps({"t": "room.join", "id": base + 6, "d": {"room": "lobby"}}))
        await asyncio.gather(*(ada.send(f.decode()) for f in frames))
        got = await replies(ada, {base + n for n in range(7)})
        assert [f["re"] for f in got] == [base + n for n in range(7)]
        assert [f["t"] for f in got] == ["chat.sent"] * 5 + ["room.left", "room.joined"]
        heard: list[str] = []
        while len(heard) < 5:
            heard.append((await recv(bob, "chat.message"))["d"]["text"])
        assert heard == [f"{round_}.{n}" for n in range(5)]
    assert node.gateway.statistics()["frames_on_lane"] > 0
    for ws in (ada, bob):
        await ws.close()


async def test_the_lane_applies_the_rate_limit_to_sends(start_node: Start) -> None:  # noqa: F811
    node = await start_node(ws_rate_per_s=1, ws_rate_burst=4)
    (ada,) = await members(node, "lobby", "ada")  # hello is not counted; the join is
    codes = []
    for n in range(4):  # one at a time: each arrives while the reader waits
        await send(ada, "chat.send", {"room": "lobby", "text": f"m{n}"}, id=10 + n)
        frame = (await replies(ada, {10 + n}))[0] if n < 3 else await recv(ada, "error")
        codes.append(frame["t"] if frame["t"] != "error" else frame["d"]["code"])
    assert codes == ["chat.sent", "chat.sent", "chat.sent", "rate_limited"]
    await ada.close()
