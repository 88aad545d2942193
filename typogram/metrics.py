"""Prometheus metric names and the kernel's metrics, on a registry passed in.

Each role builds its own ``CollectorRegistry`` (never the global one) so tests
and the single-process ``serve`` can hold several without clashes. Long-lived
objects expose ``statistics()``; ``StatisticsCollector`` turns those snapshots
into gauges at scrape time, so the hot paths pay nothing for metrics.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram, ProcessCollector
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

if TYPE_CHECKING:
    from typogram.db.database import Database
    from typogram.ports import EventLog

HTTP_REQUESTS = "typogram_http_requests_total"
HTTP_LATENCY = "typogram_http_request_duration_seconds"
HTTP_RATE_LIMITED = "typogram_http_rate_limited_total"
AUTH_EVENTS = "typogram_auth_events_total"
EVENTS_PROCESSED = "typogram_events_processed_total"
EVENT_HANDLER_LATENCY = "typogram_event_handler_duration_seconds"
DEAD_LETTERS = "typogram_dead_letters_total"
COMPONENT_STAT = "typogram_component"
# The process (prometheus_client's ProcessCollector under our namespace): CPU seconds,
# resident memory, open file descriptors and their limit.
PROCESS_CPU = "typogram_process_cpu_seconds_total"
PROCESS_RSS = "typogram_process_resident_memory_bytes"
PROCESS_OPEN_FDS = "typogram_process_open_fds"
PROCESS_MAX_FDS = "typogram_process_max_fds"
PROCESS_START = "typogram_process_start_time_seconds"
# How late the event loop runs a timer (``process_metrics.LoopMonitor``), and how long
# each garbage collection stops the process, by generation (``gc.callbacks``).
EVENT_LOOP_LAG = "typogram_event_loop_lag_seconds"
GC_PAUSE = "typogram_gc_pause_seconds"
# SQL: time per statement family (``select users``) and target (primary, a replica),
# pooled connections per engine (``in_use``, ``capacity``), replica lag and health.
DB_QUERY_LATENCY = "typogram_db_query_duration_seconds"
DB_POOL_CONNECTIONS = "typogram_db_pool_connections"
DB_REPLICA_LAG = "typogram_db_replica_lag_seconds"
DB_REPLICA_USABLE = "typogram_db_replica_usable"
# Messages published and not yet handled, per consumer group and topic (sampled).
CONSUMER_LAG = "typogram_consumer_lag"
PAYMENT_WEBHOOKS = "typogram_payment_webhooks_total"
# Background tasks that ended with an error, by task name (``typogram.tasks.Supervisor``).
TASK_FAILURES = "typogram_task_failures_total"

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1.0, 2.5, 5.0)
PAUSE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)


class LockFreeHistogram:
    """Observations counted per bucket in plain lists, for one event loop's thread.

    Once per room push per node; ``prometheus_client.Histogram.observe`` takes a
    lock per bucket increment and walks the buckets in Python.
    """

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(sorted(bounds))
        self.counts = [0] * (len(self.bounds) + 1)  # the last one is +Inf
        self.sum = 0.0
        untyped: Callable[[float], str] = floatToGoString
        self._labels = [untyped(bound) for bound in (*self.bounds, math.inf)]

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value

    def cumulative(self) -> list[tuple[str, float]]:
        """``(le, count)`` pairs as Prometheus exposes them, +Inf last."""
        running, out = 0.0, []
        for label, count in zip(self._labels, self.counts, strict=True):
            running += count
            out.append((label, running))
        return out


class StatisticsCollector(Collector):
    """Exposes ``statistics()`` snapshots as ``typogram_component{component,stat}`` gauges."""

    def __init__(self) -> None:
        self._sources: dict[str, Callable[[], Mapping[str, float]]] = {}

    def add(self, component: str, statistics: Callable[[], Mapping[str, float]]) -> None:
        self._sources[component] = statistics

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            COMPONENT_STAT,
            "Statistics snapshots of long-lived components (cache hit rate, pools, queues)",
            labels=["component", "stat"],
        )
        for component, statistics in self._sources.items():
            for stat, value in statistics().items():
                if isinstance(value, int | float):
                    family.add_metric([component, stat], float(value))
        yield family


class DatabaseCollector(Collector):
    """Query time per statement family, pool use and replica lag, read at scrape time."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def collect(self) -> Iterator[GaugeMetricFamily | HistogramMetricFamily]:
        db = self._db
        latency = HistogramMetricFamily(
            DB_QUERY_LATENCY,
            "SQL round-trip time by statement family (verb and first table) and target",
            labels=["family", "target"],
        )
        for (family, target), histogram in sorted(db.query_times.histograms.items()):
            latency.add_metric([family, target], histogram.cumulative(), histogram.sum)
        yield latency
        pools = GaugeMetricFamily(
            DB_POOL_CONNECTIONS,
            "Pooled database connections per engine: in_use and capacity",
            labels=["target", "state"],
        )
        for target, (in_use, capacity) in db.pool_use().items():
            pools.add_metric([target, "in_use"], in_use)
            pools.add_metric([target, "capacity"], capacity)
        yield pools
        lag = GaugeMetricFamily(
            DB_REPLICA_LAG,
            "Seconds a read replica is behind the primary (GTID positions; +Inf: unreachable)",
            labels=["replica"],
        )
        usable = GaugeMetricFamily(
            DB_REPLICA_USABLE, "1 while reads may go to the replica", labels=["replica"]
        )
        for replica in db.replica_members():
            lag.add_metric([replica.name], replica.lag_s)
            usable.add_metric([replica.name], float(db.replica_usable(replica)))
        yield lag
        yield usable


class ConsumerLagCollector(Collector):
    """``typogram_consumer_lag{group,topic}`` from the event log's sampled lag."""

    def __init__(self, events: EventLog) -> None:
        self._events = events

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            CONSUMER_LAG,
            "Messages not yet handled by this process's consumers, per group and topic",
            labels=["group", "topic"],
        )
        for (group, topic), lag in sorted(self._events.consumer_lag().items()):
            family.add_metric([group, topic], lag)
        yield family


class KernelMetrics:
    """Metrics shared by the REST layer and the workers."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.components = StatisticsCollector()
        registry.register(self.components)
        ProcessCollector(namespace="typogram", registry=registry)
        self.gc_pause = Histogram(
            GC_PAUSE,
            "Garbage-collection pauses by generation",
            ["generation"],
            buckets=PAUSE_BUCKETS,
            registry=registry,
        )
        self.loop_lag = Histogram(
            EVENT_LOOP_LAG,
            "How late the event loop ran a timer, sampled a few times a second",
            buckets=PAUSE_BUCKETS,
            registry=registry,
        )
        self.http_requests = Counter(
            HTTP_REQUESTS, "HTTP requests", ["method", "route", "status"], registry=registry
        )
        self.http_latency = Histogram(
            HTTP_LATENCY,
            "HTTP request latency",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.rate_limited = Counter(
            HTTP_RATE_LIMITED, "Requests refused by a rate limit", ["scope"], registry=registry
        )
        self.auth_events = Counter(
            AUTH_EVENTS, "Authentication outcomes", ["action", "outcome"], registry=registry
        )
        self.events_processed = Counter(
            EVENTS_PROCESSED,
            "Events handled by consumer groups",
            ["group", "topic", "outcome"],
            registry=registry,
        )
        self.dead_letters = Counter(
            DEAD_LETTERS,
            "Events a consumer group sent to <topic>.dlq, by the exception that sent them",
            ["group", "topic", "error"],
            registry=registry,
        )
        self.payment_webhooks = Counter(
            PAYMENT_WEBHOOKS,
            "Provider webhooks by outcome (accepted, duplicate, ignored, refused)",
            ["provider", "outcome"],
            registry=registry,
        )
        self.task_failures = Counter(
            TASK_FAILURES,
            "Background tasks that ended with an error, by task name",
            ["task"],
            registry=registry,
        )
        self.event_latency = Histogram(
            EVENT_HANDLER_LATENCY,
            "Event handler latency",
            ["group", "topic"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )

    def watch(self, db: Database, events: EventLog) -> None:
        """Export the database's and the event log's sampled figures from now on."""
        self.registry.register(DatabaseCollector(db))
        self.registry.register(ConsumerLagCollector(events))
