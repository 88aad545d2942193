"""``workers.dlq``: dead-letter headers, entries from DLQ records, replay plans, the command
text; and what ``workers.runtime`` writes to the DLQ, on the in-process event log."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any, cast

import pytest
from prometheus_client import CollectorRegistry

from tests.conftest import make_settings
from typogram.adapters.memory import InProcessEventLog, MemoryCache
from typogram.metrics import DEAD_LETTERS, KernelMetrics
from typogram.platform import Platform
from typogram.ports import Event, LogRecord
from typogram.topics import TEST_RESULTS, dead_letter
from workers import dlq
from workers.runtime import Group, GroupRunner

GROUP = "results"


def letter_record(
    event: Event | bytes, offset: int, *, attempts: int = 3, at_ms: int = 1000, partition: int = 0
) -> LogRecord:
    raw = event if isinstance(event, bytes) else event.encode()
    headers = dlq.letter_headers(
        topic=TEST_RESULTS,
        group=GROUP,
        error="IntegrityError",
        reason=f"duplicate key at {offset}",
        attempts=attempts,
        at_ms=at_ms + offset,
        event_id=None if isinstance(event, bytes) else event.id,
    )
    return LogRecord(dead_letter(TEST_RESULTS), partition, offset, at_ms, None, raw, headers)


def marker_record(event: Event, offset: int, *, partition: int = 0) -> LogRecord:
    headers = dlq.marker_headers(TEST_RESULTS, event.id, 5000 + offset)
    return LogRecord(dead_letter(TEST_RESULTS), partition, offset, 5000, None, b"", headers)


def ev(n: int, key: str | None = "u1") -> Event:
    return Event("result.accepted", {"n": n}, key=key, id=f"e{n}")


def test_describe_keeps_the_class_and_cuts_the_message() -> None:
    assert dlq.describe(KeyError("wpm")) == ("KeyError", "'wpm'")
    assert dlq.describe(TimeoutError()) == ("TimeoutError", "TimeoutError()")
    error, reason = dlq.describe(ValueError("x" * 2000))
    assert error == "ValueError" and len(reason) == dlq.REASON_MAX and reason.endswith("…")


def test_records_of_one_event_share_its_key_else_its_id() -> None:
    assert dlq.partition_key(ev(1, key="user-7")) == "user-7"
    assert dlq.partition_key(ev(1, key=None)) == "e1"


def test_source_topic_accepts_both_spellings_and_refuses_others() -> None:
    assert dlq.source_topic("test-results") == "test-results"
    assert dlq.source_topic("test-results.dlq") == "test-results"
    for bad in ("nope", "test-results.dlq.dlq", ""):
        with pytest.raises(dlq.UnknownTopic, match="unknown topic"):
            dlq.source_topic(bad)


def test_an_entry_counts_every_dead_letter_and_replay_of_its_event() -> None:
    one, two = ev(1), ev(2)
    records = [
        letter_record(one, 0),
        letter_record(two, 1, attempts=6),
        marker_record(one, 2),
        letter_record(one, 3),  # failed again after the replay
        marker_record(two, 4),
    ]
    found = {e.id: e for e in dlq.entries(TEST_RESULTS, reversed(records))}
    first, second = found["e1"], found["e2"]
    assert (first.pending, first.dead_letters, first.attempts, first.replays) == (True, 2, 6, 1)
    assert first.last.offset == 3 and first.last.reason == "duplicate key at 3"
    assert first.last.group == GROUP and first.last.error == "IntegrityError"
    assert first.last.value == one.encode() and first.type == "result.accepted"
    assert (second.pending, second.dead_letters, second.attempts, second.replays) == (
        False,
        1,
        6,
        1,
    )
    # Ordered by the newest dead letter.
    assert [e.id for e in dlq.entries(TEST_RESULTS, records)] == ["e2", "e1"]


def test_undecodable_and_header_less_records_are_entries_too() -> None:
    legacy = LogRecord(dead_letter(TEST_RESULTS), 3, 9, 777, "u1", ev(5).encode())
    found = dlq.entries(TEST_RESULTS, [letter_record(b"\x00garbage", 0, attempts=0), legacy])
    old, garbage = found  # by the time of their dead letter: 777 ms, then 1000
    assert garbage.id == "@0:0" and garbage.event is None and garbage.type == dlq.UNKNOWN
    assert old.id == "e5" and old.last.group == dlq.UNKNOWN and old.last.reason == dlq.UNKNOWN
    assert old.last.at_ms == 777 and old.last.topic == TEST_RESULTS and old.pending
    # A marker for an event no longer read back changes nothing.
    assert dlq.entries(TEST_RESULTS, [marker_record(ev(8), 0)]) == []


def test_plan_takes_pending_entries_and_refuses_loops_and_garbage() -> None:
    records = [
        letter_record(ev(1), 0),
        letter_record(ev(2), 1),
        marker_record(ev(2), 2),  # replayed, gone from the DLQ since
        letter_record(ev(3), 3),
        marker_record(ev(3), 4),
        letter_record(ev(3), 5),  # replayed once and failed again
        letter_record(b"not json", 6, attempts=0),
    ]
    found = dlq.entries(TEST_RESULTS, records)
    every = dlq.plan(found, None, limit=2)
    assert [e.id for e in every.replay] == ["e1", "e3"]
    assert [(e.id, "decodable" in why) for e, why in every.refused] == [("@0:6", True)]
    limited = dlq.plan(found, None, limit=1)
    assert [e.id for e in limited.replay] == ["e1"]
    assert [(e.id, why) for e, why in limited.refused] == [
        ("e3", "replayed 1 times already (limit 1)"),
        ("@0:6", "not a decodable event: replaying the same bytes fails again"),
    ]
    chosen = dlq.plan(found, ["e2", "e1", "e1"], limit=2)
    assert [e.id for e in chosen.replay] == ["e1"]
    assert [(e.id, "not back" in why) for e, why in chosen.refused] == [("e2", True)]
    with pytest.raises(dlq.UnknownIds) as unknown:
        dlq.plan(found, ["e1", "nope", "zip"], limit=2)
    assert unknown.value.ids == ("nope", "zip")


def test_tables_show_counts_and_each_entry() -> None:
    found = dlq.entries(TEST_RESULTS, [letter_record(ev(1), 0), letter_record(ev(1), 1)])
    counts = dlq.counts_table([(TEST_RESULTS, found), ("email-send", [])])
    assert counts[1].split() == ["test-results.dlq", "1", "1", "2"]
    assert counts[2].split() == ["email-send.dlq", "0", "0", "0"]
    table = dlq.entries_table(TEST_RESULTS, found)
    assert table[0] == "test-results.dlq:"
    assert table[2].split()[:7] == ["e1", "result.accepted", GROUP, "pending", "2", "6", "0"]
    assert table[2].endswith("  1970-01-01 00:00:01    IntegrityError: duplicate key at 1")


# -- with the in-process log ------------------------------------------------------


@pytest.fixture
async def log() -> AsyncIterator[InProcessEventLog]:
    async with InProcessEventLog(queue_size=50) as entered:
        yield entered


async def platform_on(events: InProcessEventLog, retries: int) -> Any:
    cache = MemoryCache()
    await cache.__aenter__()
    return SimpleNamespace(
        settings=make_settings(worker_max_retries=retries, worker_retry_backoff_s=0.0),
        metrics=KernelMetrics(CollectorRegistry()),
        cache=cache,
        events=events,
    )


async def test_the_runtime_writes_why_an_event_is_on_the_dlq(log: InProcessEventLog) -> None:
    async def handle(platform: Platform, topic: str, event: Event) -> None:
        raise LookupError(f"no test {event.data['n']}")

    platform = await platform_on(log, retries=2)
    runner = GroupRunner(cast(Platform, platform), Group(GROUP, (TEST_RESULTS,), handle))
    poison = ev(4, key=None)
    await runner.process(TEST_RESULTS, poison.encode())
    await runner.process(TEST_RESULTS, b"{broken")
    (record, garbage) = await log.read_back(dead_letter(TEST_RESULTS), 10)
    headers = dict(record.headers)
    assert record.value == poison.encode() and record.key == "e4"  # no event key: its id
    assert headers[dlq.KIND] == dlq.DEAD_LETTER and headers[dlq.GROUP] == b"results"
    assert headers[dlq.ERROR] == b"LookupError" and headers[dlq.REASON] == b"no test 4"
    assert headers[dlq.ATTEMPTS] == b"3" and headers[dlq.EVENT] == b"e4"
    assert headers[dlq.TOPIC] == TEST_RESULTS.encode() and int(headers[dlq.AT]) > 0
    assert garbage.value == b"{broken" and garbage.key is None
    assert dict(garbage.headers)[dlq.ERROR] == b"ValueError"
    assert dict(garbage.headers)[dlq.ATTEMPTS] == b"0"
    registry = platform.metrics.registry
    for error in ("LookupError", "ValueError"):
        labels = {"group": GROUP, "topic": TEST_RESULTS, "error": error}
        assert registry.get_sample_value(DEAD_LETTERS, labels) == 1.0


async def test_replay_republishes_then_marks_and_a_dry_run_changes_nothing(
    log: InProcessEventLog,
) -> None:
    delivered: list[bytes] = []

    async def collect(topic: str, raw: bytes) -> None:
        delivered.append(raw)

    consumer = asyncio.create_task(log.consume("g", [TEST_RESULTS], collect))
    await asyncio.sleep(0)
    poison = ev(1)
    await dlq.send(
        log,
        TEST_RESULTS,
        poison.encode(),
        event=poison,
        group=GROUP,
        exc=RuntimeError("down"),
        attempts=3,
        at_ms=1,
    )
    lines: list[str] = []
    args: dict[str, Any] = {"limit": 1, "max_records": 100, "at_ms": 2, "out": lines.append}
    code = await dlq.replay_command(log, TEST_RESULTS, None, dry_run=True, **args)
    assert code == 0 and lines[0].startswith("would replay e1 (result.accepted;")
    assert len(await log.read_back(dead_letter(TEST_RESULTS), 10)) == 1 and delivered == []

    lines.clear()
    assert await dlq.replay_command(log, TEST_RESULTS, ["e1"], dry_run=False, **args) == 0
    assert lines[-1] == "1 replayed, 0 refused"
    await asyncio.sleep(0)
    assert delivered == [poison.encode()]
    (entry,) = await dlq.read(log, TEST_RESULTS, 10)
    assert not entry.pending and entry.replays == 1

    lines.clear()
    assert await dlq.replay_command(log, TEST_RESULTS, None, dry_run=False, **args) == 0
    assert lines == ["nothing pending on test-results.dlq"]
    consumer.cancel()
    await asyncio.gather(consumer, return_exceptions=True)


async def test_list_prints_counts_then_entries(log: InProcessEventLog) -> None:
    poison = ev(1)
    await dlq.send(
        log,
        TEST_RESULTS,
        poison.encode(),
        event=poison,
        group=GROUP,
        exc=RuntimeError("down"),
        attempts=3,
        at_ms=1,
    )
    lines: list[str] = []
    assert await dlq.list_command(log, None, max_records=10, out=lines.append) == 0
    assert lines[0].startswith("DEAD-LETTER TOPIC") and len(lines) == 1 + 10 + 4
    assert any(line.split()[:2] == ["test-results.dlq", "1"] for line in lines[1:11])
    assert lines[-1].split()[:4] == ["e1", "result.accepted", GROUP, "pending"]
    lines.clear()
    await dlq.list_command(log, "email-send", max_records=10, out=lines.append)
    assert lines[-2:] == ["email-send.dlq:", lines[-1]] and "EVENT ID" in lines[-1]
