"""Races through real sockets: matchmaking to standings, anti-cheat, private races, failover.

Single-node tests use the in-memory gateway fixture of ``test_gateway``; the
failover test runs two gateway nodes sharing a cache and a pub/sub (in
memory and on a real Redis), stops the owning node's race service without
releasing its leases (a crash) and has the other node finish the race.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection

from gateway.server import Gateway
from tests.integration.test_gateway import TIMEOUT, Start, hello, recv, send, start_node  # noqa: F401
from tests.integration.test_gateway_resume import Nodes, _hello, nodes  # noqa: F401

pytestmark = pytest.mark.integration

FAST: dict[str, Any] = {
    "race_words": 3,
    "race_countdown_ms": 300,
    "match_interval_ms": 50,
    "match_max_wait_ms": 300,
    "race_lease_s": 0.9,
    "race_forward_timeout_s": 0.5,
}


def human_log(
    text: str, wpm: float, rng: random.Random, typo_at: int | None = None
) -> list[list[Any]]:
    """A keystroke log reproducing ``text`` at about ``wpm`` with jittered intervals."""
    mean = 12_000 / wpm  # ms per character
    t = 250 + int(rng.uniform(0, 100))  # reaction time after the start
    out: list[list[Any]] = []
    for index, ch in enumerate(text):
        if index == typo_at:
            out.append([t, "#" if ch != "#" else "x"])
            t += int(mean * rng.uniform(0.8, 1.6))
            out.append([t, "Backspace"])
            t += int(mean * rng.uniform(0.8, 1.6))
        out.append([t, ch])
        t += max(20, int(rng.gauss(mean, mean * 0.35)))
    return out


def position(log: list[list[Any]], elapsed_ms: float, text: str) -> int:
    """Characters typed correctly by ``elapsed_ms`` (what a client reports as ``pos``)."""
    typed: list[str] = []
    for t, key in log:
        if t > elapsed_ms:
            break
        if key == "Backspace":
            if typed:
                typed.pop()
        else:
            typed.append(key)
    pos = 0
    while pos < len(typed) and pos < len(text) and typed[pos] == text[pos]:
        pos += 1
    return pos


async def type_race(
    ws: ClientConnection, race: str, text: str, start_at: int, log: list[list[Any]]
) -> dict[str, Any]:
    """Send progress twice a second while the log plays out in real time, then finish."""
    await asyncio.sleep(max(0.0, start_at / 1000 - time.time()))
    end = log[-1][0]
    while (elapsed := (time.time() * 1000 - start_at)) < end:
        await send(ws, "race.progress", {"race": race, "pos": position(log, elapsed, text)})
        await asyncio.sleep(min(0.5, max(0.01, (end - elapsed) / 1000)))
    await asyncio.sleep(0.05)
    await send(ws, "race.progress", {"race": race, "pos": len(text), "errors": 1})
    await send(ws, "race.finish", {"race": race, "keystrokes": log}, id=77)
    return await recv_reply(ws, 77)


# Frames ``recv_reply`` skipped, per socket, for ``recv_any`` to find later.
SKIPPED: dict[int, list[dict[str, Any]]] = {}


async def recv_reply(ws: ClientConnection, re: int) -> dict[str, Any]:
    while True:
        frame = await recv(ws)
        if frame.get("re") == re:
            return frame
        SKIPPED.setdefault(id(ws), []).append(frame)


async def recv_any(ws: ClientConnection, t: str) -> dict[str, Any]:
    """The next frame of type ``t``, including one ``recv_reply`` passed over."""
    skipped = SKIPPED.get(id(ws), [])
    for index, frame in enumerate(skipped):
        if frame["t"] == t:
            return skipped.pop(index)
    return await recv(ws, t)


async def queue_up(ws: ClientConnection, difficulty: str = "easy") -> str:
    await send(ws, "match.join", {"mode": "race", "difficulty": difficulty, "lang": "en"}, id=5)
    queued = await recv_reply(ws, 5)
    assert queued["t"] == "match.queued", queued
    return str(queued["d"]["ticket"])


async def test_three_clients_queue_race_and_get_server_standings(start_node: Start) -> None:  # noqa: F811
    node = await start_node(**FAST)
    clients = [(await hello(node, name))[0] for name in ("ann", "bob", "cat")]
    tickets = [await queue_up(ws) for ws in clients]
    found = [await recv(ws, "match.found") for ws in clients]
    race = found[0]["d"]["race"]
    assert {f["d"]["race"] for f in found} == {race}
    assert [f["d"]["ticket"] for f in found] == tickets
    text = found[0]["d"]["text"]
    assert len(found[0]["d"]["players"]) == 3 and text
    start_at = found[0]["d"]["start_at"]
    assert start_at > time.time() * 1000 - 1000

    rng = random.Random(5)
    logs = [human_log(text, wpm, rng, typo_at=1) for wpm in (95, 80, 65)]
    finished = await asyncio.gather(
        *(type_race(ws, race, text, start_at, log) for ws, log in zip(clients, logs, strict=True))
    )
    for frame in finished:
        assert frame["t"] == "race.finished", frame
        assert 40 < frame["d"]["wpm"] < 140 and frame["d"]["accuracy"] < 100

    snapshot = await recv_any(clients[0], "race.state")
    assert snapshot["d"]["race"] == race and len(snapshot["d"]["players"]) == 3
    result = await recv_any(clients[0], "race.result")
    standings = result["d"]["standings"]
    assert [s["place"] for s in standings] == [1, 2, 3]
    assert all(s["done"] for s in standings)
    # Places are the server's: the order it accepted the finishes, fastest typist first here.
    assert [s["user"] for s in standings] == ["ann", "bob", "cat"]
    for ws in clients[1:]:
        assert (await recv_any(ws, "race.result"))["d"]["standings"] == standings
    # The race is over: everyone may queue again.
    await queue_up(clients[0])
    for ws in clients:
        await ws.close()


async def test_impossible_and_forged_logs_are_refused(start_node: Start) -> None:  # noqa: F811
    node = await start_node(**FAST)
    a, _ = await hello(node, "ann")
    b, _ = await hello(node, "bob")
    await queue_up(a)
    await queue_up(b)
    found = (await recv(a, "match.found"))["d"]
    await recv(b, "match.found")
    race, text, start_at = found["race"], found["text"], found["start_at"]
    await asyncio.sleep(max(0.0, start_at / 1000 - time.time()) + 1.0)
    await send(a, "race.progress", {"race": race, "pos": len(text), "errors": 0})

    robot = [[100 + 4 * i, ch] for i, ch in enumerate(text)]  # 3,000 WPM
    await send(a, "race.finish", {"race": race, "keystrokes": robot}, id=8)
    refused = await recv_reply(a, 8)
    assert (refused["t"], refused["d"]["code"]) == ("error", "bad_request")
    assert "WPM" in refused["d"]["message"]

    wrong = human_log(text[:-1] + ("x" if text[-1] != "x" else "y"), 80, random.Random(1))
    wrong = [[min(t, 900), k] for t, k in wrong]
    await send(a, "race.finish", {"race": race, "keystrokes": wrong}, id=9)
    assert (await recv_reply(a, 9))["d"]["code"] == "bad_request"

    await send(b, "race.finish", {"race": race, "keystrokes": robot}, id=10)
    disagree = await recv_reply(b, 10)  # no live progress at all
    assert disagree["d"]["code"] == "bad_request"
    await send(b, "race.progress", {"race": race, "pos": len(text) * 50}, id=11)
    assert (await recv_reply(b, 11))["d"]["code"] == "bad_request"
    for ws in (a, b):
        await ws.close()


async def test_private_race_by_code(start_node: Start) -> None:  # noqa: F811
    node = await start_node(**FAST)
    host, _ = await hello(node, "host")
    guest, _ = await hello(node, "pal")
    await send(host, "race.create", {"text": "tiny text"}, id=1)
    created = await recv_reply(host, 1)
    assert created["t"] == "race.created"
    race, code = created["d"]["race"], created["d"]["code"]
    assert (await recv_reply(host, 1))["t"] == "race.joined"
    await send(guest, "race.join", {"code": "ZZZZZZ"}, id=2)
    assert (await recv_reply(guest, 2))["d"]["code"] == "not_found"
    await send(guest, "race.join", {"code": code.lower()}, id=3)
    joined = await recv_reply(guest, 3)
    assert joined["t"] == "race.joined" and joined["d"]["text"] == "tiny text"
    assert [p["id"] for p in joined["d"]["players"]] == ["host", "pal"]
    await send(guest, "race.start", {"race": race}, id=4)
    assert (await recv_reply(guest, 4))["d"]["code"] == "forbidden"
    await send(guest, "match.join", {"difficulty": "easy"}, id=6)
    assert (await recv_reply(guest, 6))["d"]["code"] == "conflict"  # never in two places
    await send(host, "race.start", {"race": race}, id=5)
    countdown = await recv(guest, "race.countdown")
    assert countdown["d"]["race"] == race and countdown["d"]["text"] == "tiny text"
    for ws in (host, guest):
        await ws.close()


async def test_cancel_and_never_in_two_queues(start_node: Start) -> None:  # noqa: F811
    node = await start_node(**{**FAST, "match_max_wait_ms": 60_000})
    ws, _ = await hello(node, "solo")
    ticket = await queue_up(ws)
    await send(ws, "match.join", {"difficulty": "hard", "lang": "en"}, id=6)
    assert (await recv_reply(ws, 6))["d"]["code"] == "conflict"
    await send(ws, "match.cancel", {"ticket": ticket}, id=7)
    cancelled = await recv_reply(ws, 7)
    assert cancelled == {"t": "match.cancelled", "re": 7, "d": {"ticket": ticket}}
    await send(ws, "match.cancel", {"ticket": ticket}, id=8)
    assert (await recv_reply(ws, 8))["d"]["code"] == "not_found"
    await queue_up(ws, "hard")
    await send(ws, "match.join", {"difficulty": "easy", "lang": "xx"}, id=9)
    assert (await recv_reply(ws, 9))["d"]["code"] in ("bad_request", "conflict")
    await ws.close()


async def test_a_cancel_that_comes_after_the_match_names_the_race(nodes: Nodes) -> None:  # noqa: F811
    """``match.cancel`` read after the ticket was matched: ``conflict`` with the race in
    ``details``, so a client that has not processed ``match.found`` can take up its seat
    (or leave it) instead of forfeiting it unawares. Someone else's ticket: ``not_found``."""
    first, second = await nodes(2, **FAST)
    ada, _ = await _hello(first, "ada")
    bob, _ = await _hello(second, "bob")
    ticket = await queue_up(ada)
    await queue_up(bob)
    race = (await recv(bob, "match.found"))["d"]["race"]  # matched: ada's cancel comes late

    await send(bob, "match.cancel", {"ticket": ticket}, id=6)  # not bob's ticket
    assert (await recv_reply(bob, 6))["d"] == {
        "code": "not_found",
        "message": "no such ticket in the queue",
    }
    await send(ada, "match.cancel", {"ticket": ticket}, id=7)
    late = await recv_reply(ada, 7)
    assert (late["t"], late["d"]["code"], late["d"]["details"]) == (
        "error",
        "conflict",
        {"race": race},
    )
    await send(ada, "match.cancel", {"ticket": "0" * 20}, id=8)
    assert (await recv_reply(ada, 8))["d"]["code"] == "not_found"
    await send(ada, "race.join", {"race": race}, id=9)  # she takes up her seat
    joined = await recv_reply(ada, 9)
    assert joined["t"] == "race.joined" and joined["d"]["race"] == race
    assert {p["id"] for p in joined["d"]["players"]} == {"ada", "bob"}
    for ws in (ada, bob):
        await ws.close()


async def test_a_race_survives_its_owner_node(nodes: Nodes) -> None:  # noqa: F811
    first, second = await nodes(2, **FAST)
    host, _ = await _hello(first, "host")
    racer, _ = await _hello(second, "racer")
    text = "the quick fox"
    await send(host, "race.create", {"text": text}, id=1)
    created = await recv_reply(host, 1)
    race, code = created["d"]["race"], created["d"]["code"]
    await send(racer, "race.join", {"code": code}, id=2)
    assert (await recv_reply(racer, 2))["t"] == "race.joined"  # forwarded to the owner
    await send(host, "race.start", {"race": race}, id=3)
    start_at = (await recv(racer, "race.countdown"))["d"]["start_at"]
    await asyncio.sleep(max(0.0, start_at / 1000 - time.time()) + 0.05)
    await send(host, "race.leave", {"race": race}, id=4)  # the host forfeits...
    assert (await recv_reply(host, 4))["t"] == "race.left"
    assert _owner(first, race)
    await first.races.halt(release=False)  # ...and its node's race service dies

    log = human_log(text, 90, random.Random(3))
    await asyncio.sleep(max(0.0, start_at / 1000 + log[-1][0] / 1000 - time.time()) + 0.05)
    await _progress_until_adopted(racer, second, race, len(text))
    await send(racer, "race.finish", {"race": race, "keystrokes": log}, id=21)
    assert (await recv_reply(racer, 21))["t"] == "race.finished"
    result = await recv_any(racer, "race.result")
    standings = result["d"]["standings"]
    assert [(s["user"], s["place"], s["done"]) for s in standings] == [
        ("racer", 1, True),
        ("host", 2, False),
    ]
    for ws in (host, racer):
        await ws.close()


async def test_racers_of_a_dead_owner_node_drop_out_after_the_resume_window(
    nodes: Nodes,  # noqa: F811
) -> None:
    """Adoption marks racers disconnected: one who never comes back forfeits, the race ends."""
    first, second = await nodes(2, **FAST, ws_resume_window_s=1.0)
    host, _ = await _hello(first, "host")
    racer, _ = await _hello(second, "racer")
    text = "the quick fox"
    await send(host, "race.create", {"text": text}, id=1)
    created = await recv_reply(host, 1)
    race, code = created["d"]["race"], created["d"]["code"]
    await send(racer, "race.join", {"code": code}, id=2)
    assert (await recv_reply(racer, 2))["t"] == "race.joined"
    await send(host, "race.start", {"race": race}, id=3)
    start_at = (await recv(racer, "race.countdown"))["d"]["start_at"]
    await asyncio.sleep(max(0.0, start_at / 1000 - time.time()) + 0.05)
    await send(host, "race.progress", {"race": race, "pos": 2}, id=4)  # still typing...
    await asyncio.sleep(0.2)
    await first.races.halt(release=False)  # ...when its node dies with the race

    log = human_log(text, 90, random.Random(5))
    await asyncio.sleep(max(0.0, start_at / 1000 + log[-1][0] / 1000 - time.time()) + 0.05)
    await _progress_until_adopted(racer, second, race, len(text))
    adopted_at = time.monotonic()
    await send(racer, "race.finish", {"race": race, "keystrokes": log}, id=21)
    assert (await recv_reply(racer, 21))["t"] == "race.finished"
    result = await recv_any(racer, "race.result")  # not after the 180 s time limit
    assert time.monotonic() - adopted_at < 1.0 + 3.0
    standings = result["d"]["standings"]
    assert [(s["user"], s["place"], s["done"]) for s in standings] == [
        ("racer", 1, True),
        ("host", 2, False),
    ]
    for ws in (host, racer):
        await ws.close()


async def _progress_until_adopted(ws: ClientConnection, node: Gateway, race: str, pos: int) -> None:
    """Progress is fire-and-forget: the racer's node adopts the race once the lease lapses."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        await send(ws, "race.progress", {"race": race, "pos": pos}, id=20)
        answer = await _maybe_reply(ws, 20)
        assert answer is None or answer["d"]["code"] == "unavailable", answer
        if _owner(node, race):
            return
        assert time.monotonic() < deadline, "the race was not adopted"
        await asyncio.sleep(0.2)


def _owner(gateway: Gateway, race: str) -> bool:
    return gateway.races.engine.owns(race)


async def _maybe_reply(ws: ClientConnection, re: int) -> dict[str, Any] | None:
    """The reply to ``re`` if one comes soon (progress is answered only when refused)."""
    try:
        return await asyncio.wait_for(recv_reply(ws, re), 0.8)
    except TimeoutError:
        return None
