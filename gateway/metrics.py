"""Gateway metric names and the objects that hold them, on a registry passed in."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from typogram.codes import CloseCode
from typogram.metrics import LockFreeHistogram

CONNECTIONS: Final = "typogram_gateway_connections"
SESSIONS_DETACHED: Final = "typogram_gateway_sessions_detached"
FRAMES_IN: Final = "typogram_gateway_frames_in"
FRAMES_OUT: Final = "typogram_gateway_frames_out"
SEND_QUEUE_DEPTH: Final = "typogram_gateway_send_queue_depth"
SLOW_CONSUMER_CLOSES: Final = "typogram_gateway_slow_consumer_closes"
RESUMES: Final = "typogram_gateway_resumes"
CLOSES: Final = "typogram_gateway_closes"
ERRORS: Final = "typogram_gateway_errors"
USERS_ONLINE: Final = "typogram_gateway_users_online"
ROOMS_OPEN: Final = "typogram_gateway_rooms"
ROOM_MEMBERS: Final = "typogram_gateway_room_members"
FANOUT_LATENCY: Final = "typogram_gateway_fanout_latency_seconds"
CONNECTIONS_REFUSED: Final = "typogram_gateway_connections_refused"
LOOP_LAG: Final = "typogram_gateway_loop_lag_seconds"
FANOUT_BUCKETS: Final = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)


# Close codes a metric may name: the server's own (``typogram.codes.CloseCode``) and the
# standard ones. A client may close with any code 3000-4999: those count as ``client``.
KNOWN_CLOSES: Final = frozenset({*map(int, CloseCode), 1000, 1001, 1002, 1003, 1006, 1007, 1008})


def close_label(code: int) -> str:
    """The ``code`` label of ``typogram_gateway_closes_total`` for close code ``code``."""
    return str(code) if code in KNOWN_CLOSES else "client"


class GatewayMetrics:
    """Counters are labelled by frame type; label children are cached per type."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.connections = Gauge(CONNECTIONS, "Open WebSocket connections", registry=registry)
        self.detached = Gauge(SESSIONS_DETACHED, "Sessions waiting for a resume", registry=registry)
        # Frame counts are plain dicts, exported at scrape time: a labelled
        # ``Counter`` takes a lock per increment, once per delivered frame.
        self.frames_in: dict[str, int] = {}
        self.frames_out: dict[str, int] = {}
        registry.register(_Counts(FRAMES_IN, "Frames received", self.frames_in))
        registry.register(_Counts(FRAMES_OUT, "Frames queued to clients", self.frames_out))
        # Sockets refused per connection cap, counted by ``gateway.connection.admission.Admission``.
        self.refused: dict[str, int] = {}
        registry.register(
            _Counts(CONNECTIONS_REFUSED, "Sockets refused by a connection cap", self.refused, "cap")
        )
        self.send_queue_depth = Gauge(
            SEND_QUEUE_DEPTH, "Frames waiting in send queues, all connections", registry=registry
        )
        self.slow_consumer_closes = Counter(
            SLOW_CONSUMER_CLOSES,
            "Connections closed because their send queue overflowed",
            registry=registry,
        )
        self.resumes = Counter(RESUMES, "Resume attempts", ["result"], registry=registry)
        self.closes = Counter(
            CLOSES, "Connections closed, by close code", ["code"], registry=registry
        )
        self.errors = Counter(ERRORS, "Error replies, by code", ["code"], registry=registry)
        self.users_online = Gauge(
            USERS_ONLINE, "Distinct users with a session on this node", registry=registry
        )
        self.loop_lag = Gauge(
            LOOP_LAG,
            "How late the event loop wakes, worst recent sample (chat.send admission)",
            registry=registry,
        )
        self.fanout_latency = LockFreeHistogram(FANOUT_BUCKETS)
        registry.register(
            _HistogramOf(
                FANOUT_LATENCY,
                "Seconds from a room push's publish to its arrival on this node",
                self.fanout_latency,
            )
        )
        self._registry = registry

    def bind(
        self,
        connections: Callable[[], float],
        queued: Callable[[], float],
        detached: Callable[[], float],
        users: Callable[[], float],
        rooms: Callable[[], Mapping[str, int]],
    ) -> None:
        """Gauges read the gateway's own counts at scrape time."""
        self.connections.set_function(connections)
        self.users_online.set_function(users)
        self._registry.register(_Rooms(rooms))
        self.send_queue_depth.set_function(queued)
        self.detached.set_function(detached)

    def frame_in(self, kind: str) -> None:
        counts = self.frames_in
        counts[kind] = counts.get(kind, 0) + 1


class _Counts(Collector):
    """A counter family ``{name}_total{label}`` read from a dict of counts per label value."""

    def __init__(
        self, name: str, documentation: str, counts: Mapping[str, int], label: str = "type"
    ) -> None:
        self._name, self._doc, self._counts, self._label = name, documentation, counts, label

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily(self._name, self._doc, labels=[self._label])
        for kind, count in sorted(self._counts.items()):
            family.add_metric([kind], count)
        yield family


class _HistogramOf(Collector):
    def __init__(self, name: str, documentation: str, histogram: LockFreeHistogram) -> None:
        self._name, self._doc, self._histogram = name, documentation, histogram

    def collect(self) -> Iterator[HistogramMetricFamily]:
        h = self._histogram
        yield HistogramMetricFamily(self._name, self._doc, buckets=h.cumulative(), sum_value=h.sum)


class _Rooms(Collector):
    """Rooms with members on this node and their members, summed: room names are chosen
    by clients, so no metric carries one as a label (unbounded series, a list of rooms)."""

    def __init__(self, rooms: Callable[[], Mapping[str, int]]) -> None:
        self._rooms = rooms

    def collect(self) -> Iterator[GaugeMetricFamily]:
        counts = self._rooms()
        yield GaugeMetricFamily(ROOMS_OPEN, "Rooms with members on this node", len(counts))
        yield GaugeMetricFamily(
            ROOM_MEMBERS, "Room memberships on this node, all rooms", sum(counts.values())
        )
