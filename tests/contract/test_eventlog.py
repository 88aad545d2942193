"""One contract for the ``EventLog`` port: in-process dispatch and a real Kafka (tansu).

Kafka consumer groups take about a second to form, so these tests use few
groups and short group timeouts. Delivery is at-least-once: assertions allow
a replayed event where the contract allows one.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable, Sequence

import pytest

from typogram import topics
from typogram.adapters.kafka import ConsumerTuning, KafkaEventLog
from typogram.adapters.memory import InProcessEventLog
from typogram.errors import BackendUnavailable
from typogram.ports import Event, EventLog

WAIT_S = 15.0  # a Kafka group join plus a dead member's eviction fits well inside
LogFactory = Callable[[], EventLog]
# Short group timeouts: tansu numbers a group's first generation 0 and aiokafka
# sends LeaveGroup only from generation 1 on, so a stopped first member lingers
# until its session times out and the next consumer of the group waits for that.
FAST_GROUPS = ConsumerTuning(
    session_timeout_ms=1_000,
    heartbeat_interval_ms=100,
    rebalance_timeout_ms=1_000,
    poll_timeout_ms=100,
)


@pytest.fixture(params=["memory", pytest.param("kafka", marks=pytest.mark.integration)])
def make_log(request: pytest.FixtureRequest, unique_topic_prefix: str) -> LogFactory:
    if request.param == "memory":
        return lambda: InProcessEventLog(queue_size=100)
    bootstrap = request.getfixturevalue("kafka_bootstrap")
    return lambda: KafkaEventLog(bootstrap, topic_prefix=unique_topic_prefix, tuning=FAST_GROUPS)


@pytest.fixture
async def event_log(make_log: LogFactory) -> AsyncIterator[EventLog]:
    async with make_log() as entered:
        yield entered


class Consumer:
    """Runs ``consume`` in a task and collects decoded events for the test to wait on."""

    def __init__(self, log: EventLog, group: str, topic_list: Sequence[str]) -> None:
        self.events: list[tuple[str, Event]] = []
        self.fail_on: set[str] = set()  # event ids whose handler raises once
        self._changed = asyncio.Event()
        self._task = asyncio.create_task(log.consume(group, topic_list, self._handle))

    async def _handle(self, topic: str, value: bytes) -> None:
        event = Event.decode(value)
        if event.id in self.fail_on:
            self.fail_on.discard(event.id)
            raise LookupError(f"handler failed on {event.id}")
        self.events.append((topic, event))
        self._changed.set()

    @classmethod
    async def start(cls, log: EventLog, group: str, topic_list: Sequence[str]) -> Consumer:
        consumer = cls(log, group, topic_list)
        # One loop turn lets ``consume`` register its group: the in-process log
        # only keeps events for groups it knows (Kafka keeps them anyway).
        await asyncio.sleep(0)
        return consumer

    def ids(self) -> list[str]:
        return [event.id for _, event in self.events]

    async def wait_for(self, event_id: str) -> None:
        async def wait() -> None:
            while event_id not in self.ids():
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(wait(), WAIT_S)

    async def finished(self) -> BaseException | None:
        """Wait for ``consume`` to end on its own; what it raised."""
        await asyncio.wait_for(asyncio.wait([self._task]), WAIT_S)
        return self._task.exception()

    async def stop(self) -> None:
        self._task.cancel()
        await asyncio.wait([self._task])


async def test_publish_then_consume_round_trip(event_log: EventLog) -> None:
    consumer = await Consumer.start(event_log, "scores", [topics.TEST_RESULTS])
    sent = Event("test.completed", {"wpm": 87.5, "user_id": "u1"}, key="u1")
    await event_log.publish(topics.TEST_RESULTS, sent)
    await consumer.wait_for(sent.id)
    assert consumer.events == [(topics.TEST_RESULTS, sent)]
    await consumer.stop()
    stats = event_log.statistics()
    assert stats["published"] == 1 and stats["consumed"] == 1
    await event_log.ping()


async def test_events_of_one_key_stay_in_order(event_log: EventLog) -> None:
    consumer = await Consumer.start(
        event_log, "analytics", [topics.RACE_EVENTS, topics.CHAT_MESSAGES]
    )
    sent = [Event("race.progress", {"n": n}, key=f"race-{n % 3}") for n in range(30)]
    for event in sent:
        await event_log.publish(topics.RACE_EVENTS, event)
    chat = Event("chat.message", {"text": "gg"}, key="room-1")
    await event_log.publish_raw(topics.CHAT_MESSAGES, chat.encode(), key=chat.key)
    for event in (*sent, chat):
        await consumer.wait_for(event.id)
    await consumer.stop()
    for key in ("race-0", "race-1", "race-2"):
        got = [e.data["n"] for t, e in consumer.events if e.key == key]
        # At least once: a rebalance (a member evicted on a busy machine) replays
        # from the last commit, so an event may come again, after its
        # predecessors; first deliveries keep the publishing order.
        expected = [e.data["n"] for e in sent if e.key == key]
        assert list(dict.fromkeys(got)) == expected
        # and every step forward is to the very next event of the key (no skip, no swap).
        at = {n: i for i, n in enumerate(expected)}
        forward = [(at[a], at[b]) for a, b in itertools.pairwise(got) if at[b] > at[a]]
        assert all(b == a + 1 for a, b in forward), got
    assert (topics.CHAT_MESSAGES, chat) in consumer.events


async def test_a_group_resumes_after_its_last_commit(event_log: EventLog) -> None:
    first_event, marker = Event("a", {}, key="k"), Event("marker", {}, key="k")
    first = await Consumer.start(event_log, "mailer", [topics.EMAIL_SEND])
    await event_log.publish(topics.EMAIL_SEND, first_event)
    await event_log.publish(topics.EMAIL_SEND, marker)
    # The marker arrives in a poll after the first event's commit, or in the same batch.
    await first.wait_for(marker.id)
    await first.stop()

    later = Event("b", {}, key="k")
    await event_log.publish(topics.EMAIL_SEND, later)
    second = await Consumer.start(event_log, "mailer", [topics.EMAIL_SEND])
    await second.wait_for(later.id)
    await second.stop()
    assert first_event.id not in second.ids()  # committed, so not replayed

    # Another group reads the topic from its start, independently.
    other = await Consumer.start(event_log, "archiver", [topics.EMAIL_SEND])
    if isinstance(event_log, InProcessEventLog):
        await event_log.publish(topics.EMAIL_SEND, later)  # it keeps no history
    await other.wait_for(later.id)
    await other.stop()


async def test_a_failed_event_is_not_committed(event_log: EventLog) -> None:
    poison, after = Event("p", {}, key="u"), Event("q", {}, key="u")
    first = await Consumer.start(event_log, "achievements", [topics.ACHIEVEMENT_EVENTS])
    first.fail_on.add(poison.id)
    await event_log.publish(topics.ACHIEVEMENT_EVENTS, poison)
    await event_log.publish(topics.ACHIEVEMENT_EVENTS, after)
    assert isinstance(await first.finished(), LookupError)  # the error propagates
    assert first.events == []

    second = await Consumer.start(event_log, "achievements", [topics.ACHIEVEMENT_EVENTS])
    await second.wait_for(after.id)
    await second.stop()
    assert second.ids()[:2] == [poison.id, after.id]  # replayed, still in order


async def ignore(topic: str, value: bytes) -> None:
    del topic, value


async def test_use_after_close_raises(make_log: LogFactory) -> None:
    log = make_log()
    with pytest.raises(RuntimeError):
        await log.publish(topics.TEST_RESULTS, Event("x", {}))  # not entered yet
    async with log:
        running = await Consumer.start(log, "closing", [topics.TEST_RESULTS])
        await log.publish(topics.TEST_RESULTS, Event("x", {}))
    with pytest.raises(RuntimeError):
        await log.publish(topics.TEST_RESULTS, Event("x", {}))
    with pytest.raises(RuntimeError):
        await log.consume("g", [topics.TEST_RESULTS], ignore)
    assert isinstance(await running.finished(), RuntimeError)  # noticed the close


# -- adapter-specific -----------------------------------------------------------


async def test_in_process_publish_waits_when_a_group_is_full() -> None:
    async with InProcessEventLog(queue_size=2) as log:
        consumer = await Consumer.start(log, "slow", [topics.TEST_RESULTS])
        await consumer.stop()  # registered, but nobody takes events now
        await log.publish(topics.TEST_RESULTS, Event("1", {}))
        await log.publish(topics.TEST_RESULTS, Event("2", {}))
        blocked = asyncio.create_task(log.publish(topics.TEST_RESULTS, Event("3", {})))
        await asyncio.sleep(0.01)
        assert not blocked.done()  # back-pressure, not an unbounded queue
        resumed = await Consumer.start(log, "slow", [topics.TEST_RESULTS])
        await asyncio.wait_for(blocked, WAIT_S)
        await resumed.stop()
        await log.publish(topics.KEYSTROKE_ANALYTICS, Event("nobody listens", {}))
        assert log.statistics()["dropped"] == 1


async def test_in_process_keys_go_side_by_side_and_a_failure_replays_the_rest() -> None:
    """Each key's events in order, the keys concurrently (a batching handler gets them
    together); on a failure what was not committed comes back first, in order."""
    async with InProcessEventLog() as log:
        running: set[str] = set()
        most = 0
        handled: list[str] = []
        poison = Event("p", {}, key="b")

        async def handle(topic: str, value: bytes) -> None:
            nonlocal most
            event = Event.decode(value)
            running.add(str(event.key))
            most = max(most, len(running))
            await asyncio.sleep(0.01)
            running.discard(str(event.key))
            if event.id == poison.id:
                raise LookupError("poison")
            handled.append(event.id)

        first = asyncio.create_task(log.consume("side", [topics.TEST_RESULTS], handle))
        await asyncio.sleep(0)
        first.cancel()  # registered; the events below queue up meanwhile
        await asyncio.wait([first])
        sent = [Event("e", {"n": n}, key="abc"[n % 3]) for n in range(9)]
        sent.insert(5, poison)  # b's third event: b's later ones wait behind it
        for event in sent:
            await log.publish(topics.TEST_RESULTS, event)
        with pytest.raises(LookupError):
            await asyncio.wait_for(log.consume("side", [topics.TEST_RESULTS], handle), WAIT_S)
        assert most == 3  # the three keys at once
        for key in "abc":
            ids = [e.id for e in sent if e.key == key]
            assert [i for i in handled if i in ids] == ids[: len([i for i in handled if i in ids])]
        b_ids = [e.id for e in sent if e.key == "b"]
        assert [i for i in handled if i in b_ids] == b_ids[:2]  # stopped at the poison
        rest = [e.id for e in sent if e.id not in handled]
        assert poison.id in rest and b_ids[-1] in rest
        replayed: list[str] = []

        async def collect(topic: str, value: bytes) -> None:
            replayed.append(Event.decode(value).id)

        again = asyncio.create_task(log.consume("side", [topics.TEST_RESULTS], collect))
        await asyncio.sleep(0.05)
        again.cancel()
        await asyncio.wait([again])
        assert sorted(replayed) == sorted(rest) and set(rest) & set(handled) == set()
        for key in "abc":  # still each key in publication order
            ids = [e.id for e in sent if e.key == key and e.id in rest]
            assert [i for i in replayed if i in ids] == ids


@pytest.mark.integration
async def test_kafka_creates_topics_and_dead_letter_twins(
    kafka_bootstrap: str, unique_topic_prefix: str
) -> None:
    from aiokafka import AIOKafkaProducer

    async with KafkaEventLog(kafka_bootstrap, topic_prefix=unique_topic_prefix):
        pass
    async with KafkaEventLog(kafka_bootstrap, topic_prefix=unique_topic_prefix):
        pass  # a second start finds them existing, which is fine
    probe = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await probe.start()
    try:
        for topic, partitions in topics.PARTITIONS.items():
            for name in (topic, topics.dead_letter(topic)):
                assert len(await probe.partitions_for(unique_topic_prefix + name)) == partitions
    finally:
        await probe.stop()


async def test_kafka_unreachable_is_one_clear_error() -> None:
    log = KafkaEventLog("127.0.0.1:1", connect_timeout_s=1)
    with pytest.raises(BackendUnavailable) as caught:
        await log.__aenter__()
    assert "Kafka" in str(caught.value) and "127.0.0.1:1" in str(caught.value)
    with pytest.raises(ValueError):
        KafkaEventLog("127.0.0.1:9092", topic_prefix="bad:prefix")
