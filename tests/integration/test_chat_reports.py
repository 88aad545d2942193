"""Reports, deletions and "appear offline" end to end, on both backends.

A registered user reports a message over the gateway; the ``chat`` worker
queues it; staff list it at ``/api/v1/admin/reports`` and decide it once,
audited. A staff ``chat.delete`` leaves history and storage. A user who
chose to appear offline (``PATCH /api/v1/users/me``) reads as offline to
roommates, at once, until they turn it off.
"""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import select
from websockets.asyncio.client import ClientConnection, connect

from tests.conftest import register_user, running_groups
from tests.integration.test_gateway import recv, send
from tests.integration.test_pipeline import eventually
from tests.integration.test_reviews import staff
from tests.integration.test_staff import node_on
from typogram.db.schema import audit_log, chat_messages, chat_reports
from typogram.platform import Platform

pytestmark = pytest.mark.integration
WAIT_S = 5.0


async def joined(url: str, auth: dict[str, str], room: str = "lobby") -> ClientConnection:
    ws = await connect(url)
    await send(ws, "hello", {"token": auth["Authorization"].split()[1]}, id=1)
    await recv(ws, "welcome")
    await send(ws, "room.join", {"room": room}, id=2)
    await recv(ws, "room.joined")
    return ws


async def said(ws: ClientConnection, text: str) -> str:
    await send(ws, "chat.send", {"room": "lobby", "text": text}, id=3)
    message_id: str = (await recv(ws, "chat.sent"))["d"]["id"]
    return message_id


async def guest_auth(http: httpx.AsyncClient) -> dict[str, str]:
    response = await http.post("/api/v1/auth/guest", json={"name": "Gus"})
    assert response.status_code in (200, 201), response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def stored(platform: Platform, table: Any, row_id: str) -> Any:
    async with platform.db.read(primary=True) as conn:
        return (await conn.execute(select(table).where(table.c.id == row_id))).mappings().first()


async def test_a_report_reaches_the_staff_queue_and_is_decided_once(
    client: httpx.AsyncClient, platform: Platform
) -> None:
    _, ada = await register_user(client, "ada")
    bob_id, bob = await register_user(client, "bob")
    boss = await staff(client, platform, "boss")
    async with running_groups(platform, ["chat"]), node_on(platform) as node:
        url = node.url
        a, b, g = (
            await joined(url, ada),
            await joined(url, bob),
            await joined(url, await guest_auth(client)),
        )
        spam = await said(b, "buy cheap followers")
        await send(g, "chat.report", {"room": "lobby", "id": spam}, id=4)
        assert (await recv(g, "error"))["d"]["code"] == "forbidden"  # guests do not report
        await send(a, "chat.report", {"room": "lobby", "id": "nope"}, id=5)
        assert (await recv(a, "error"))["d"]["code"] == "not_found"
        await send(a, "chat.report", {"room": "lobby", "id": "bad id!"}, id=6)
        assert (await recv(a, "error"))["d"]["code"] == "bad_request"
        await send(a, "chat.report", {"room": "lobby", "id": spam, "reason": "spam"}, id=7)
        reported = (await recv(a, "chat.reported"))["d"]
        await send(a, "chat.report", {"room": "lobby", "id": spam, "reason": "spam!"}, id=8)
        assert (await recv(a, "chat.reported"))["d"]["report"] == reported["report"]
        await eventually(lambda: stored(platform, chat_reports, reported["report"]))
        for ws in (a, b, g):
            await ws.close()

    assert (await client.get("/api/v1/admin/reports", headers=ada)).status_code == 403
    assert (await client.get("/api/v1/admin/reports")).status_code == 401
    for query in ("?status=maybe", "?limit=0", "?limit=x", "?cursor=" + "x" * 300, "?cursor=abc"):
        bad = await client.get(f"/api/v1/admin/reports{query}", headers=boss)
        assert bad.status_code == 400, query
        assert bad.json()["error"]["code"] == "bad_request"
    page = (await client.get("/api/v1/admin/reports", headers=boss)).json()
    assert [r["id"] for r in page["reports"]] == [reported["report"]]  # reported twice: once
    report = page["reports"][0]
    assert report["message"]["text"] == "buy cheap followers"
    assert report["message"]["user"]["id"] == bob_id and report["reason"] == "spam"

    path = f"/api/v1/admin/reports/{report['id']}"
    assert (await client.post(f"{path}/resolve", json={}, headers=bob)).status_code == 403
    assert (await client.post(f"{path}/resolve", json={"x": 1}, headers=boss)).status_code == 400
    missing = await client.post("/api/v1/admin/reports/nope/dismiss", json={}, headers=boss)
    assert missing.status_code == 404
    decided = await client.post(f"{path}/resolve", json={"note": "warned"}, headers=boss)
    assert decided.status_code == 200, decided.text
    assert decided.json()["report"]["status"] == "resolved"
    again = await client.post(f"{path}/dismiss", json={}, headers=boss)
    assert again.status_code == 409 and again.json()["error"]["code"] == "conflict"
    assert (await client.get("/api/v1/admin/reports", headers=boss)).json()["reports"] == []
    resolved = await client.get("/api/v1/admin/reports?status=resolved", headers=boss)
    assert [r["note"] for r in resolved.json()["reports"]] == ["warned"]
    async with platform.db.read(primary=True) as conn:
        rows = (
            (await conn.execute(select(audit_log).where(audit_log.c.action == "report.resolve")))
            .mappings()
            .all()
        )
    assert len(rows) == 1 and rows[0]["user_id"] == bob_id
    assert orjson.loads(rows[0]["detail"])["report"] == report["id"]


async def test_staff_delete_a_message_from_the_room_history_and_storage(
    client: httpx.AsyncClient, platform: Platform
) -> None:
    _, ada = await register_user(client, "ada")
    boss = await staff(client, platform, "boss")
    async with running_groups(platform, ["chat"]), node_on(platform) as node:
        url = node.url
        a, mod = await joined(url, ada), await joined(url, boss)
        kept, gone = await said(a, "hello"), await said(a, "something awful")
        await eventually(lambda: stored(platform, chat_messages, gone))
        await send(a, "chat.delete", {"room": "lobby", "id": kept}, id=9)
        assert (await recv(a, "error"))["d"]["code"] == "forbidden"  # users do not delete
        await send(mod, "chat.delete", {"room": "lobby", "id": gone}, id=10)
        frames = [await recv(mod, "chat.deleted"), await recv(mod, "chat.deleted")]
        assert sorted(("re" in f, "s" in f) for f in frames) == [(False, True), (True, False)]
        pushed = await recv(a, "chat.deleted")
        assert pushed["d"] == {"room": "lobby", "id": gone} and "s" in pushed

        async def deleted() -> bool | None:
            return True if await stored(platform, chat_messages, gone) is None else None

        await eventually(deleted)
        assert await stored(platform, chat_messages, kept) is not None
        late = await connect(url)
        await send(late, "hello", {"token": (await guest_auth(client))["Authorization"][7:]}, id=1)
        await recv(late, "welcome")
        await send(late, "room.join", {"room": "lobby"}, id=2)
        history = (await recv(late, "room.joined"))["d"]["history"]
        assert [m["id"] for m in history] == [kept]
        for ws in (a, mod, late):
            await ws.close()


async def test_appearing_offline_is_a_profile_setting_the_gateway_honours(
    client: httpx.AsyncClient, platform: Platform
) -> None:
    ada_id, ada = await register_user(client, "ada")
    _, bob = await register_user(client, "bob")
    async with node_on(platform) as node:
        url = node.url
        a, b = await joined(url, ada, "den"), await joined(url, bob, "den")

        async def status() -> str:
            await send(b, "presence.query", {"users": [ada_id]}, id=11)
            found: str = (await recv(b, "presence.state"))["d"]["users"][ada_id]
            return found

        assert await status() == "online"
        hide = await client.patch("/api/v1/users/me", json={"appear_offline": True}, headers=ada)
        assert hide.status_code == 200 and hide.json()["appear_offline"] is True
        assert await status() == "offline"
        await send(a, "presence.query", {"users": [ada_id]}, id=12)
        assert (await recv(a, "presence.state"))["d"]["users"][ada_id] == "online"  # own
        public = await client.get("/api/v1/users/ada")
        assert "appear_offline" not in public.json()
        bad = await client.patch("/api/v1/users/me", json={"appear_offline": "yes"}, headers=ada)
        assert bad.status_code == 400
        await platform.cache.delete(f"user:{ada_id}:appear_offline")  # a cache lost ...
        a2 = await joined(url, ada, "den")  # ... heals when a session starts
        assert await status() == "offline"
        show = await client.patch("/api/v1/users/me", json={"appear_offline": False}, headers=ada)
        assert show.json()["appear_offline"] is False
        assert await status() == "online"
        for ws in (a, a2, b):
            await ws.close()
