"""Auth and profile endpoints on both backends (SQLite+memory and MariaDB+Redis+Kafka)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import jwt
import pytest
from prometheus_client import generate_latest

from rest.app import create_app, create_metrics_app
from typogram.platform import Platform
from typogram.roles import Role
from typogram.staff import Actor, desk_of

pytestmark = pytest.mark.integration


@pytest.fixture
async def client(platform: Platform) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(platform))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


async def register(client: httpx.AsyncClient, name: str = "alice") -> dict:
    response = await client.post(
        "/api/v1/auth/register",
        json={"username": name, "email": f"{name}@example.com", "password": "correct horse"},
    )
    assert response.status_code == 201, response.text
    return response.json()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_register_login_and_profile(client: httpx.AsyncClient) -> None:
    pair = await register(client)
    assert pair["user"]["username"] == "alice"
    assert len(pair["user"]["referral_code"]) == 8
    assert "password_hash" not in pair["user"]

    for login in ("alice", "ALICE@example.com"):
        response = await client.post(
            "/api/v1/auth/login", json={"login": login, "password": "correct horse"}
        )
        assert response.status_code == 200, response.text

    me = await client.get("/api/v1/users/me", headers=bearer(pair["access_token"]))
    assert me.status_code == 200
    assert me.json()["email"] == "alice@example.com"

    public = await client.get("/api/v1/users/alice")
    assert public.status_code == 200
    assert "email" not in public.json()
    assert "referral_code" not in public.json()


async def test_a_duplicate_username_is_409_and_a_duplicate_email_is_not_revealed(
    client: httpx.AsyncClient,
) -> None:
    await register(client)
    same_name = await client.post(
        "/api/v1/auth/register",
        json={"username": "Alice", "email": "other@example.com", "password": "correct horse"},
    )
    assert same_name.status_code == 409
    assert same_name.json()["error"]["fields"] == {"username": "already taken"}
    both = await client.post(
        "/api/v1/auth/register",
        json={"username": "alice", "email": "alice@example.com", "password": "correct horse"},
    )
    assert both.status_code == 409
    assert both.json()["error"]["fields"] == {"username": "already taken"}
    # A taken address answers as a free one does (its holder hears of it by e-mail).
    same_mail = await client.post(
        "/api/v1/auth/register",
        json={"username": "bob", "email": "ALICE@example.com", "password": "correct horse"},
    )
    fresh = await client.post(
        "/api/v1/auth/register",
        json={"username": "carol", "email": "carol@example.com", "password": "correct horse"},
    )
    assert same_mail.status_code == fresh.status_code == 201
    assert same_mail.json().keys() == fresh.json().keys()
    assert same_mail.json()["user"]["email"] == "alice@example.com"
    assert same_mail.json()["user"]["email_verified"] is fresh.json()["user"]["email_verified"]
    me = await client.get(
        "/api/v1/users/me",
        headers={"Authorization": f"Bearer {same_mail.json()['access_token']}"},
    )
    assert me.json()["email"] == "alice@example.com" and me.json()["email_verified"] is False


async def test_wrong_credentials_give_one_generic_401(client: httpx.AsyncClient) -> None:
    await register(client)
    wrong_password = await client.post(
        "/api/v1/auth/login", json={"login": "alice", "password": "nope nope"}
    )
    no_user = await client.post("/api/v1/auth/login", json={"login": "zed", "password": "nope"})
    assert wrong_password.status_code == no_user.status_code == 401
    assert wrong_password.json() == no_user.json()


async def test_login_backs_off_after_repeated_failures(platform: Platform) -> None:
    app = create_app(platform)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        await register(c)
        for _ in range(platform.settings.login_backoff_free_failures):
            bad = await c.post("/api/v1/auth/login", json={"login": "alice", "password": "x"})
            assert bad.status_code == 401
        bad = await c.post("/api/v1/auth/login", json={"login": "alice", "password": "x"})
        assert bad.status_code == 401  # the first failure past the free ones starts a wait
        blocked = await c.post(
            "/api/v1/auth/login", json={"login": "alice", "password": "correct horse"}
        )
        assert blocked.status_code == 429
        assert int(blocked.headers["Retry-After"]) > 0


async def test_refresh_rotates_and_a_spent_token_is_refused(client: httpx.AsyncClient) -> None:
    pair = await register(client)
    first = await client.post("/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert first.status_code == 200
    new_pair = first.json()
    assert new_pair["refresh_token"] != pair["refresh_token"]
    replay = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]}
    )
    assert replay.status_code == 401
    # Replaying a spent token revokes its family: the rotated token dies too.
    after_theft = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": new_pair["refresh_token"]}
    )
    assert after_theft.status_code == 401


async def test_access_and_refresh_tokens_are_not_interchangeable(client: httpx.AsyncClient) -> None:
    pair = await register(client)
    as_access = await client.get("/api/v1/users/me", headers=bearer(pair["refresh_token"]))
    assert as_access.status_code == 401
    as_refresh = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": pair["access_token"]}
    )
    assert as_refresh.status_code == 401


async def test_logout_all_revokes_every_earlier_token(client: httpx.AsyncClient) -> None:
    pair = await register(client)
    other = (
        await client.post(
            "/api/v1/auth/login", json={"login": "alice", "password": "correct horse"}
        )
    ).json()
    out = await client.post("/api/v1/auth/logout-all", headers=bearer(pair["access_token"]))
    assert out.status_code == 200
    assert out.json()["token_version"] == 1
    for token in (pair["access_token"], other["access_token"]):
        assert (await client.get("/api/v1/users/me", headers=bearer(token))).status_code == 401
    refused = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": other["refresh_token"]}
    )
    assert refused.status_code == 401
    fresh = await client.post(
        "/api/v1/auth/login", json={"login": "alice", "password": "correct horse"}
    )
    assert (
        await client.get("/api/v1/users/me", headers=bearer(fresh.json()["access_token"]))
    ).status_code == 200


async def test_password_change_is_audited_and_revokes(
    client: httpx.AsyncClient, platform: Platform
) -> None:
    pair = await register(client)
    wrong = await client.post(
        "/api/v1/auth/password",
        json={"current_password": "bad", "new_password": "new secret 1"},
        headers=bearer(pair["access_token"]),
    )
    assert wrong.status_code == 401
    changed = await client.post(
        "/api/v1/auth/password",
        json={"current_password": "correct horse", "new_password": "new secret 1"},
        headers=bearer(pair["access_token"]),
    )
    assert changed.status_code == 200
    assert (
        await client.get("/api/v1/users/me", headers=bearer(pair["access_token"]))
    ).status_code == 401
    login = await client.post(
        "/api/v1/auth/login", json={"login": "alice", "password": "new secret 1"}
    )
    assert login.status_code == 200
    entries = await platform.accounts.audit_entries(pair["user"]["id"])
    actions = [(e["action"], e["outcome"]) for e in entries]
    assert ("password_change", "failure") in actions
    assert ("password_change", "success") in actions
    assert ("register", "success") in actions
    assert all(
        "correct horse" not in e["detail"] and "new secret" not in e["detail"] for e in entries
    )


async def test_failed_logins_are_audited(client: httpx.AsyncClient, platform: Platform) -> None:
    pair = await register(client)
    await client.post("/api/v1/auth/login", json={"login": "alice", "password": "guess guess"})
    entries = await platform.accounts.audit_entries(pair["user"]["id"])
    assert ("login", "failure") in [(e["action"], e["outcome"]) for e in entries]
    assert all("guess" not in e["detail"] for e in entries)


async def test_guest_token_plays_but_has_no_profile(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/auth/guest")
    assert response.status_code == 201
    body = response.json()
    assert body["user"]["guest"] is True
    me = await client.get("/api/v1/users/me", headers=bearer(body["access_token"]))
    assert me.status_code == 401
    named = await client.post("/api/v1/auth/guest", json={"name": "speedy"})
    assert named.json()["user"]["name"] == "speedy"


async def test_profile_update_invalidates_the_cache(
    client: httpx.AsyncClient, platform: Platform
) -> None:
    pair = await register(client)
    headers = bearer(pair["access_token"])
    await client.get("/api/v1/users/me", headers=headers)
    hits_before = platform.cache.statistics()["hits"]
    await client.get("/api/v1/users/me", headers=headers)
    assert platform.cache.statistics()["hits"] > hits_before
    patched = await client.patch(
        "/api/v1/users/me",
        json={"display_name": "Alice A.", "country": "NL", "keyboard_layout": "colemak"},
        headers=headers,
    )
    assert patched.status_code == 200
    assert patched.json()["display_name"] == "Alice A."
    again = await client.get("/api/v1/users/alice")
    assert again.json()["country"] == "NL"
    bad = await client.patch("/api/v1/users/me", json={"country": "nld"}, headers=headers)
    assert bad.status_code == 400
    assert "country" in bad.json()["error"]["fields"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"username": "a", "email": "a@example.com", "password": "long enough"}, "username"),
        ({"username": "bob", "email": "not-an-email", "password": "long enough"}, "email"),
        ({"username": "bob", "email": "b@example.com", "password": "short"}, "password"),
        ({"username": 5, "email": "b@example.com", "password": "long enough"}, "username"),
        ({"email": "b@example.com", "password": "long enough"}, "username"),
    ],
)
async def test_register_validation_names_the_field(
    client: httpx.AsyncClient, body: dict, field: str
) -> None:
    response = await client.post("/api/v1/auth/register", json=body)
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]


async def test_malformed_and_oversized_bodies(
    client: httpx.AsyncClient, platform: Platform
) -> None:
    garbage = await client.post(
        "/api/v1/auth/login", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert garbage.status_code == 400
    assert garbage.json()["error"]["code"] == "bad_request"
    huge = await client.post(
        "/api/v1/auth/login", content=b"x" * (platform.settings.max_body_bytes + 1)
    )
    assert huge.status_code == 413
    assert huge.json()["error"]["code"] == "payload_too_large"
    missing = await client.get("/api/v1/nothing-here")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    wrong_method = await client.delete("/api/v1/auth/login")
    assert wrong_method.status_code == 405


async def test_forged_and_alg_none_tokens_are_refused(client: httpx.AsyncClient) -> None:
    pair = await register(client)
    claims = jwt.decode(pair["access_token"], options={"verify_signature": False})
    unsigned = jwt.encode(claims, key=None, algorithm="none")
    forged = jwt.encode(claims, "a-different-secret-that-is-long-enough", algorithm="HS256")
    for token in (unsigned, forged, "garbage", pair["access_token"] + "x"):
        response = await client.get("/api/v1/users/me", headers=bearer(token))
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "unauthorized"


async def test_health_ready_metrics_openapi(client: httpx.AsyncClient, platform: Platform) -> None:
    assert (await client.get("/health")).json() == {"status": "ok"}
    ready = await client.get("/ready")
    assert ready.status_code == 200
    backends = {"database", "cache", "pubsub", "events", "archive", "match_queues"}
    assert set(ready.json()["backends"]) == backends
    assert ready.json()["failed_tasks"] == {}
    await client.get("/api/v1/users/nobody")
    # Without a metrics token the public port has no /metrics (it has its own listener).
    assert (await client.get("/metrics")).status_code == 404
    metrics_app = create_metrics_app(platform)
    transport = httpx.ASGITransport(app=metrics_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as scraper:
        metrics = (await scraper.get("/metrics")).text
    assert (
        'typogram_http_requests_total{method="GET",route="/api/v1/users/{username}",status="404"}'
        in metrics
    )
    assert 'typogram_component{component="cache",stat="hit_rate"}' in metrics
    doc = (await client.get("/api/v1/openapi.json")).json()
    assert doc["openapi"].startswith("3.")
    for path in ("/api/v1/auth/register", "/api/v1/auth/login", "/api/v1/users/{username}"):
        assert path in doc["paths"]


async def test_ready_fails_while_a_lasting_background_task_is_dead(
    client: httpx.AsyncClient, platform: Platform
) -> None:
    async def subscriber() -> None:
        raise RuntimeError("the subscriber gave up")

    await asyncio.wait([platform.tasks.start("doomed-subscriber", subscriber(), lasting=True)])
    await asyncio.sleep(0)  # the supervisor's done callback
    ready = await client.get("/ready")
    assert ready.status_code == 503
    body = ready.json()
    assert body["status"] == "degraded"
    assert body["failed_tasks"] == {"doomed-subscriber": "error: RuntimeError"}
    assert set(body["backends"].values()) == {"ok"}
    metrics = generate_latest(platform.metrics.registry).decode()
    assert 'typogram_task_failures_total{task="doomed-subscriber"} 1.0' in metrics


async def test_rate_limit_per_ip_answers_429_with_retry_after(backend_settings) -> None:
    from tests.conftest import cheap_passwords
    from typogram.platform import open_platform

    settings = backend_settings.replace(rate_limit_ip_per_min=5)
    async with open_platform(settings, migrate=True, passwords=cheap_passwords()) as p:
        app = create_app(p)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://t"
        ) as c:
            statuses = [(await c.get("/api/v1/users/nobody")).status_code for _ in range(7)]
            assert statuses[:5] == [404] * 5
            assert statuses[5:] == [429, 429]
            limited = await c.get("/api/v1/users/nobody")
            assert limited.json()["error"]["code"] == "rate_limited"
            assert 1 <= int(limited.headers["Retry-After"]) <= 60


async def test_role_change_is_audited_and_revokes_tokens(
    client: httpx.AsyncClient, platform: Platform
) -> None:
    pair = await register(client)
    user_id = pair["user"]["id"]
    admin = Actor("admin-1", Role.ADMIN, "10.0.0.1")
    await desk_of(platform).set_role(admin, user_id, Role.MODERATOR)
    assert (
        await client.get("/api/v1/users/me", headers=bearer(pair["access_token"]))
    ).status_code == 401
    entries = await platform.accounts.audit_entries(user_id)
    change = next(e for e in entries if e["action"] == "role_change")
    assert '"to":"moderator"' in change["detail"]
    assert '"actor":"admin-1"' in change["detail"]
    user = await platform.accounts.get(user_id)
    assert user is not None and user.role == "moderator"
