"""Login throttling on both backends (issue 14 row 3), and per-IP quotas on register and guest.

Concurrency here is real: many requests in flight at once through the app, each
counter a round trip to Redis (distributed) or the in-memory cache (embedded).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import httpx
import pytest
from sqlalchemy import func, select

from rest.app import create_app
from tests.conftest import cheap_passwords
from typogram.db.schema import audit_log
from typogram.platform import Platform, open_platform
from typogram.settings import Settings

pytestmark = pytest.mark.integration

PASSWORD = "correct horse"
Client = Callable[[str], AbstractAsyncContextManager[httpx.AsyncClient]]


@asynccontextmanager
async def platform_with(settings: Settings, **changes: object) -> AsyncIterator[Platform]:
    async with open_platform(
        settings.replace(**changes), migrate=True, passwords=cheap_passwords()
    ) as platform:
        try:
            yield platform
        finally:
            from tests.conftest import empty_tables

            await empty_tables(platform)


def clients(platform: Platform) -> Client:
    """A client whose requests come from ``ip``."""
    app = create_app(platform)

    @asynccontextmanager
    async def client(ip: str) -> AsyncIterator[httpx.AsyncClient]:
        transport = httpx.ASGITransport(app=app, client=(ip, 40_000))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            yield c

    return client


async def sign_up(c: httpx.AsyncClient, name: str) -> httpx.Response:
    return await c.post(
        "/api/v1/auth/register",
        json={"username": name, "email": f"{name}@example.com", "password": PASSWORD},
    )


async def register(c: httpx.AsyncClient, name: str = "alice") -> str:
    response = await sign_up(c, name)
    assert response.status_code == 201, response.text
    return str(response.json()["user"]["id"])


@asynccontextmanager
async def alice_registered(
    settings: Settings, **changes: object
) -> AsyncIterator[tuple[Platform, httpx.AsyncClient]]:
    """A platform with ``changes`` and a client from 203.0.113.7 that registered alice."""
    async with (
        platform_with(settings, **changes) as platform,
        clients(platform)("203.0.113.7") as c,
    ):
        await register(c)
        yield platform, c


async def login(c: httpx.AsyncClient, name: str, password: str) -> httpx.Response:
    return await c.post("/api/v1/auth/login", json={"login": name, "password": password})


async def audited(platform: Platform, outcome: str, action: str = "login") -> int:
    async with platform.db.read(primary=True) as conn:
        result = await conn.execute(
            select(func.count())
            .select_from(audit_log)
            .where(audit_log.c.action == action, audit_log.c.outcome == outcome)
        )
        return int(result.scalar_one())


async def test_sixty_concurrent_wrong_passwords_verify_at_most_the_limit(
    backend_settings: Settings,
) -> None:
    unlimited = alice_registered(backend_settings, login_backoff_free_failures=1000)
    async with unlimited as (platform, c):
        replies = await asyncio.gather(*(login(c, "alice", f"guess {n}") for n in range(60)))
        statuses = sorted(r.status_code for r in replies)
        limit = platform.settings.login_attempts_per_15min
        # Verified = refused with 401; everything past the limit never reached verification.
        assert statuses.count(401) == limit
        assert statuses.count(429) == 60 - limit
        assert await audited(platform, "failure") == limit
        assert await audited(platform, "throttled") == 60 - limit


async def test_the_right_password_among_many_wrong_ones_gets_no_extra_verification(
    backend_settings: Settings,
) -> None:
    unlimited = alice_registered(backend_settings, login_backoff_free_failures=1000)
    async with unlimited as (platform, c):
        attempts = [login(c, "alice", f"guess {n}") for n in range(39)]
        attempts.append(login(c, "alice", PASSWORD))
        replies = await asyncio.gather(*attempts)
        verified = [r.status_code for r in replies if r.status_code != 429]
        assert len(verified) <= platform.settings.login_attempts_per_15min


async def test_username_and_email_count_as_one_account(backend_settings: Settings) -> None:
    unlimited = alice_registered(backend_settings, login_backoff_free_failures=1000)
    async with unlimited as (platform, c):
        limit = platform.settings.login_attempts_per_15min
        for n in range(limit):
            name = "alice" if n % 2 else "ALICE@example.com"
            assert (await login(c, name, "wrong guess")).status_code == 401
        assert (await login(c, "alice@example.com", "wrong guess")).status_code == 429
        assert (await login(c, "Alice", "wrong guess")).status_code == 429


async def test_the_owner_elsewhere_is_not_locked_out_by_an_attacker(
    backend_settings: Settings,
) -> None:
    async with platform_with(backend_settings) as platform:
        client = clients(platform)
        async with client("198.51.100.1") as owner, client("203.0.113.66") as attacker:
            await register(owner)
            await asyncio.gather(*(login(attacker, "alice", f"g{n}") for n in range(60)))
            assert (await login(attacker, "alice", PASSWORD)).status_code == 429
            assert (await login(owner, "alice", PASSWORD)).status_code == 200


async def test_a_distributed_guess_is_capped_per_account_but_known_ips_still_log_in(
    backend_settings: Settings,
) -> None:
    async with platform_with(backend_settings, login_attempts_per_account_per_15min=5) as platform:
        client = clients(platform)
        async with client("198.51.100.1") as owner:
            await register(owner)
            assert (await login(owner, "alice", PASSWORD)).status_code == 200
        statuses = []
        for n in range(8):  # eight attackers, one guess each
            async with client(f"203.0.113.{n + 1}") as attacker:
                statuses.append((await login(attacker, "alice", "wrong guess")).status_code)
        # The owner's first login counted too: it came from an IP not yet known.
        assert statuses == [401] * 4 + [429] * 4
        async with client("198.51.100.1") as owner:  # logged in from here before
            assert (await login(owner, "alice", PASSWORD)).status_code == 200
        async with client("192.0.2.200") as stranger:
            assert (await login(stranger, "alice", PASSWORD)).status_code == 429


async def test_failures_back_off_progressively_and_a_success_clears_them(
    backend_settings: Settings,
) -> None:
    backing_off = alice_registered(
        backend_settings, login_backoff_free_failures=2, login_backoff_base_s=1.0
    )
    async with backing_off as (platform, c):
        assert (await login(c, "alice", "wrong one")).status_code == 401
        assert (await login(c, "alice", "wrong two")).status_code == 401
        assert (await login(c, "alice", "wrong three")).status_code == 401  # now waits 1 s
        waiting = await login(c, "alice", PASSWORD)
        assert waiting.status_code == 429
        assert waiting.headers["Retry-After"] == "1"
        await asyncio.sleep(1.1)
        assert (await login(c, "alice", "wrong four")).status_code == 401  # now 2 s
        waiting = await login(c, "alice", PASSWORD)
        assert waiting.status_code == 429
        assert int(waiting.headers["Retry-After"]) == 2
        await asyncio.sleep(2.1)
        assert (await login(c, "alice", PASSWORD)).status_code == 200
        # The streak is gone: two more failures are free again.
        assert (await login(c, "alice", "wrong one")).status_code == 401
        assert (await login(c, "alice", "wrong two")).status_code == 401
        assert (await login(c, "alice", PASSWORD)).status_code == 200
        async with platform.db.read(primary=True) as conn:
            rows = await conn.execute(
                select(audit_log.c.detail).where(audit_log.c.outcome == "throttled")
            )
            details = [row[0] for row in rows]
        assert len(details) == 2 and all('"scope":"backoff"' in d for d in details)


async def test_an_unknown_name_is_throttled_like_a_known_one(backend_settings: Settings) -> None:
    throttled = platform_with(backend_settings, login_backoff_free_failures=1000)
    async with throttled as platform, clients(platform)("203.0.113.7") as c:
        limit = platform.settings.login_attempts_per_15min
        replies = await asyncio.gather(*(login(c, "nobody", "guess") for _ in range(limit + 5)))
        assert sorted(r.status_code for r in replies) == [401] * limit + [429] * 5


async def test_register_and_guest_tokens_have_a_per_ip_quota(backend_settings: Settings) -> None:
    async with platform_with(
        backend_settings, register_per_ip_per_hour=3, guest_tokens_per_ip_per_hour=4
    ) as platform:
        client = clients(platform)
        async with client("203.0.113.7") as c, client("198.51.100.1") as other:
            for name in ("ann", "bob", "cyd"):
                await register(c, name)
            refused = await sign_up(c, "dee")
            assert refused.status_code == 429
            assert refused.json()["error"]["code"] == "rate_limited"
            assert int(refused.headers["Retry-After"]) > 0
            await register(other, "dee")
            guests = [(await c.post("/api/v1/auth/guest", json={})).status_code for _ in range(5)]
            assert guests == [201] * 4 + [429]
            assert (await other.post("/api/v1/auth/guest", json={})).status_code == 201
        assert await audited(platform, "throttled", action="register") == 1


async def test_guesses_at_the_current_password_are_throttled_too(
    backend_settings: Settings,
) -> None:
    """A stolen access token does not buy unlimited guesses through a password change."""
    async with platform_with(backend_settings) as platform, clients(platform)("203.0.113.7") as c:
        response = await sign_up(c, "alice")
        auth = {"Authorization": f"Bearer {response.json()['access_token']}"}

        async def change(current: str) -> httpx.Response:
            body = {"current_password": current, "new_password": "battery staple horse"}
            return await c.post("/api/v1/auth/password", json=body, headers=auth)

        replies = await asyncio.gather(*(change(f"guess {n}") for n in range(30)))
        statuses = sorted(r.status_code for r in replies)
        limit = platform.settings.login_attempts_per_15min
        assert statuses == [401] * limit + [429] * (30 - limit)
        assert await audited(platform, "throttled", action="password_change") == 30 - limit
        assert (await change(PASSWORD)).status_code == 429  # now backing off
