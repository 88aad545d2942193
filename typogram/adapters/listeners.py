"""Handing one pub/sub message to a channel's local listeners (both pub/sub adapters)."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from typogram.ports import Listener

log = logging.getLogger(__name__)


def deliver(listeners: Iterable[Listener], channel: str, payload: bytes) -> tuple[int, int]:
    """Call each listener; one that raises is logged and does not stop the others.

    Pass a snapshot (a tuple): a listener may (un)subscribe while we iterate.
    Returns ``(delivered, failed)`` for the adapter's statistics.
    """
    delivered = failed = 0
    for listener in listeners:
        try:
            listener(channel, payload)
        except Exception:
            failed += 1
            log.exception("pub/sub listener failed", extra={"channel": channel})
        else:
            delivered += 1
    return delivered, failed
