"""Cached insights follow the analytics worker (``rest.insights``): a document built
before a commit is never served after it, also when it was stored after it."""

from __future__ import annotations

import time

import orjson
import pytest

from rest.insights import insights_of
from tests.integration.test_pipeline_batch import KA, analysed
from typogram import keys
from typogram.platform import Platform
from typogram.ports import Event
from workers import analytics

pytestmark = pytest.mark.integration


def recent(user: str, n: int) -> Event:
    """``analysed`` as of now: insights read only the hot window."""
    event = analysed(user, n)
    event.data["created_at"] = int(time.time() * 1000) - n
    return event


async def test_a_build_that_raced_the_worker_is_rebuilt_on_the_next_read(
    platform: Platform,
) -> None:
    user = "5" * 32
    empty = await insights_of(platform, user)
    assert empty["tests"] == 0
    # A read that began before the worker's commit stores what it built after the commit
    # (the worker's invalidation came in between): stamped with the version it read.
    before = await platform.cache.get(keys.insights_version(user))
    await analytics.handle(platform, KA, recent(user, 1))
    stale = {"version": (before or b"").decode(), "insights": empty}
    await platform.cache.set(keys.insights(user), orjson.dumps(stale), ttl=3600)
    fresh = await insights_of(platform, user)
    assert fresh["tests"] == 1 and fresh["keys"]
    assert await insights_of(platform, user) == fresh  # now cached under the new version
    await platform.cache.delete(keys.insights_version(user))  # the token expired
    assert await insights_of(platform, user) == fresh  # rebuilt, the same


async def test_an_old_style_cached_document_is_rebuilt(platform: Platform) -> None:
    user = "6" * 32
    await analytics.handle(platform, KA, recent(user, 1))
    await platform.cache.set(keys.insights(user), orjson.dumps({"tests": 0}), ttl=3600)
    assert (await insights_of(platform, user))["tests"] == 1
