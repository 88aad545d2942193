"""Moderation and presence across two real ``typogram gateway`` processes on one Redis.

A staff member on node A mutes a guest held by node B; fresh guest tokens
from the same address stay muted on either node; a staff deletion reaches
members on the other process; presence answers only roommates, whichever
process holds them.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.gateway_nodes import base_env, running_nodes
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


@pytest.fixture(scope="module")
def admin(migrated_dir: Path) -> tuple[str, int]:
    """A registered admin in the nodes' database (``typogram admin create-admin``): its id
    and token version."""
    subprocess.run(
        [sys.executable, "-m", "roles", "admin", "create-admin", "boss",
         "--email", "boss@example.com", "--password-stdin"],
        input="a long and unguessable staff passphrase\n", env=base_env(migrated_dir, SECRET),
        check=True, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    with sqlite3.connect(migrated_dir / "typogram.sqlite3") as db:
        found, version = db.execute(
            "SELECT id, token_version FROM users WHERE username = 'boss'"
        ).fetchone()
    return str(found), int(version)


@pytest.fixture
async def clients(pair: Cluster, admin: tuple[str, int]) -> AsyncIterator[Any]:
    """``await clients(node, name, staff=False)``: a guest, or the registered admin."""
    opened: list[TypogramClient] = []

    async def open_client(index: int, name: str, staff: bool = False) -> tuple[Any, str]:
        if not staff:
            token, user_id = pair.token(name)
        else:
            admin_id, version = admin
            token, claims = pair.tokens.issue(
                admin_id, TokenType.ACCESS, name=name, role="admin", version=version
            )
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
    mod, mod_id = await clients(0, "mod", staff=True)
    guest, guest_id = await clients(1, "gus")
    stranger, _ = await clients(1, "zed")
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
