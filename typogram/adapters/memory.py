"""Embedded adapters: cache, pub/sub, event log and match queues inside one process.

``typogram serve`` and the unit tests run on these. They keep the contracts
of ``typogram.ports`` with Redis and Kafka semantics (``tests/contract``
runs one suite against both), and every structure is bounded: the cache by
``max_keys``, each event-log consumer group by ``queue_size``.

They are not thread-safe: call them from the event loop that entered them.
"""

from typogram.adapters.memory_cache import DEFAULT_MAX_KEYS as DEFAULT_MAX_KEYS
from typogram.adapters.memory_cache import MemoryCache as MemoryCache
from typogram.adapters.memory_events import InProcessEventLog as InProcessEventLog
from typogram.adapters.memory_pubsub import MemoryPubSub as MemoryPubSub
from typogram.adapters.memory_queues import MemoryMatchQueues as MemoryMatchQueues

__all__ = ["InProcessEventLog", "MemoryCache", "MemoryMatchQueues", "MemoryPubSub"]
