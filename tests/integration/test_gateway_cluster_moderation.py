"""Moderation and presence across two real ``typogram gateway`` processes on one Redis.

A staff member on node A mutes a guest held by node B; fresh guest tokens
from the same address stay muted on either node; a staff deletion reaches
members on the other process; presence answers only roommates, whichever
process holds them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.gateway_nodes import running_nodes
from tests.integration.test_gateway_cluster import SECRET, Cluster, _push, migrated_dir
from typogram.client import ClientError, TypogramClient
from typogram.tokens import TokenType

__all__ = ["migrated_dir"]
pytestmark = pytest.mark.integration


@pytest.fixture
def pair(
    migrated_dir: Path, redis_url: str, unique_prefix: str, tmp_path: Path
) -> Iterator[Cluster]:
    with running_nodes(
        "AB",
        data_dir=migrated_dir,
        secret=SECRET,
        redis_url=redis_url,
        prefix=unique_prefix,
        log_dir=tmp_path,
        env={"TYPOGRAM_GATEWAY_DRAIN_TIMEOUT_S": "3"},
    ) as nodes:
        yield Cluster(nodes, redis_url, unique_prefix)


@pytest.fixture
async def clients(pair: Cluster) -> AsyncIterator[Any]:
    """``await clients(node, name, role=None)``: a guest (no role) or a registered user."""
    opened: list[TypogramClient] = []

    async def open_client(index: int, name: str, role: str | None = None) -> tuple[Any, str]:
        if role is None:
            token, user_id = pair.token(name)
        else:
            token, claims = pair.tokens.issue(name, TokenType.ACCESS, name=name, role=role)
            user_id = claims.subject
        client = TypogramClient(pair.nodes[index].url, token, reconnect=False)
        await client.__aenter__()
        opened.append(client)
        return client, user_id

    yield open_client
    for client in opened:
        await client.close()


async def _code(client: TypogramClient, t: str, d: dict[str, Any]) -> str:
    with pytest.raises(ClientError) as raised:
        await client.request(t, d)
    return raised.value.code


async def test_mutes_deletions_and_presence_hold_across_processes(
    pair: Cluster, clients: Any
) -> None:
    mod, mod_id = await clients(0, "mod", role="moderator")
    guest, guest_id = await clients(1, "gus")
    stranger, _ = await clients(1, "zed", role="user")
    await mod.request("room.join", {"room": "lobby"})
    await guest.request("room.join", {"room": "lobby"})
    await pair.wait_subscribers("lobby", 2)

    sent = await guest.request("chat.send", {"room": "lobby", "text": "spam spam"})
    await mod.request("chat.delete", {"room": "lobby", "id": sent.d["id"]})
    deleted = await _push(guest, "chat.deleted")
    assert deleted.d == {"room": "lobby", "id": sent.d["id"]}

    state = await guest.request("presence.query", {"users": [mod_id]})
    assert state.d["users"] == {mod_id: "online"}  # roommates, on different processes
    state = await stranger.request("presence.query", {"users": [mod_id, guest_id]})
    assert state.d["users"] == {mod_id: "offline", guest_id: "offline"}  # shares no room

    await mod.request("chat.mute", {"room": "lobby", "user": guest_id})
    assert await _code(guest, "chat.send", {"room": "lobby", "text": "hi"}) == "forbidden"
    await guest.close()
    for node in (0, 1):
        again, _ = await clients(node, "gus")  # a fresh guest token, the same address
        await again.request("room.join", {"room": "lobby"})
        assert await _code(again, "chat.send", {"room": "lobby", "text": "hi"}) == "forbidden"
        await again.close()
    assert await _code(stranger, "chat.mute", {"room": "lobby", "user": mod_id}) == "not_found"
