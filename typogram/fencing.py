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

A lease can lapse while its holder is alive and still right: Redis restarted
(the lease's TTL ran out while it was down, and its last second of writes
may be gone with it) or the holder's loop stalled and nobody adopted
meanwhile. A *witness* tells that case apart from a takeover: a key written
with each value under the lease, naming the writer, that outlives the lease
(it expires with the value). ``retake`` brings a lapsed lease back only to
the holder its witness names: the last value under it is that holder's, so
no other node adopted and wrote since, and the holder may write its newer
state over it.
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
        witnesses: Mapping[str, str] | None = None,
    ) -> list[str]:
        """Writes fenced by leases, in one round trip: for each lease key of ``writes``
        that holds ``holder``, set its ``(key, value)`` (``None``: nothing to set; ``ttl``
        as in ``set``), then extend the lease to expire ``lease_ttl`` after this call, or
        delete it with ``release`` (else its TTL is left alone). A lease key that is
        missing or holds anything else is left as it is, and so is its key: a lease is
        never created here. The batch is one atomic step: no other command runs between
        a check and its write. With ``witnesses`` (lease key -> witness key, for every
        lease of ``writes``), each value set also sets its lease's witness to ``holder``
        with the same ``ttl``. Returns the lease keys not held, in the order given."""
        ...

    async def retake(
        self, holder: bytes, witnesses: Mapping[str, str], *, lease_ttl: float
    ) -> list[str]:
        """For each lease key of ``witnesses`` that is missing while its witness key
        holds ``holder``, create the lease holding ``holder``, expiring ``lease_ttl``
        after this call. A lease that exists (whoever holds it) or whose witness is
        missing or names another holder is left alone. One atomic step; returns the
        lease keys retaken, in the order given."""
        ...


def check_witnesses(
    writes: Mapping[str, tuple[str, bytes] | None], witnesses: Mapping[str, str] | None
) -> None:
    """``ValueError`` unless ``witnesses`` is ``None`` or names one for every lease."""
    if witnesses is not None and any(lease not in witnesses for lease in writes):
        raise ValueError("a witness is needed for every lease written")
