"""``tests.conftest.flush_cache``, which the tests of "Redis may be flushed without losing a
record" rely on: on both backends it leaves nothing the cache-side ports stored."""

from __future__ import annotations

import pytest

from tests.conftest import flush_cache
from typogram import keys
from typogram.match_queues import MatchTicket, QueuedTicket
from typogram.platform import Platform

pytestmark = pytest.mark.integration


async def test_a_flush_forgets_cache_keys_queued_tickets_and_player_markers(
    platform: Platform,
) -> None:
    ticket = MatchTicket("t1", "ada", 1500.0, "easy", "en", 1_000)
    queues = platform.match_queues
    assert await queues.enqueue(QueuedTicket(ticket, name="ada", node="n1"), 60) is None
    assert await queues.claim("bob", "r1", 60) is None
    await platform.cache.set("k", b"v", ttl=60)

    await flush_cache(platform)

    assert await platform.cache.get("k") is None
    assert await queues.queues() == []
    assert await queues.tickets(keys.race_queue("easy", "en")) == []
    assert (await queues.where("ada"), await queues.where("bob")) == (None, None)
    # Nothing left to refuse a player: both queue again.
    assert await queues.enqueue(QueuedTicket(ticket, name="ada", node="n1"), 60) is None
    assert await queues.claim("bob", "r2", 60) is None
