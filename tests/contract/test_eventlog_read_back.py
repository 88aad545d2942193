"""The ``EventLog`` contract for dead letters: record headers and ``read_back``, on the
in-process log and a real Kafka (tansu)."""

from __future__ import annotations

import asyncio

import pytest

from tests.contract.test_eventlog import WAIT_S, LogFactory, event_log, make_log
from typogram import topics
from typogram.ports import Event, EventLog

DLQ = topics.dead_letter(topics.TEST_RESULTS)
__all__ = ["event_log", "make_log"]  # the fixtures of the base contract, shared


async def test_records_read_back_with_key_value_and_headers_in_order(event_log: EventLog) -> None:
    sent = [
        (Event("result.accepted", {"n": n}, key="u1").encode(), (("why", b"n=%d" % n),))
        for n in range(3)
    ]
    for value, headers in sent:
        await event_log.publish_raw(DLQ, value, key="u1", headers=headers)
    await event_log.publish_raw(DLQ, b"\xff not an event", key=None)
    records = await event_log.read_back(DLQ, 10)
    mine = [r for r in records if r.key == "u1"]
    assert [(r.value, r.headers) for r in mine] == sent
    assert [r.offset for r in mine] == sorted(r.offset for r in mine)
    assert len({r.partition for r in mine}) == 1  # one key, one partition
    assert all(r.topic == DLQ and r.timestamp > 0 for r in records)
    (other,) = [r for r in records if r.key is None]
    assert other.value == b"\xff not an event" and other.headers == ()


async def test_read_back_keeps_the_newest_and_knows_no_missing_topic(event_log: EventLog) -> None:
    for n in range(5):
        await event_log.publish_raw(DLQ, b"%d" % n, key="same", headers=(("n", b"%d" % n),))
    assert [r.value for r in await event_log.read_back(DLQ, 2)] == [b"3", b"4"]
    assert await event_log.read_back(DLQ, 0) == []
    assert await event_log.read_back("no-such-topic.dlq", 10) == []


async def test_a_consumer_of_a_dead_letter_topic_gets_the_value_and_is_not_disturbed(
    event_log: EventLog,
) -> None:
    got: list[bytes] = []
    arrived = asyncio.Event()

    async def handler(topic: str, value: bytes) -> None:
        got.append(value)
        arrived.set()

    task = asyncio.create_task(event_log.consume("dlq-watch", [DLQ], handler))
    await asyncio.sleep(0)  # the in-process log registers the group on its first consume
    try:
        await event_log.publish_raw(DLQ, b"first", key="k", headers=(("h", b"1"),))
        await asyncio.wait_for(arrived.wait(), WAIT_S)
        assert [r.value for r in await event_log.read_back(DLQ, 10)] == [b"first"]
        arrived.clear()
        await event_log.publish_raw(DLQ, b"second", key="k")
        await asyncio.wait_for(arrived.wait(), WAIT_S)
        assert got == [b"first", b"second"]  # value only; reading back took nothing away
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_read_back_after_close_raises(make_log: LogFactory) -> None:
    log = make_log()
    with pytest.raises(RuntimeError):
        await log.read_back(DLQ, 1)
    async with log:
        pass
    with pytest.raises(RuntimeError):
        await log.read_back(DLQ, 1)
