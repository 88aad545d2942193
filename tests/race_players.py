"""Race players for cluster tests and the chaos suite: a client that keeps every push.

``Player`` reads every frame a ``TypogramClient`` gets, with the time it
arrived; ``connected_player`` opens one and starts its reader,
``close_players`` closes them and stops their readers; ``matched`` queues
players until they share one race; ``play`` types a keystroke log as
progress reports (twice a second, as a browser would) and finishes with it,
retrying while the race changes hands.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from tests.integration.test_races import position
from typogram.client import ClientError, ConnectionLost, TypogramClient
from typogram.protocol import ServerFrame

WAIT_S = 8.0


@dataclass
class Player:
    """One client and every push it received, with the monotonic time it arrived."""

    client: TypogramClient
    user: str
    node: int
    frames: list[tuple[float, ServerFrame]] = field(default_factory=list)
    reader: asyncio.Task[None] | None = None

    async def read(self) -> None:
        with contextlib.suppress(ConnectionLost):
            while True:
                frame = await self.client.receive()
                self.frames.append((time.monotonic(), frame))

    async def push(self, t: str, after: float = 0.0, wait_s: float = WAIT_S) -> ServerFrame:
        """The first push of type ``t`` that arrived after ``after`` (monotonic)."""
        deadline = time.monotonic() + wait_s
        while True:
            for at, frame in self.frames:
                if frame.t == t and at > after:
                    return frame
            assert time.monotonic() < deadline, f"{self.user}: no {t} within {wait_s}s"
            await asyncio.sleep(0.02)

    def states(self, after: float = 0.0) -> list[tuple[float, dict[str, Any]]]:
        return [(at, f.d) for at, f in self.frames if f.t == "race.state" and at > after]

    def own_positions(self, after: float = 0.0) -> list[int]:
        """This player's ``pos`` in every snapshot received after ``after``."""
        return [
            int(q["pos"])
            for _, d in self.states(after)
            for q in d["players"]
            if q["user"] == self.user
        ]


async def connected_player(
    url: str,
    token: str,
    user: str,
    node: int,
    session: tuple[str | None, int] | None = None,
    *,
    fallback_urls: Sequence[str] = (),
) -> Player:
    """A connected, reading ``Player``; with ``session`` (id, last seq) it resumes that one.
    With ``fallback_urls`` its client reconnects by itself, to them when ``url`` is gone;
    without, it stays closed once its connection is."""
    client = TypogramClient(
        url, token, reconnect=bool(fallback_urls), fallback_urls=list(fallback_urls)
    )
    if session is not None:
        client.session, client.last_seq = session
    await client.__aenter__()
    player = Player(client, user, node)
    player.reader = asyncio.create_task(player.read())
    return player


async def close_players(players: Sequence[Player]) -> None:
    """Close every client (one whose node was killed may fail to: ignored) and stop its
    reader."""
    for player in players:
        with contextlib.suppress(Exception):
            await player.client.close()
        if player.reader is not None:
            player.reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await player.reader


async def matched(players: list[Player]) -> dict[str, Any]:
    for player in players:
        await player.client.request(
            "match.join", {"mode": "race", "difficulty": "easy", "lang": "en"}
        )
    found = [(await p.push("match.found")).d for p in players]
    assert len({f["race"] for f in found}) == 1, found
    assert sorted(p["id"] for p in found[0]["players"]) == sorted(p.user for p in players)
    return dict(found[0])


async def type_until(
    player: Player, race: str, text: str, start_at: int, log: list[list[Any]], until_ms: float
) -> None:
    """Report progress twice a second as ``log`` plays out, up to race time ``until_ms``."""
    await asyncio.sleep(max(0.0, start_at / 1000 - time.time()))
    while (elapsed := time.time() * 1000 - start_at) < until_ms:
        data = {"race": race, "pos": position(log, elapsed, text), "errors": 0}
        with contextlib.suppress(ConnectionLost):
            await player.client.send("race.progress", data)
        await asyncio.sleep(min(0.5, max(0.01, (until_ms - elapsed) / 1000)))


async def finish(player: Player, race: str, text: str, log: list[list[Any]]) -> dict[str, Any]:
    """Final progress, then ``race.finish``; retried while the race changes hands."""
    deadline = time.monotonic() + WAIT_S
    while True:
        await player.client.send("race.progress", {"race": race, "pos": len(text), "errors": 0})
        try:
            reply = await player.client.request("race.finish", {"race": race, "keystrokes": log})
            return dict(reply.d)
        except ClientError as exc:  # unavailable, or the progress went to the dead owner
            assert exc.code in ("unavailable", "bad_request"), exc
            assert time.monotonic() < deadline, f"{player.user} could not finish: {exc}"
            await asyncio.sleep(0.2)


async def play(player: Player, race: str, text: str, start_at: int, log: list[list[Any]]) -> Any:
    await type_until(player, race, text, start_at, log, log[-1][0])
    return await finish(player, race, text, log)
