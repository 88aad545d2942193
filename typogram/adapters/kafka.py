"""The distributed event log: ``KafkaEventLog`` on aiokafka.

Every topic name (and consumer group id) gets the deployment's
``kafka_topic_prefix`` on the wire; handlers see the bare topic name.
Delivery is at-least-once: offsets are committed only after the handler
returned, so a consumer that crashes or is cancelled replays what it had not
committed. Handlers must be idempotent (``keys.event_done`` helps).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Final, Self

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import (
    CommitFailedError,
    IllegalStateError,
    KafkaConnectionError,
    KafkaError,
    TopicAlreadyExistsError,
    for_code,
)
from aiokafka.structs import ConsumerRecord

from typogram import topics as topic_names
from typogram.errors import BackendUnavailable
from typogram.ports import Event, Header, LogRecord
from typogram.settings import Settings

log = logging.getLogger(__name__)

# Kafka accepts these characters in topic names; a bad prefix fails at start-up.
_TOPIC_CHARS: Final = re.compile(r"[A-Za-z0-9._-]*")
CLIENT_ID: Final = "typogram"
# Bytes of records per partition batch. aiokafka's default (16 KiB) holds about three
# ``result.accepted`` events (~5.6 KB each, with the keystroke log); with one batch in
# flight per partition that capped a REST process at ~20 results per broker round
# trip and timed out publishes when the machine was busy. Well under the broker's
# default message.max.bytes (1 MB).
PRODUCER_BATCH_BYTES: Final = 256 * 1024
READ_BACK_PATIENCE: Final = 6  # connect timeouts one ``read_back`` may take in all
LAG_SAMPLE_S: Final = 1.0  # how often a consumer works out its lag (between two polls)


@dataclass(frozen=True, slots=True)
class ConsumerTuning:
    """Consumer-group timing. Defaults suit production; tests shorten them.

    ``session_timeout_ms`` also bounds how long a new member waits for a dead
    (or un-left) one to be evicted before the group rebalances. On tansu a
    group's first generation is 0, for which aiokafka sends no LeaveGroup, so
    a stopped first member is only evicted by this timeout.
    """

    session_timeout_ms: int = 10_000
    heartbeat_interval_ms: int = 3_000
    rebalance_timeout_ms: int | None = None  # aiokafka's default: session timeout
    max_poll_records: int = 500  # the most records handled between two commits
    poll_timeout_ms: int = 500  # how soon a closed log is noticed by ``consume``
    # How long the broker may hold a fetch that found nothing new. A broker that does
    # not answer as soon as data arrives (tansu) adds up to this to every hop of a
    # pipeline (result → board is two), so it is short; idle, it costs ~20 fetches/s.
    fetch_max_wait_ms: int = 50
    # How long stopping a consumer may take. Leaving the group waits for the
    # coordination task, which can sit in a JoinGroup the broker holds while it
    # waits out an un-left member (tansu: up to the session timeout, more than once).
    stop_timeout_s: float = 10.0


class KafkaEventLog:
    """The ``EventLog`` port on Kafka (or any Kafka-protocol broker).

    On enter it creates the topics of ``typogram.topics`` and their ``.dlq``
    twins (when ``create_topics``; existing ones are left alone), then starts
    one producer with ``acks=all``, idempotent when the broker allows it
    (``idempotence=None`` tries, then falls back with a warning). Each
    ``consume`` call owns its own consumer; cancel those before exiting.
    """

    def __init__(
        self,
        bootstrap: str,
        *,
        topic_prefix: str = "",
        create_topics: bool = True,
        replication_factor: int = 1,
        connect_timeout_s: float = 5.0,
        # No linger: aiokafka still batches what queues while a request is in flight,
        # and on tansu linger 0 measured faster and no more CPU per message than 5 ms
        # (1.3 vs 7 ms p50 for 32 concurrent sends; a pipeline hop waits for each).
        linger_ms: int = 0,
        idempotence: bool | None = None,
        tuning: ConsumerTuning | None = None,
    ) -> None:
        if not bootstrap:
            raise ValueError("Kafka bootstrap servers are required, e.g. 127.0.0.1:9092")
        if not _TOPIC_CHARS.fullmatch(topic_prefix):
            raise ValueError(f"topic prefix {topic_prefix!r} has characters Kafka refuses")
        self._bootstrap = bootstrap
        self._prefix = topic_prefix
        self._create_topics = create_topics
        self._replication_factor = replication_factor
        self._timeout_s = connect_timeout_s
        self._linger_ms = linger_ms
        self._idempotence = idempotence
        self._tuning = tuning or ConsumerTuning()
        self._producer: AIOKafkaProducer | None = None
        self._closed = False
        self._idempotent = False
        self._published: dict[str, int] = defaultdict(int)
        self._consumed = self._consumers = self._commit_failures = 0
        # Sampled lag of each running ``consume`` call: (group, topic) → messages.
        self._lags: dict[int, dict[tuple[str, str], int]] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        return cls(
            settings.kafka_bootstrap,
            topic_prefix=settings.kafka_topic_prefix,
            create_topics=settings.kafka_create_topics,
            replication_factor=settings.kafka_replication_factor,
            connect_timeout_s=settings.backend_connect_timeout_s,
        )

    # -- lifecycle ------------------------------------------------------------

    async def __aenter__(self) -> Self:
        if self._producer is not None or self._closed:
            raise RuntimeError("KafkaEventLog can be entered once")
        try:
            if self._create_topics:
                await self._ensure_topics()
            self._producer = await self._start_producer()
        except (KafkaError, OSError) as exc:  # TimeoutError is an OSError
            self._closed = True
            raise BackendUnavailable("Kafka", self._bootstrap, _reason(exc)) from exc
        return self

    async def __aexit__(self, *exc: object) -> None:
        """Flush and stop the producer; running ``consume`` calls raise at their next poll."""
        self._closed = True
        if self._producer is not None:
            await self._producer.stop()

    def _check(self) -> AIOKafkaProducer:
        if self._closed or self._producer is None:
            what = "closed" if self._closed else "not entered yet"
            raise RuntimeError(f"KafkaEventLog is {what}")
        return self._producer

    async def _ensure_topics(self) -> None:
        wanted = [
            NewTopic(self._prefix + name, partitions, self._replication_factor)
            for topic, partitions in topic_names.PARTITIONS.items()
            for name in (topic, topic_names.dead_letter(topic))
        ]
        admin = AIOKafkaAdminClient(
            bootstrap_servers=self._bootstrap,
            client_id=CLIENT_ID,
            request_timeout_ms=int(self._timeout_s * 1000),
        )
        try:
            await asyncio.wait_for(admin.start(), self._timeout_s)
            response = await admin.create_topics(wanted, timeout_ms=int(self._timeout_s * 1000))
        finally:
            await admin.close()
        for topic, code, *_ in response.topic_errors:
            error = for_code(code)
            if code and error is not TopicAlreadyExistsError:
                raise error(f"cannot create topic {topic}")

    async def _start_producer(self) -> AIOKafkaProducer:
        attempts = [True, False] if self._idempotence is None else [self._idempotence]
        for idempotent in attempts:
            producer = AIOKafkaProducer(
                bootstrap_servers=self._bootstrap,
                client_id=CLIENT_ID,
                acks="all",
                enable_idempotence=idempotent,
                linger_ms=self._linger_ms,
                max_batch_size=PRODUCER_BATCH_BYTES,
                request_timeout_ms=max(int(self._timeout_s * 1000), 1000),
            )
            try:
                await asyncio.wait_for(producer.start(), self._timeout_s)
            except BaseException as exc:
                await producer.stop()  # a half-started producer still holds sockets
                if idempotent is attempts[-1] or isinstance(exc, KafkaConnectionError | OSError):
                    raise
                # Some Kafka-protocol brokers (tansu) answer InitProducerId with an error.
                log.warning("broker refused an idempotent producer (%s); continuing without", exc)
                continue
            self._idempotent = idempotent
            return producer
        raise AssertionError("unreachable: the last attempt raises or returns")

    # -- the port -------------------------------------------------------------

    async def ping(self) -> None:
        """Fetch cluster metadata; raises if no broker answers in time."""
        producer = self._check()
        metadata = await asyncio.wait_for(producer.client.fetch_all_metadata(), self._timeout_s)
        if not metadata.brokers():
            raise ConnectionError(f"Kafka at {self._bootstrap} lists no brokers")

    async def publish(self, topic: str, event: Event) -> None:
        await self.publish_raw(topic, event.encode(), key=event.key)

    async def publish_raw(
        self, topic: str, value: bytes, key: str | None = None, headers: Sequence[Header] = ()
    ) -> None:
        """Return once the broker acknowledged the write (``acks=all``); ``headers``
        become Kafka record headers."""
        producer = self._check()
        raw_key = None if key is None else key.encode()
        await producer.send_and_wait(
            self._prefix + topic, value, key=raw_key, headers=list(headers) or None
        )
        self._published[topic] += 1

    async def read_back(self, topic: str, limit: int) -> list[LogRecord]:
        """Read the newest ``limit`` records of ``topic`` with a group-less consumer.

        Each partition is read from ``limit`` records before its end offset
        (as it was when the read began) up to that end; of what was read the
        ``limit`` newest by timestamp are kept. Records published meanwhile may
        be left out. Raises ``TimeoutError`` when the read takes longer than
        ``READ_BACK_PATIENCE`` connect timeouts.
        """
        self._check()
        if limit <= 0:
            return []
        name = self._prefix + topic
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap,
            client_id=CLIENT_ID,
            group_id=None,
            enable_auto_commit=False,
            request_timeout_ms=max(int(self._timeout_s * 1000), 1000),
            fetch_max_wait_ms=self._tuning.fetch_max_wait_ms,
        )
        try:
            await asyncio.wait_for(consumer.start(), self._timeout_s)
            await asyncio.wait_for(consumer.topics(), self._timeout_s)  # fresh metadata
            numbers = consumer.partitions_for_topic(name)
            if not numbers:
                return []
            partitions = [TopicPartition(name, n) for n in sorted(numbers)]
            consumer.assign(partitions)
            starts = await consumer.beginning_offsets(partitions)
            ends = await consumer.end_offsets(partitions)
            left = {p: ends[p] for p in partitions if ends[p] > starts[p]}
            for partition in left:
                consumer.seek(partition, max(starts[partition], ends[partition] - limit))
            records: list[LogRecord] = []
            deadline = time.monotonic() + READ_BACK_PATIENCE * self._timeout_s
            while left:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"reading {topic} did not reach its end in time")
                batches = await asyncio.wait_for(
                    consumer.getmany(*left, timeout_ms=self._tuning.poll_timeout_ms),
                    self._timeout_s,
                )
                for partition, batch in batches.items():
                    records.extend(
                        _record(topic, r) for r in batch if r.offset < left.get(partition, 0)
                    )
                for partition in list(left):
                    if await consumer.position(partition) >= left[partition]:
                        del left[partition]
        finally:
            await consumer.stop()
        newest = sorted(records, key=lambda r: (r.timestamp, r.partition, r.offset))[-limit:]
        return sorted(newest, key=lambda r: (r.partition, r.offset))

    async def consume(
        self,
        group: str,
        topics: Sequence[str],
        handler: Callable[[str, bytes], Awaitable[None]],
    ) -> None:
        """Join ``group`` and hand every record of ``topics`` to ``handler``, in partition order.

        Runs until cancelled. The partitions of a polled batch are handled
        side by side (as several consumers of the group would), each in its
        own order. Offsets are committed after each polled batch has been
        handled; if ``handler`` raises, the records still running on other
        partitions are cancelled, the offsets of those it finished are
        committed and the error propagates (the failed and cancelled records
        replay on the group's next consumer). Raises ``RuntimeError`` once
        the log is closed.
        """
        self._check()
        tuning = self._tuning
        consumer = AIOKafkaConsumer(
            *(self._prefix + topic for topic in topics),
            bootstrap_servers=self._bootstrap,
            client_id=CLIENT_ID,
            group_id=self._prefix + group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=tuning.session_timeout_ms,
            heartbeat_interval_ms=tuning.heartbeat_interval_ms,
            rebalance_timeout_ms=tuning.rebalance_timeout_ms,
            max_poll_records=tuning.max_poll_records,
            fetch_max_wait_ms=tuning.fetch_max_wait_ms,
        )
        self._consumers += 1
        lag_id, sampled_at = id(consumer), 0.0
        try:
            await consumer.start()
            task = asyncio.current_task()
            while True:
                self._check()
                if task is not None and task.cancelling():
                    # Cancelled, but an inner ``wait_for`` (ours or aiokafka's) that
                    # finished at the same moment swallowed it (Python 3.11): stop here
                    # rather than poll on as a task nobody can cancel again.
                    raise asyncio.CancelledError
                batches = await consumer.getmany(timeout_ms=tuning.poll_timeout_ms)
                await self._handle(consumer, batches, handler)
                if time.monotonic() - sampled_at >= LAG_SAMPLE_S:
                    sampled_at = time.monotonic()
                    self._lags[lag_id] = await self._sample_lag(consumer, group)
        finally:
            self._consumers -= 1
            self._lags.pop(lag_id, None)
            await self._stop(consumer, group)

    async def _stop(self, consumer: AIOKafkaConsumer, group: str) -> None:
        """Stop ``consumer`` within ``stop_timeout_s``: a broker holding a group
        request must not hold up a shutdown. Past the limit, the group is left
        by its session timeout instead and the connections are closed."""
        try:
            async with asyncio.timeout(self._tuning.stop_timeout_s):
                await consumer.stop()
        except TimeoutError:
            log.warning(
                "consumer of group %s did not leave within %.0f s; closing its connections",
                group,
                self._tuning.stop_timeout_s,
            )
            # aiokafka has no public way to finish a stop that was cut short (its
            # coordination task is cancelled with it): the rest of ``stop`` here.
            coordinator, fetcher = consumer._coordinator, consumer._fetcher
            if coordinator is not None:
                await coordinator._stop_heartbeat_task()
                await coordinator._stop_commit_offsets_refresh_task()
            if fetcher is not None:
                await fetcher.close()
            await consumer._client.close()

    async def _sample_lag(
        self, consumer: AIOKafkaConsumer, group: str
    ) -> dict[tuple[str, str], int]:
        """High watermark minus position, summed per topic over this consumer's partitions."""
        lag: dict[tuple[str, str], int] = {}
        for partition in consumer.assignment():
            topic = partition.topic[len(self._prefix) :]
            behind = lag.setdefault((group, topic), 0)
            highwater = consumer.highwater(partition)
            if highwater is None:  # nothing fetched from it yet
                continue
            try:
                async with asyncio.timeout(self._timeout_s):
                    position = await consumer.position(partition)
            except (KafkaError, TimeoutError, IllegalStateError):
                continue  # revoked meanwhile, or the broker is slow: next sample
            lag[group, topic] = behind + max(0, highwater - position)
        return lag

    def consumer_lag(self) -> dict[tuple[str, str], int]:
        total: dict[tuple[str, str], int] = {}
        for lags in self._lags.values():
            for key, value in lags.items():
                total[key] = total.get(key, 0) + value
        return total

    async def _handle(
        self,
        consumer: AIOKafkaConsumer,
        batches: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]],
        handler: Callable[[str, bytes], Awaitable[None]],
    ) -> None:
        done: dict[TopicPartition, int] = {}

        async def drain(
            partition: TopicPartition, records: list[ConsumerRecord[bytes, bytes]]
        ) -> None:
            topic = partition.topic[len(self._prefix) :]
            for record in records:
                await handler(topic, record.value or b"")  # a tombstone has no value
                done[partition] = record.offset + 1
                self._consumed += 1

        try:
            # Partitions side by side, each in its own order: one partition's wait
            # on the database or an ack no longer holds up the others.
            async with asyncio.TaskGroup() as group:
                for partition, records in batches.items():
                    group.create_task(drain(partition, records))
        except Exception as exc:
            # Keep what was handled; cancellation skips this and replays the batch.
            await self._commit(consumer, done)
            if isinstance(exc, ExceptionGroup) and len(exc.exceptions) == 1:
                raise exc.exceptions[0] from exc  # the handler's own error, as before
            raise
        await self._commit(consumer, done)

    async def _commit(self, consumer: AIOKafkaConsumer, offsets: dict[TopicPartition, int]) -> None:
        if not offsets:
            return
        try:
            await consumer.commit(offsets)
        except (CommitFailedError, IllegalStateError) as exc:
            # The group rebalanced under us: the new owner replays from the last
            # commit, which at-least-once delivery allows.
            self._commit_failures += 1
            log.warning("offset commit failed after a rebalance: %s", exc)

    def statistics(self) -> dict[str, float]:
        stats: dict[str, float] = {
            "published": sum(self._published.values()),
            "consumed": self._consumed,
            "consumers": self._consumers,
            "commit_failures": self._commit_failures,
            "idempotent": int(self._idempotent),
        }
        for topic, count in self._published.items():
            stats[f"published.{topic}"] = count
        return stats


def _record(topic: str, record: ConsumerRecord[bytes, bytes]) -> LogRecord:
    return LogRecord(
        topic=topic,
        partition=record.partition,
        offset=record.offset,
        timestamp=record.timestamp,
        key=None if record.key is None else record.key.decode(errors="replace"),
        value=record.value or b"",
        headers=tuple((name, bytes(value or b"")) for name, value in record.headers),
    )


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    return str(exc) or type(exc).__name__
