"""Gateway metric names and the objects that hold them, on a registry passed in."""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge

CONNECTIONS: Final = "typogram_gateway_connections"
SESSIONS_DETACHED: Final = "typogram_gateway_sessions_detached"
FRAMES_IN: Final = "typogram_gateway_frames_in"
FRAMES_OUT: Final = "typogram_gateway_frames_out"
SEND_QUEUE_DEPTH: Final = "typogram_gateway_send_queue_depth"
SLOW_CONSUMER_CLOSES: Final = "typogram_gateway_slow_consumer_closes"
RESUMES: Final = "typogram_gateway_resumes"
CLOSES: Final = "typogram_gateway_closes"
ERRORS: Final = "typogram_gateway_errors"


class GatewayMetrics:
    """Counters are labelled by frame type; label children are cached per type."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.connections = Gauge(CONNECTIONS, "Open WebSocket connections", registry=registry)
        self.detached = Gauge(SESSIONS_DETACHED, "Sessions waiting for a resume", registry=registry)
        self.frames_in = Counter(FRAMES_IN, "Frames received", ["type"], registry=registry)
        self.frames_out = Counter(
            FRAMES_OUT, "Frames queued to clients", ["type"], registry=registry
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
        self._in: dict[str, Counter] = {}
        self._out: dict[str, Counter] = {}

    def bind(
        self,
        connections: Callable[[], float],
        queued: Callable[[], float],
        detached: Callable[[], float],
    ) -> None:
        """Gauges read the gateway's own counts at scrape time."""
        self.connections.set_function(connections)
        self.send_queue_depth.set_function(queued)
        self.detached.set_function(detached)

    def frame_in(self, kind: str) -> None:
        child = self._in.get(kind)
        if child is None:
            child = self._in[kind] = self.frames_in.labels(kind)
        child.inc()

    def frame_out(self, kind: str) -> None:
        child = self._out.get(kind)
        if child is None:
            child = self._out[kind] = self.frames_out.labels(kind)
        child.inc()
