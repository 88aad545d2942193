"""Prometheus metric names and the kernel's metrics, on a registry passed in.

Each role builds its own ``CollectorRegistry`` (never the global one) so tests
and the single-process ``serve`` can hold several without clashes. Long-lived
objects expose ``statistics()``; ``StatisticsCollector`` turns those snapshots
into gauges at scrape time, so the hot paths pay nothing for metrics.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

HTTP_REQUESTS = "typogram_http_requests_total"
HTTP_LATENCY = "typogram_http_request_duration_seconds"
HTTP_RATE_LIMITED = "typogram_http_rate_limited_total"
AUTH_EVENTS = "typogram_auth_events_total"
EVENTS_PROCESSED = "typogram_events_processed_total"
EVENT_HANDLER_LATENCY = "typogram_event_handler_duration_seconds"
DEAD_LETTERS = "typogram_dead_letters_total"
COMPONENT_STAT = "typogram_component"
PAYMENT_WEBHOOKS = "typogram_payment_webhooks_total"

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1.0, 2.5, 5.0)


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


class KernelMetrics:
    """Metrics shared by the REST layer and the workers."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.components = StatisticsCollector()
        registry.register(self.components)
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
        self.event_latency = Histogram(
            EVENT_HANDLER_LATENCY,
            "Event handler latency",
            ["group", "topic"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
