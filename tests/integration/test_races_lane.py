"""``race.progress`` on the connections' lane (``GatewayConnection``) through real sockets.

A report that arrives while the reader waits is applied inside ``websockets``'
frame callback; these tests check it behaves exactly as the queued path:
applied and shown in the next ``race.state``, refused with the same error
(``re`` set), rate limited, and never overtaking a frame sent before it.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
import pytest
from websockets.asyncio.client import ClientConnection

from tests.integration.test_gateway import TIMEOUT, Node, Start, hello, recv, send, start_node  # noqa: F401
from tests.integration.test_races import FAST, recv_reply

pytestmark = pytest.mark.integration

TEXT = "lane test text for two racers"


async def running_race(node: Node) -> tuple[ClientConnection, ClientConnection, str]:
    """Two racers in a private race, returned once it runs."""
    host, _ = await hello(node, "host")
    pal, _ = await hello(node, "pal")
    await send(host, "race.create", {"text": TEXT}, id=1)
    created = (await recv_reply(host, 1))["d"]
    race = created["race"]
    await send(pal, "race.join", {"code": created["code"]}, id=2)
    assert (await recv_reply(pal, 2))["t"] == "race.joined"
    await send(host, "race.start", {"race": race}, id=3)
    start_at = (await recv(pal, "race.countdown"))["d"]["start_at"]
    await asyncio.sleep(max(0.0, start_at / 1000 - time.time()) + 0.3)
    return host, pal, race


async def state_with(ws: ClientConnection, user: str, pos: int) -> dict[str, Any]:
    """The first ``race.state`` showing ``user`` at ``pos`` or beyond."""
    while True:
        frame = await recv(ws, "race.state")
        for player in frame["d"]["players"]:
            if player["user"] == user and player["pos"] >= pos:
                return frame


async def test_progress_on_the_lane_is_applied_and_refused_like_any_frame(
    start_node: Start,  # noqa: F811
) -> None:
    node = await start_node(**FAST)
    host, pal, race = await running_race(node)
    before = node.gateway.statistics()["frames_on_lane"]
    await send(pal, "race.progress", {"race": race, "pos": 2})
    await state_with(host, "pal", 2)
    assert node.gateway.statistics()["frames_on_lane"] > before  # it took the lane
    taken = node.gateway.statistics()["frames_on_lane"]
    await send(pal, "race.progress", {"race": race, "pos": 1}, id=9)  # backwards
    refused = await recv_reply(pal, 9)
    assert refused["t"] == "error" and refused["d"]["code"] == "bad_request"
    assert "backwards" in refused["d"]["message"]
    await send(pal, "race.progress", {"race": race, "pos": 10_000}, id=10)  # past the text
    assert (await recv_reply(pal, 10))["d"]["code"] == "bad_request"
    assert node.gateway.statistics()["frames_on_lane"] == taken + 2  # refused on the lane too
    # Other key orders, and malformed reports, take the queue and still work or fail as usual.
    await pal.send(orjson.dumps({"d": {"race": race, "pos": 4}, "t": "race.progress"}).decode())
    await state_with(host, "pal", 4)
    await pal.send('{"t":"race.progress","d":{"race":1}}')
    assert (await recv(pal, "error"))["d"]["code"] == "bad_request"
    await pal.send(b'{"t":"race.progress","d":{"race":"\xff"}}'.decode("latin-1"))
    assert (await recv(pal, "error"))["d"]["code"] == "bad_request"
    await send(pal, "ping", id=11)  # the socket is still open and answering
    assert (await recv_reply(pal, 11))["t"] == "pong"
    for ws in (host, pal):
        await ws.close()


async def test_a_report_never_overtakes_a_frame_sent_before_it(start_node: Start) -> None:  # noqa: F811
    node = await start_node(**FAST)
    host, pal, race = await running_race(node)
    for round_ in range(20):
        # One write: a request that awaits (room.join) then a report refused at once.
        first = orjson.dumps({"t": "room.join", "id": 100 + round_, "d": {"room": f"r{round_}"}})
        second = orjson.dumps(
            {"t": "race.progress", "id": 200 + round_, "d": {"race": race, "pos": 0, "errors": -1}}
        )
        await asyncio.gather(pal.send(first.decode()), pal.send(second.decode()))
        replies = []
        while len(replies) < 2:
            frame = await recv(pal)
            if frame.get("re") in (100 + round_, 200 + round_):
                replies.append(frame["re"])
        assert replies == [100 + round_, 200 + round_]
    for ws in (host, pal):
        await ws.close()


async def test_the_lane_applies_the_rate_limit(start_node: Start) -> None:  # noqa: F811
    node = await start_node(**{**FAST, "ws_rate_per_s": 1, "ws_rate_burst": 8})
    host, pal, race = await running_race(node)
    for _ in range(9):  # one join spent; the ninth report is over the burst
        await send(pal, "race.progress", {"race": race, "pos": 1})
        await asyncio.sleep(0.01)  # one at a time: each arrives while the reader waits
    codes = [(await recv(pal, "error"))["d"]["code"]]
    assert "rate_limited" in codes
    for ws in (host, pal):
        await ws.close()
