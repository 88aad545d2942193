"""Staff tools over REST on both backends: every admin route refuses non-staff, bans end
access at once (login, tokens, live sockets), the last admin is kept, roles, the audit
log and the user search."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from gateway.server import Gateway, gateway_of
from tests.integration.courses_support import client, staff, user
from typogram.platform import Platform
from typogram.roles import Role

pytestmark = pytest.mark.integration
__all__ = ["client"]  # fixture

Auth = dict[str, str]
PASSWORD = "correct horse"
PATH_VALUES = {
    "user": "someone",
    "post_id": "0" * 32,
    "slug": "some-course",
    "number": "1",
    "flag_id": "0" * 32,
    "report_id": "0" * 32,
    "payment_id": "0" * 32,
    "code": "SOMECODE",
}


def bearer(token: str) -> Auth:
    return {"Authorization": f"Bearer {token}"}


async def login(client: httpx.AsyncClient, name: str) -> httpx.Response:
    return await client.post("/api/v1/auth/login", json={"login": name, "password": PASSWORD})


async def admin(client: httpx.AsyncClient, platform: Platform, name: str = "boss") -> Auth:
    return await staff(client, platform, name, "admin")


async def user_id_of(client: httpx.AsyncClient, auth: Auth) -> str:
    me: str = (await client.get("/api/v1/users/me", headers=auth)).json()["id"]
    return me


def admin_operations(doc: dict[str, Any]) -> list[tuple[str, str, list[str]]]:
    found = []
    for path, methods in doc["paths"].items():
        if not path.startswith("/api/v1/admin/"):
            continue
        concrete = path
        for name, value in PATH_VALUES.items():
            concrete = concrete.replace(f"{{{name}}}", value)
        assert "{" not in concrete, f"no test value for a parameter of {path}"
        for method, operation in methods.items():
            found.append((method.upper(), concrete, operation.get("x-roles", [])))
    return found


async def test_every_admin_route_refuses_everyone_but_its_roles(
    client: httpx.AsyncClient, platform: Platform
) -> None:
    doc = (await client.get("/api/v1/openapi.json")).json()
    operations = admin_operations(doc)
    assert len(operations) >= 25, "the walk must cover the whole admin surface"
    _, plain = await user(client, "plainuser")
    guest = bearer((await client.post("/api/v1/auth/guest", json={})).json()["access_token"])
    callers = {
        "user": plain,
        "guest": guest,
        "moderator": await staff(client, platform, "moderator1", "moderator"),
        "editor": await staff(client, platform, "editor1", "editor"),
    }
    for method, path, roles in operations:
        assert roles, f"{method} {path} declares no roles"
        # A body that would be valid or not: the role is refused before it is read.
        body = {"title": "t", "body_markdown": "b", "reason": "r", "role": "admin"}
        for who, auth in callers.items():
            if who in roles:
                continue
            answer = await client.request(method, path, json=body, headers=auth)
            assert answer.status_code == 403, (who, method, path, answer.text)
            assert answer.json()["error"]["code"] == "forbidden"
        anonymous = await client.request(method, path, json=body)
        assert anonymous.status_code == 401, (method, path)


class GatewayNode:
    def __init__(self, gateway: Gateway) -> None:
        self.url = f"ws://127.0.0.1:{gateway.port}/ws"


@contextlib.asynccontextmanager
async def node_on(platform: Platform) -> AsyncIterator[GatewayNode]:
    settings = platform.settings.replace(ws_port=0, ws_close_timeout_s=0.5)
    async with gateway_of(platform, settings) as gateway:
        stop = asyncio.Event()
        serving = asyncio.create_task(gateway.serve(stop))
        try:
            yield GatewayNode(gateway)
        finally:
            stop.set()
            await asyncio.wait_for(serving, 10)


async def closed_with(ws: Any) -> int | None:
    with contextlib.suppress(ConnectionClosed):
        while True:
            await asyncio.wait_for(ws.recv(), 5)
    code: int | None = ws.close_code
    return code


async def test_a_ban_ends_login_tokens_and_sockets_at_once(
    client: httpx.AsyncClient, platform: Platform
) -> None:
    boss = await admin(client, platform)
    response = await client.post(
        "/api/v1/auth/register",
        json={"username": "troll", "email": "troll@example.com", "password": PASSWORD},
    )
    pair = response.json()
    troll = pair["user"]["id"]
    async with node_on(platform) as node, connect(node.url) as ws:
        await ws.send(orjson.dumps({"t": "hello", "d": {"token": pair["access_token"]}, "id": 1}))
        assert orjson.loads(await asyncio.wait_for(ws.recv(), 5))["t"] == "welcome"
        until = int(time.time() * 1000) + 3_600_000
        banned = await client.post(
            "/api/v1/admin/users/troll/ban", json={"reason": "spam", "until": until},
            headers=boss,
        )  # fmt: skip
        assert banned.status_code == 200, banned.text
        assert banned.json()["reason"] == "spam" and banned.json()["ends_at"] == until
        assert await closed_with(ws) == 4001
    assert (
        await client.get("/api/v1/users/me", headers=bearer(pair["access_token"]))
    ).status_code == 401
    refreshed = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]}
    )
    assert refreshed.status_code in (401, 403)
    refused = await login(client, "troll")
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "banned"
    assert "spam" in refused.json()["error"]["message"]
    wrong = await client.post(
        "/api/v1/auth/login", json={"login": "troll", "password": "nope-nope"}
    )
    assert wrong.status_code == 401  # a wrong password learns nothing of the ban

    view = (await client.get(f"/api/v1/admin/users/{troll}", headers=boss)).json()
    assert view["ban"]["reason"] == "spam" and len(view["bans"]) == 1
    lifted = await client.post("/api/v1/admin/users/troll/unban", json={"reason": "appeal"},
                               headers=boss)  # fmt: skip
    assert lifted.status_code == 200 and lifted.json()["ban"] is None
    assert lifted.json()["bans"][0]["lift_reason"] == "appeal"
    assert (await login(client, "troll")).status_code == 200
    again = await client.post("/api/v1/admin/users/troll/unban", json={}, headers=boss)
    assert again.status_code == 409

    # A short ban ends by itself.
    soon = int(time.time() * 1000) + 1_000
    await client.post("/api/v1/admin/users/troll/ban", json={"reason": "cool off", "until": soon},
                      headers=boss)  # fmt: skip
    assert (await login(client, "troll")).status_code == 403
    await asyncio.sleep(max(0.0, soon / 1000 - time.time()) + 0.1)
    assert (await login(client, "troll")).status_code == 200


async def test_sessions_reset_signs_out_everywhere(
    client: httpx.AsyncClient, platform: Platform
) -> None:
    moderator = await staff(client, platform, "moderator2", "moderator")
    _, victim = await user(client, "victim")
    reset = await client.post("/api/v1/admin/users/victim/sessions/revoke", headers=moderator)
    assert reset.status_code == 200 and reset.json()["sessions_reset"] is True
    assert (await client.get("/api/v1/users/me", headers=victim)).status_code == 401
    assert (await login(client, "victim")).status_code == 200  # not a ban


async def test_refusals_keep_the_platform_governable(
    client: httpx.AsyncClient, platform: Platform
) -> None:
    boss = await admin(client, platform)
    moderator = await staff(client, platform, "moderator3", "moderator")
    await staff(client, platform, "editor3", "editor")
    _, _ = await user(client, "someone")
    me = await client.post("/api/v1/admin/users/boss/ban", json={"reason": "x"}, headers=boss)
    assert me.status_code == 409 and "yourself" in me.json()["error"]["message"]
    last = await client.delete("/api/v1/admin/users/boss/role", headers=boss)
    assert last.status_code == 409 and "last admin" in last.json()["error"]["message"]
    staff_ban = await client.post("/api/v1/admin/users/editor3/ban", json={"reason": "x"},
                                  headers=moderator)  # fmt: skip
    assert staff_ban.status_code == 403
    past = await client.post("/api/v1/admin/users/someone/ban",
                             json={"reason": "x", "until": 1000}, headers=moderator)  # fmt: skip
    assert past.status_code == 400 and "until" in past.json()["error"]["fields"]
    blank = await client.post("/api/v1/admin/users/someone/ban", json={"reason": "   "},
                              headers=moderator)  # fmt: skip
    assert blank.status_code == 400
    for bad in ({}, {"reason": "x" * 501}, {"reason": "x", "until": "soon"}, {"reason": 1}):
        answer = await client.post("/api/v1/admin/users/someone/ban", json=bad, headers=boss)
        assert answer.status_code == 400, bad
    missing = await client.post("/api/v1/admin/users/nobody/ban", json={"reason": "x"},
                                headers=boss)  # fmt: skip
    assert missing.status_code == 404
    bad_role = await client.put("/api/v1/admin/users/someone/role", json={"role": "god"},
                                headers=boss)  # fmt: skip
    assert bad_role.status_code == 400


async def test_two_admins_banning_each_other_at_once_leave_one(
    client: httpx.AsyncClient, platform: Platform
) -> None:
    first = await admin(client, platform, "admin_a")
    second = await admin(client, platform, "admin_b")
    answers = await asyncio.gather(
        client.post("/api/v1/admin/users/admin_b/ban", json={"reason": "x"}, headers=first),
        client.post("/api/v1/admin/users/admin_a/ban", json={"reason": "y"}, headers=second),
    )
    codes = sorted(answer.status_code for answer in answers)
    # One ban lands; the other is refused: by the last-admin rule, or because the
    # banned admin's token was already revoked.
    assert codes[0] == 200 and codes[1] in (401, 409), [a.text for a in answers]
    standing = [
        name for name in ("admin_a", "admin_b") if (await login(client, name)).status_code == 200
    ]
    assert len(standing) == 1


async def test_roles_granted_and_revoked_over_rest(
    client: httpx.AsyncClient, platform: Platform
) -> None:
    boss = await admin(client, platform)
    _, writer = await user(client, "writer")
    granted = await client.put("/api/v1/admin/users/writer/role", json={"role": "editor"},
                               headers=boss)  # fmt: skip
    assert granted.status_code == 200 and granted.json()["role"] == "editor"
    assert (await client.get("/api/v1/users/me", headers=writer)).status_code == 401
    fresh = bearer((await login(client, "writer")).json()["access_token"])
    post = await client.post("/api/v1/admin/posts", json={"title": "t", "body_markdown": "b"},
                             headers=fresh)  # fmt: skip
    assert post.status_code == 201
    revoked = await client.delete("/api/v1/admin/users/writer/role", headers=boss)
    assert revoked.json()["role"] == Role.USER
    again = bearer((await login(client, "writer")).json()["access_token"])
    assert (await client.get("/api/v1/admin/posts", headers=again)).status_code == 403
    entries = revoked.json()["audit"]
    changes = [e["detail"] for e in entries if e["action"] == "role_change"]
    assert [(c["from"], c["to"]) for c in changes][:2] == [("editor", "user"), ("user", "editor")]


async def test_audit_log_pages_and_filters(client: httpx.AsyncClient, platform: Platform) -> None:
    boss = await admin(client, platform)
    boss_id = await user_id_of(client, boss)
    for n in range(3):
        await user(client, f"member{n}")
        await client.post(f"/api/v1/admin/users/member{n}/ban", json={"reason": f"r{n}"},
                          headers=boss)  # fmt: skip
    bans = (await client.get("/api/v1/admin/audit?action=user.ban", headers=boss)).json()
    assert [e["detail"]["reason"] for e in bans["entries"]] == ["r2", "r1", "r0"]
    assert {e["actor_id"] for e in bans["entries"]} == {boss_id}
    mine = (await client.get(f"/api/v1/admin/audit?actor={boss_id}&action=user.*",
                             headers=boss)).json()  # fmt: skip
    assert {e["action"] for e in mine["entries"]} == {"user.ban"}
    seen, cursor = [], None
    while True:
        query = "/api/v1/admin/audit?limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = (await client.get(query, headers=boss)).json()
        seen += [e["id"] for e in page["entries"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(seen, reverse=True) and len(seen) == len(set(seen)) >= 9
    logins = (await client.get("/api/v1/admin/audit?action=login&outcome=success",
                               headers=boss)).json()  # fmt: skip
    assert logins["entries"] and all(e["action"] == "login" for e in logins["entries"])
    assert (await client.get("/api/v1/admin/audit?since=soon", headers=boss)).status_code == 400
    assert (await client.get("/api/v1/admin/audit?cursor=junk", headers=boss)).status_code == 400
    future = int(time.time() * 1000) + 10_000
    empty = (await client.get(f"/api/v1/admin/audit?since={future}", headers=boss)).json()
    assert empty["entries"] == []


async def test_user_search(client: httpx.AsyncClient, platform: Platform) -> None:
    moderator = await staff(client, platform, "moderator4", "moderator")
    for name in ("alice_one", "alice_two", "bob_x", "al%ce"[:0] + "alfred"):
        await user(client, name)
    await client.post("/api/v1/admin/users/alice_two/ban", json={"reason": "x"}, headers=moderator)

    async def names(query: str) -> list[str]:
        page = (await client.get(f"/api/v1/admin/users?{query}", headers=moderator)).json()
        return [u["username"] for u in page["users"]]

    assert await names("q=ALICE") == ["alice_one", "alice_two"]
    assert await names("q=al") == ["alfred", "alice_one", "alice_two"]
    assert await names("q=bob_x@example") == ["bob_x"]
    assert await names("q=al%25") == [] and await names("q=_") == []  # wildcards are literal
    assert await names("q=al&banned=true") == ["alice_two"]
    assert "alice_two" not in await names("banned=false&limit=100")
    assert await names("role=moderator") == ["moderator4"]
    first = (await client.get("/api/v1/admin/users?q=al&limit=2", headers=moderator)).json()
    rest = (await client.get(f"/api/v1/admin/users?q=al&cursor={first['next_cursor']}",
                             headers=moderator)).json()  # fmt: skip
    assert [u["username"] for u in rest["users"]] == ["alice_two"]
    assert rest["users"][0]["ban"]["reason"] == "x" and "email" in rest["users"][0]
    bad = await client.get("/api/v1/admin/users?role=god&banned=maybe&limit=0", headers=moderator)
    assert bad.status_code == 400
    # A username that looks like a user id is still found by name.
    hexname = "0123456789abcdef0123456789abcdef"
    await user(client, hexname)
    found = await client.get(f"/api/v1/admin/users/{hexname}", headers=moderator)
    assert found.status_code == 200 and found.json()["username"] == hexname
    by_id = await client.get(f"/api/v1/admin/users/{found.json()['id']}", headers=moderator)
    assert by_id.json()["username"] == hexname
