"""How the REST app serves the web client (in process, no browser needed)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from rest.app import create_app
from rest.web import WebFilesMissing, web_mount
from tests.conftest import cheap_passwords, make_settings
from typogram.platform import open_platform


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(data_dir=str(tmp_path), host="0.0.0.0", ws_port=9999)
    async with open_platform(settings, migrate=True, passwords=cheap_passwords()) as platform:
        transport = httpx.ASGITransport(app=create_app(platform))
        async with httpx.AsyncClient(transport=transport, base_url="http://play.test:8000") as c:
            yield c


async def test_client_config_names_the_gateway_on_the_host_the_page_used(
    client: httpx.AsyncClient,
) -> None:
    answer = await client.get("/api/v1/client-config")
    assert answer.status_code == 200
    assert answer.json() == {"ws_url": "ws://play.test:9999/ws"}
    assert answer.headers["cache-control"] == "no-store"
    spec = (await client.get("/api/v1/openapi.json")).json()
    assert "/api/v1/client-config" in spec["paths"]


async def test_pages_are_served_with_cache_and_security_headers(
    client: httpx.AsyncClient,
) -> None:
    index = await client.get("/")
    assert index.status_code == 200
    assert "<title>Typogram</title>" in index.text
    assert index.headers["cache-control"] == "no-cache"
    assert "script-src 'self'" in index.headers["content-security-policy"]
    module = await client.get("/js/main.js")
    assert module.headers["content-type"].startswith(("text/javascript", "application/javascript"))
    again = await client.get("/js/main.js", headers={"If-None-Match": module.headers["etag"]})
    assert again.status_code == 304
    icon = await client.get("/favicon.svg")
    assert icon.headers["cache-control"] == "public, max-age=86400"


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/api/v1/nope", 404),
        ("GET", "/api", 404),
        ("POST", "/api/v1/nope", 404),
        ("GET", "/api/v1/auth/login", 405),
        ("DELETE", "/api/v1/users/me", 405),
        ("POST", "/health", 405),
    ],
)
async def test_api_paths_never_fall_through_to_the_files(
    client: httpx.AsyncClient, method: str, path: str, status: int
) -> None:
    answer = await client.request(method, path)
    assert answer.status_code == status
    assert answer.headers["content-type"] == "application/json"
    assert "error" in answer.json()


async def test_unknown_pages_get_the_not_found_page(client: httpx.AsyncClient) -> None:
    answer = await client.get("/no/such/page")
    assert answer.status_code == 404
    assert "Page not found" in answer.text


def test_a_missing_web_folder_is_named(tmp_path: Path) -> None:
    with pytest.raises(WebFilesMissing, match=str(tmp_path)):
        web_mount(tmp_path)
