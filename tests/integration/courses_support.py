"""Helpers for the courses and subscriptions tests: clients, users with roles, seeding."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import httpx
import pytest

from rest.app import create_app
from typogram.courses.services import editor_of
from typogram.courses.starter import COURSES, PLANS
from typogram.platform import Platform
from typogram.roles import Role
from typogram.staff import Actor, desk_of
from workers.groups import GROUPS
from workers.runtime import GroupRunner

T = TypeVar("T")
Auth = dict[str, str]


@pytest.fixture
async def client(platform: Platform) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(platform))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


@pytest.fixture
async def starter(platform: Platform) -> None:
    """The starter catalog and plans (MariaDB tables are emptied between tests)."""
    await editor_of(platform).seed(COURSES, PLANS, replace=False)


@pytest.fixture
async def course_worker(platform: Platform) -> AsyncIterator[None]:
    """The ``courses`` and ``achievements`` groups, consuming while the test runs."""
    tasks = [
        asyncio.create_task(GroupRunner(platform, GROUPS[name]).run())
        for name in ("courses", "achievements")
    ]
    await asyncio.sleep(0.1)  # the in-process log registers a group on its first consume
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def user(client: httpx.AsyncClient, name: str) -> tuple[str, Auth]:
    response = await client.post(
        "/api/v1/auth/register",
        json={"username": name, "email": f"{name}@example.com", "password": "correct horse"},
    )
    assert response.status_code == 201, response.text
    body = response.json()
    return body["user"]["id"], {"Authorization": f"Bearer {body['access_token']}"}


async def staff(client: httpx.AsyncClient, platform: Platform, name: str, role: str) -> Auth:
    """A user with ``role``, signed in again so the token carries it."""
    user_id, _ = await user(client, name)
    await desk_of(platform).set_role(Actor("test", Role.ADMIN), user_id, Role(role))
    response = await client.post(
        "/api/v1/auth/login", json={"login": name, "password": "correct horse"}
    )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def eventually(probe: Callable[[], Awaitable[T | None]], limit_s: float = 30.0) -> T:
    async def poll() -> T:
        while True:
            value = await probe()
            if value is not None:
                return value
            await asyncio.sleep(0.05)

    return await asyncio.wait_for(poll(), limit_s)


def slugs(page: dict[str, Any]) -> list[str]:
    return [course["slug"] for course in page["courses"]]
