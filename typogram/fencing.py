"""The ``FencedWrites`` port: writes that land only under a lease held by the writer.

A lease is a cache key holding its holder's id (a gateway node's), set with
the ``Cache`` port (``set``, ``set_if_absent``). The session store
(``gateway.sessions.store``: a session's owner lease) and the race store
(``gateway.races.store``: a race's owner lease) write through this port, so a
node that lost a lease (taken over while it was slow, or thought dead) writes
nothing and is told. It acts on the same keys as the ``Cache`` it is built
over: ``typogram.adapters.memory_scripts.MemoryFencedWrites`` and
``typogram.adapters.redis_scripts.RedisFencedWrites`` (one Lua script);
``tests/contract/test_fencing.py`` runs one suite against both.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol


class FencedWrites(Protocol):
    async def write_held(
        self,
        holder: bytes,
        writes: Mapping[str, tuple[str, bytes] | None],
        *,
        ttl: float | None = None,
        lease_ttl: float | None = None,
        release: bool = False,
    ) -> list[str]:
        """Writes fenced by leases, in one round trip: for each lease key of ``writes``
        that holds ``holder``, set its ``(key, value)`` (``None``: nothing to set; ``ttl``
        as in ``set``), then extend the lease to expire ``lease_ttl`` after this call, or
        delete it with ``release`` (else its TTL is left alone). A lease key that is
        missing or holds anything else is left as it is, and so is its key: a lease is
        never created here. The batch is one atomic step: no other command runs between
        a check and its write. Returns the lease keys not held, in the order given."""
        ...
