"""Write-behind of the races a node owns, and their leases renewed in bulk.

State: a change marks the race dirty (``mark``); once per tick the engine
calls ``flush``, which writes the ``race:{id}:state`` of every dirty race
not written in the last ``WRITE_EVERY_S`` in ONE round trip
(``FencedWrites.write_held``, fenced: below); the others stay dirty for a later
tick. Creation, adoption and acknowledged commands write at once
(``write_now``); the end of a race and a clean stop write and give the
lease back in one step (``release``).
Writes are serialised by one lock, so an older batch never lands after a
newer single write.

Failover contract: a node that dies loses at most the changes of its last
``WRITE_EVERY_S`` (plus one tick and one Redis round trip) -- progress and
connection changes only: progress is absolute, so the next
``race.progress`` of each racer (clients send twice a second) restores it
on the adopter, which marks every racer still typing disconnected anyway.
Without the floor a race that changes every tick was written 20 times a
second, and those writes were the owner's largest Redis cost.

Fencing: every write of ``race:{id}:state`` lands only while
``race:{id}:owner`` still names this node, checked in the same atomic step
(``FencedWrites.write_held``): a node whose lease lapsed (a stalled loop, Redis
failing) and was adopted elsewhere can no longer overwrite the adopter's
state. A race found not held -- taken by another node, or lapsed and not
yet adopted -- is given up: it leaves the store and ``LostRaces.given_up`` tells the
engine, which drops it without writing or publishing anything more for it.
Its last unwritten changes are lost, as on a crash (see above).

Retaking: each write also names this node in ``race:{id}:writer`` (the lease's
witness, ``FencedWrites``; it expires with the state). A lease found *missing*
while the witness still names this node lapsed with nobody writing since --
Redis restarted (taking the lease, and perhaps its last second of writes,
with it) or this node stalled and nobody adopted yet. This node's state is
then the newest there is, acknowledged finishes included: it retakes the
lease (``FencedWrites.retake``, one atomic step) and writes the race again at
the next flush instead of dropping it, which would leave it to be adopted
from an older stored state. A lease held by another node, or a witness naming
another, still means the race is given up.

Leases: ``renew`` extends every owned race's ``race:{id}:owner`` in one
fenced script (never re-creating a lease: a lapsed one may already be
adopted, or deleted by the node that finished the race) and scores the
races still held in ``race:active`` with one ``ZADD`` -- two round trips
per period whatever the number of races.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Final, Protocol

from rooms.race_state import RaceState, encode
from typogram import keys
from typogram.fencing import FencedWrites
from typogram.ports import Cache

log = logging.getLogger(__name__)

WRITE_EVERY_S: Final = 0.2  # a dirty race is written at most this often (write-behind)


class LostRaces(Protocol):
    """Told of a race given up (``gateway.races.engine.RaceEngine``)."""

    def given_up(self, race_id: str) -> None: ...


class RaceStore:
    def __init__(
        self,
        cache: Cache,
        *,
        fences: FencedWrites,
        node_id: str,
        state_ttl_s: float,
        lease_s: float,
        clock: Callable[[], float],
        lost: LostRaces | None = None,
    ) -> None:
        self._cache = cache
        self._fences = fences  # over ``cache``
        self._node = node_id.encode()
        self._state_ttl = state_ttl_s
        self._lease = lease_s
        self._clock = clock
        self._losses = lost
        self._dirty: set[str] = set()
        self._written: dict[str, int] = {}  # race -> seq last written
        self._written_at: dict[str, float] = {}  # race -> clock() of that write
        self._lock = asyncio.Lock()
        self.flushes = 0
        self.lost = 0
        self.retaken = 0

    def __len__(self) -> int:
        """Races changed since the last flush."""
        return len(self._dirty)

    def mark(self, race_id: str) -> None:
        self._dirty.add(race_id)

    def forget(self, race_id: str) -> None:
        self._dirty.discard(race_id)
        self._written.pop(race_id, None)
        self._written_at.pop(race_id, None)

    @staticmethod
    def _witnesses(races: Iterable[str]) -> dict[str, str]:
        return {keys.race_owner(r): keys.race_writer(r) for r in races}

    async def _keep(self, races: list[str]) -> list[str]:
        """Of ``races``, whose leases were found not held here, retake those that lapsed
        with this node their last writer (written again at the next flush: the state
        here is newer than the stored one) and give up the others; returns those."""
        if not races:
            return []
        witnesses = self._witnesses(races)
        retaken = set(await self._fences.retake(self._node, witnesses, lease_ttl=self._lease))
        for race_id in races:
            if keys.race_owner(race_id) in retaken:
                log.warning("race %s: its lease lapsed while held here; retaken", race_id)
                self._written.pop(race_id, None)
                self._written_at.pop(race_id, None)
                self._dirty.add(race_id)
                self.retaken += 1
        return self._lost([r for r in races if keys.race_owner(r) not in retaken])

    def _lost(self, races: list[str]) -> list[str]:
        """Give up ``races``, their leases found not held here; returns them."""
        for race_id in races:
            log.warning("race %s is no longer owned here: dropped", race_id)
            self.forget(race_id)
            self.lost += 1
            if self._losses is not None:
                self._losses.given_up(race_id)
        return races

    async def flush(self, owned: Mapping[str, RaceState]) -> int:
        """Write the dirty owned races not written in the last ``WRITE_EVERY_S`` in one
        fenced round trip; returns how many were written (races found lost are dropped)."""
        if not self._dirty:
            return 0
        now = self._clock()
        last = self._written_at
        dirty = {r for r in self._dirty if now - last.get(r, -WRITE_EVERY_S) >= WRITE_EVERY_S}
        self._dirty -= dirty
        states: dict[str, RaceState] = {}
        for race_id in dirty:
            state = owned.get(race_id)
            if state is not None and self._written.get(race_id) != state.seq:
                states[race_id] = state
        if not states:
            return 0
        async with self._lock:
            for race_id, state in list(states.items()):  # newer written while this one waited
                if self._written.get(race_id, -1) >= state.seq:
                    del states[race_id]
            if not states:
                return 0
            writes: dict[str, tuple[str, bytes] | None] = {
                keys.race_owner(r): (keys.race_state(r), encode(s)) for r, s in states.items()
            }
            witnesses = self._witnesses(states)
            try:
                lost = set(
                    await self._fences.write_held(
                        self._node, writes, ttl=self._state_ttl, witnesses=witnesses
                    )
                )
            except Exception:
                self._dirty |= states.keys()  # try again next tick
                raise
            missed = [r for r in states if keys.race_owner(r) in lost]
            for race_id, state in states.items():
                if keys.race_owner(race_id) not in lost:
                    self._written[race_id] = state.seq
                    last[race_id] = now
            await self._keep(missed)
        self.flushes += 1
        return len(states) - len(missed)

    async def write_now(self, state: RaceState) -> bool:
        """Write one race at once (creation, adoption, an acknowledged command); ``False``
        when its lease is no longer held here (the race is then given up)."""
        async with self._lock:
            if self._written.get(state.race_id, -1) >= state.seq:
                return True  # a newer state went out while this one waited
            if not await self._write(state, self._state_ttl, release=False):
                return False
        self._dirty.discard(state.race_id)
        return True

    async def release(self, state: RaceState, ttl: float | None = None) -> bool:
        """Write ``state`` (the end of a race: ``ttl``; a clean stop) and delete its lease,
        in one step; ``False`` when the lease is no longer held here (nothing written)."""
        async with self._lock:
            return await self._write(state, ttl or self._state_ttl, release=True)

    async def _write(self, state: RaceState, ttl: float, *, release: bool) -> bool:
        race_id = state.race_id
        writes: dict[str, tuple[str, bytes] | None] = {
            keys.race_owner(race_id): (keys.race_state(race_id), encode(state))
        }
        witnesses = self._witnesses([race_id])
        for attempt in range(2):
            lost = await self._fences.write_held(
                self._node, writes, ttl=ttl, release=release, witnesses=witnesses
            )
            if not lost:
                self._written[race_id] = state.seq
                self._written_at[race_id] = self._clock()
                return True
            if attempt == 0 and await self._keep([race_id]):
                return False  # given up
        self._lost([race_id])  # retaken, then lost again at once
        return False

    async def hold(self, race_id: str) -> bool:
        """Renew one race's lease if it is still held here (before publishing its end)."""
        return not await self.renew([race_id])

    async def renew(self, owned: Iterable[str]) -> list[str]:
        """Extend the leases of ``owned`` still held here; returns (and gives up) the others."""
        races = list(owned)
        if not races:
            return []
        started = self._clock()
        leases: dict[str, tuple[str, bytes] | None] = dict.fromkeys(map(keys.race_owner, races))
        taken = set(await self._fences.write_held(self._node, leases, lease_ttl=self._lease))
        lost = await self._keep([r for r in races if keys.race_owner(r) in taken])
        if held := [r for r in races if keys.race_owner(r) not in taken]:
            expiry = started + self._lease
            await self._cache.zadd(keys.races_active(), dict.fromkeys(held, expiry))
        return lost
