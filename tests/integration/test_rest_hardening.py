"""Input that can't hide, password strength and the operations surface, on both backends
(issue 14 rows 4, 6, 8 and 10; the e-mail enumeration answer of row 10 is not here)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from rest.app import create_app, create_metrics_app
from tests.conftest import cheap_passwords
from typogram.platform import Platform, open_platform
from typogram.settings import Settings

pytestmark = pytest.mark.integration

STRONG = "correct horse"
TOKEN = "metrics-token-0123456789"


@pytest.fixture
async def client(platform: Platform) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(platform))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        yield c


async def sign_up(
    c: httpx.AsyncClient, username: str, password: str = STRONG, email: str = ""
) -> httpx.Response:
    email = email or f"{username.strip()}@example.com"
    return await c.post(
        "/api/v1/auth/register",
        json={"username": username, "email": email, "password": password},
    )


# -- row 4: patterns that admit a trailing newline --------------------------------


async def test_a_trailing_newline_does_not_make_a_second_admin(client: httpx.AsyncClient) -> None:
    assert (await sign_up(client, "admin")).status_code == 201
    twin = await sign_up(client, "admin\n", email="twin@example.com")
    assert twin.status_code == 400
    assert "username" in twin.json()["error"]["fields"]
    for name in ("ADMIN", "Admin"):
        taken = await sign_up(client, name, email=f"{name}x@example.com")
        assert taken.status_code == 409


async def test_guest_names_and_country_match_whole_values(client: httpx.AsyncClient) -> None:
    guest = await client.post("/api/v1/auth/guest", json={"name": "guest_a\n"})
    assert guest.status_code == 400
    token = (await sign_up(client, "alice")).json()["access_token"]
    auth = {"Authorization": f"Bearer {token}"}
    for country in ("DE\n", "de", "DEU"):
        refused = await client.patch("/api/v1/users/me", json={"country": country}, headers=auth)
        assert refused.status_code == 400, country
    assert (await client.patch("/api/v1/users/me", json={"country": "DE"}, headers=auth)).is_success


@pytest.mark.parametrize(
    "display_name",
    [
        "evil\u202egnp.exe",
        "zero\u200bwidth",
        "tab\there",
        "new\nline",
        "\u3164",
        "   ",
        "bom\ufeff",
    ],
)
async def test_display_names_refuse_hidden_characters(
    client: httpx.AsyncClient, display_name: str
) -> None:
    token = (await sign_up(client, "alice")).json()["access_token"]
    refused = await client.patch(
        "/api/v1/users/me",
        json={"display_name": display_name},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert refused.status_code == 400
    assert "display_name" in refused.json()["error"]["fields"]


async def test_a_bio_keeps_newlines_but_not_bidi_overrides(client: httpx.AsyncClient) -> None:
    token = (await sign_up(client, "alice")).json()["access_token"]
    auth = {"Authorization": f"Bearer {token}"}
    ok = await client.patch("/api/v1/users/me", json={"bio": "two\nlines"}, headers=auth)
    assert ok.status_code == 200
    refused = await client.patch("/api/v1/users/me", json={"bio": "a\u2066b"}, headers=auth)
    assert refused.status_code == 400


# -- row 6: only length was checked -------------------------------------------------


@pytest.mark.parametrize("password", ["password", "12345678", " " * 8, "\x00" * 8, "alice1234"])
async def test_weak_passwords_are_refused_with_the_reason(
    client: httpx.AsyncClient, password: str
) -> None:
    refused = await sign_up(client, "alice", password)
    assert refused.status_code == 400
    error = refused.json()["error"]
    assert error["code"] == "bad_request"
    assert "guess" in error["fields"]["password"]


async def test_owasp_length_rules_stay_and_every_character_is_allowed(
    client: httpx.AsyncClient,
) -> None:
    assert (await sign_up(client, "alice", "x" * 129)).status_code == 400
    long_one = "Zebra\u00e9 tr\u00e8s \U0001f511 unusual words " * 4 + "\x00"
    assert (await sign_up(client, "bob", long_one[:128])).status_code == 201


async def test_a_password_change_checks_strength_too(client: httpx.AsyncClient) -> None:
    token = (await sign_up(client, "alice")).json()["access_token"]
    weak = await client.post(
        "/api/v1/auth/password",
        json={"current_password": STRONG, "new_password": "alicealice"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert weak.status_code == 400
    assert "new_password" in weak.json()["error"]["fields"]


# -- row 10: headers, and the client address ---------------------------------------

TOKEN_ROUTES = ("/api/v1/auth/register", "/api/v1/auth/login", "/api/v1/auth/guest")


async def test_every_token_response_is_no_store(client: httpx.AsyncClient) -> None:
    registered = await sign_up(client, "alice")
    logged_in = await client.post("/api/v1/auth/login", json={"login": "alice", "password": STRONG})
    refreshed = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": logged_in.json()["refresh_token"]}
    )
    changed = await client.post(
        "/api/v1/auth/password",
        json={"current_password": STRONG, "new_password": "battery staple horse"},
        headers={"Authorization": f"Bearer {refreshed.json()['access_token']}"},
    )
    guest = await client.post("/api/v1/auth/guest", json={})
    for response in (registered, logged_in, refreshed, changed, guest):
        assert response.is_success, response.text
        assert response.headers["cache-control"] == "no-store"


@pytest.mark.parametrize(
    "path", ["/api/v1/users/nobody", "/no/such/page.html", "/", "/health", "/api/v1/openapi.json"]
)
async def test_security_headers_are_on_every_response(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path, headers={"Accept": "text/html"})
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    policy = response.headers["content-security-policy"]
    for directive in ("frame-ancestors 'none'", "object-src 'none'", "base-uri 'none'"):
        assert directive in policy, (path, policy)
    assert response.headers["referrer-policy"]


async def test_forwarded_for_counts_only_from_a_trusted_proxy(backend_settings: Settings) -> None:
    settings = backend_settings.replace(trusted_proxies=("10.0.0.0/8",))
    async with open_platform(settings, migrate=True, passwords=cheap_passwords()) as platform:
        app = create_app(platform)
        forged = {"X-Forwarded-For": "192.0.2.99"}
        for peer, expected in (("203.0.113.5", "203.0.113.5"), ("10.1.2.3", "192.0.2.99")):
            transport = httpx.ASGITransport(app=app, client=(peer, 5000))
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
                name = f"u{peer.replace('.', '')}"
                user = (await sign_up(c, name)).json()["user"]["id"]
                await c.post(
                    "/api/v1/auth/login", json={"login": name, "password": STRONG}, headers=forged
                )
            entries = await platform.accounts.audit_entries(user)
            assert entries[0]["action"] == "login"
            assert entries[0]["ip"] == expected


# -- row 8: /metrics ----------------------------------------------------------------


async def test_metrics_need_the_token_on_the_public_port(backend_settings: Settings) -> None:
    settings = backend_settings.replace(metrics_token=TOKEN)
    async with open_platform(settings, migrate=True, passwords=cheap_passwords()) as platform:
        for app in (create_app(platform), create_metrics_app(platform)):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
                assert (await c.get("/metrics")).status_code == 401
                wrong = await c.get("/metrics", headers={"Authorization": "Bearer nope"})
                assert wrong.status_code == 401
                scraped = await c.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
                assert scraped.status_code == 200
                assert "typogram_http_requests_total" in scraped.text


async def test_no_http_metric_is_labelled_by_a_method_the_client_chose(
    client: httpx.AsyncClient, platform: Platform
) -> None:
    for n in range(10):
        await client.request(f"BREW{n}", "/api/v1/users/nobody")
    transport = httpx.ASGITransport(app=create_metrics_app(platform))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as scraper:
        scrape = (await scraper.get("/metrics")).text
    assert "BREW" not in scrape
    assert 'method="other"' in scrape
