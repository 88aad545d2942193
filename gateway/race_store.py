"""Write-behind of the races a node owns, and their leases renewed in bulk.

State: a change marks the race dirty (``mark``); once per tick the engine
calls ``flush``, which writes the ``race:{id}:state`` of every dirty race
not written in the last ``WRITE_EVERY_S`` in ONE pipeline
(``Cache.write_batch``); the others stay dirty for a later tick. Creation,
adoption, the end of a race and a clean stop write at once (``write_now``).
Writes are serialised by one lock, so an older batch never lands after a
newer single write.

Failover contract: a node that dies loses at most the changes of its last
``WRITE_EVERY_S`` (plus one tick and one Redis round trip) -- progress and
connection changes only: progress is absolute, so the next
``race.progress`` of each racer (clients send twice a second) restores it
on the adopter, which marks every racer still typing disconnected anyway.
Without the floor a race that changes every tick was written 20 times a
second, and those writes were the owner's largest Redis cost.

Leases: ``renew`` sets every owned race's ``race:{id}:owner`` in one
pipeline and scores them all in ``race:active`` with one ``ZADD`` -- two
round trips per period whatever the number of races. The blind overwrite
is safe because a lease cannot lapse (and so cannot be adopted elsewhere)
before ``last_renewal + lease_s``; when renewals fell behind by more than
``SAFE_FRACTION`` of the lease (a stalled loop), ``renew`` first reads each
owner key and gives up the races another node has taken.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Final

from rooms.race_state import RaceState, encode
from typogram import keys
from typogram.ports import Cache

log = logging.getLogger(__name__)

SAFE_FRACTION: Final = 2 / 3  # renewals later than this share of the lease check ownership
WRITE_EVERY_S: Final = 0.2  # a dirty race is written at most this often (write-behind)


class RaceStore:
    def __init__(
        self,
        cache: Cache,
        *,
        node_id: str,
        state_ttl_s: float,
        lease_s: float,
        clock: Callable[[], float],
    ) -> None:
        self._cache = cache
        self._node = node_id.encode()
        self._state_ttl = state_ttl_s
        self._lease = lease_s
        self._clock = clock
        self._dirty: set[str] = set()
        self._written: dict[str, int] = {}  # race -> seq last written
        self._written_at: dict[str, float] = {}  # race -> clock() of that write
        self._lock = asyncio.Lock()
        self._renewed_at: float | None = None
        self.flushes = 0

    def __len__(self) -> int:
        """Races changed since the last flush."""
        return len(self._dirty)

    def mark(self, race_id: str) -> None:
        self._dirty.add(race_id)

    def forget(self, race_id: str) -> None:
        self._dirty.discard(race_id)
        self._written.pop(race_id, None)
        self._written_at.pop(race_id, None)

    async def flush(self, owned: Mapping[str, RaceState]) -> int:
        """Write the dirty owned races not written in the last ``WRITE_EVERY_S`` in one
        pipeline; returns how many were written."""
        if not self._dirty:
            return 0
        now = self._clock()
        last = self._written_at
        dirty = {r for r in self._dirty if now - last.get(r, -WRITE_EVERY_S) >= WRITE_EVERY_S}
        self._dirty -= dirty
        values: dict[str, bytes] = {}
        seqs: dict[str, int] = {}
        for race_id in dirty:
            state = owned.get(race_id)
            if state is not None and self._written.get(race_id) != state.seq:
                values[keys.race_state(race_id)] = encode(state)
                seqs[race_id] = state.seq
        if not values:
            return 0
        async with self._lock:
            for race_id, seq in list(seqs.items()):  # newer written while this one waited
                if self._written.get(race_id, -1) >= seq:
                    del values[keys.race_state(race_id)], seqs[race_id]
            if not values:
                return 0
            try:
                await self._cache.write_batch({}, values, ttl=self._state_ttl)
            except Exception:
                self._dirty |= seqs.keys()  # try again next tick
                raise
            self._written.update(seqs)
            last.update(dict.fromkeys(seqs, now))
        self.flushes += 1
        return len(values)

    async def write_now(self, state: RaceState, ttl: float | None = None) -> None:
        """Write one race at once (creation, adoption, its end, a clean stop)."""
        async with self._lock:
            if ttl is None and self._written.get(state.race_id, -1) >= state.seq:
                return  # a newer state went out while this one waited
            life = ttl or self._state_ttl
            await self._cache.set(keys.race_state(state.race_id), encode(state), ttl=life)
            self._written[state.race_id] = state.seq
            self._written_at[state.race_id] = self._clock()
        self._dirty.discard(state.race_id)

    async def renew(self, owned: Iterable[str]) -> list[str]:
        """Extend the leases of ``owned``; returns the races found taken by another node."""
        races = list(owned)
        started = self._clock()
        lost: list[str] = []
        last = self._renewed_at
        behind = last is None or started - last > self._lease * SAFE_FRACTION
        if behind and races:
            for race_id in races:
                current = await self._cache.get(keys.race_owner(race_id))
                if current is not None and current != self._node:
                    log.warning("lost race %s to node %s", race_id, current.decode())
                    lost.append(race_id)
            gone = set(lost)
            races = [r for r in races if r not in gone]
        if races:
            owners = {keys.race_owner(r): self._node for r in races}
            await self._cache.write_batch({}, owners, ttl=self._lease)
            expiry = started + self._lease
            await self._cache.zadd(keys.races_active(), dict.fromkeys(races, expiry))
        self._renewed_at = started
        return lost
