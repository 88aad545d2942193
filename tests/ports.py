"""Ports for the servers a test starts."""

from __future__ import annotations

import socket

_handed_out: set[int] = set()


def free_port() -> int:
    """A port free on 127.0.0.1 now, never the same one twice in this process.

    The kernel may hand the port of a probe just closed to the next probe, so
    two calls in a row (an HTTP, a WebSocket and a metrics port for one
    server) could otherwise name one port twice.
    """
    while True:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port: int = probe.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port
