"""The tick loop of the races a node owns: ``Tick`` every race, flush once per tick.

Ticking: every ``race_tick_ms`` each owned race gets a ``Tick``; races are
split into ``SLICES`` fixed slices and one slice is handled every
``race_tick_ms / SLICES``, on a fixed schedule, so flushes spread over the
tick. Only races that changed produce a ``race.state``; each goes to this
node's watchers at once and, for the other nodes that watch, into the
slice's one ``publish_many`` (one message per node,
``gateway.races.pushes``), queued without waiting for Redis. The write-behind
of changed states (``RaceStore.flush``, once per tick) runs in a task of its
own. Nothing the loop waits on for Redis holds the next slice back: when it
did, one slow round trip under load (a write-behind of hundreds of states)
stopped every race's snapshots for that long. ``StartTimer`` effects need
nothing: ticks run the clock.
A race whose state is still the one its last ``Tick`` returned (nothing
changed since) is not ticked again until ``race.due_at`` says time alone
moves it (its countdown ends, a dropped racer's window closes, its time
limit), so an idle race costs an identity check per tick.

The ticker shares the engine's ``owned`` mapping (it replaces a race's state
in place after a ``Tick``) and its ``RaceStore``; the engine calls ``add`` when
it takes a race and ``discard`` when it lets one go. Effects other than
broadcasts go back to the engine through ``carry_out``.
"""

from __future__ import annotations

import asyncio
import logging
import zlib
from collections.abc import Callable
from typing import Final, Protocol

from gateway.races.inbox import Replies
from gateway.races.pushes import RacePushes
from gateway.races.store import RaceStore
from rooms import race
from rooms.race_state import RaceState
from typogram.ports import PubSub
from typogram.tasks import Supervisor

log = logging.getLogger(__name__)

SLICES: Final = 5
MAX_BACKLOG: Final = 2_000  # PUBLISHes queued unanswered before the ticker waits for Redis


class Effects(Protocol):
    """Carries out a race's broadcast effects (``gateway.races.engine.RaceEngine``)."""

    async def carry_out(self, race_id: str, effect: race.Effect, replies: Replies) -> None: ...


class RaceTicker:
    def __init__(
        self,
        *,
        tick_ms: int,
        owned: dict[str, RaceState],
        store: RaceStore,
        pubsub: PubSub,
        clock: Callable[[], float],
        effects: Effects,
        pushes: RacePushes | None = None,
        tasks: Supervisor | None = None,
    ) -> None:
        self._tick_ms = tick_ms
        self._tasks = tasks if tasks is not None else Supervisor()
        self._owned = owned
        self._store = store
        self._pushes = pushes if pushes is not None else RacePushes(pubsub, node_id="")
        self._clock = clock
        self._effects = effects
        self._slices: list[set[str]] = [set() for _ in range(SLICES)]
        self._idle: dict[str, tuple[RaceState, int | None]] = {}  # race -> (last ticked, due)
        self._wake = asyncio.Event()  # set while a race may be owned: a node with none sleeps
        self._flushing: asyncio.Task[None] | None = None

    def add(self, race_id: str) -> None:
        self._slices[zlib.crc32(race_id.encode()) % SLICES].add(race_id)
        self._wake.set()

    def discard(self, race_id: str) -> None:
        for part in self._slices:
            part.discard(race_id)
        self._idle.pop(race_id, None)

    def clear(self) -> None:
        for part in self._slices:
            part.clear()
        self._idle.clear()

    async def run(self) -> None:
        """Tick one slice every ``tick_ms / SLICES`` on a fixed schedule, so the work of a
        slice does not stretch the tick; a loop that fell more than a slice behind
        starts the schedule again from now rather than rushing to catch up."""
        step = self._tick_ms / 1000 / SLICES
        loop = asyncio.get_running_loop()
        index, due = 0, loop.time()
        while True:
            if index % SLICES == 0 and not self._owned:
                self._wake.clear()  # nothing to tick or flush until a race is added
                await self._wake.wait()
                due = loop.time()
            due += step
            late = loop.time() - due
            if late > step:
                due += late
            await asyncio.sleep(max(0.0, due - loop.time()))
            try:
                await self._tick(self._slices[index % SLICES])
                if index % SLICES == SLICES - 1:  # once per tick: every dirty race
                    self._flush_soon()
                if self._pushes.backlog > MAX_BACKLOG:
                    await self._pushes.drained()  # Redis is behind: wait for it
            except Exception:
                log.exception("race tick failed")
            index += 1

    def _flush_soon(self) -> None:
        """Write-behind in a task of its own (one at a time), so ticks go on while the
        round trip is out; a tick finding it still running leaves the races dirty
        for the next one."""
        if self._flushing is None or self._flushing.done():
            self._flushing = self._tasks.start("race-flush", self._flush())

    async def _flush(self) -> None:
        try:
            await self._store.flush(self._owned)
        except Exception:
            log.exception("race state write-behind failed")

    async def settle(self) -> None:
        """Wait for a write-behind under way and the pushes queued (a stop)."""
        flushing = self._flushing
        if flushing is not None and not flushing.done():
            await asyncio.wait([flushing])
        await self._pushes.drained()

    async def _tick(self, part: set[str]) -> None:
        if not part:
            return
        now = int(self._clock() * 1000)
        pushes: list[tuple[str, bytes]] = []
        later: list[tuple[str, race.Effect]] = []
        changed: list[str] = []
        idle = self._idle
        prepare = self._pushes.prepare
        for race_id in list(part):
            state = self._owned.get(race_id)
            if state is None:
                continue
            seen = idle.get(race_id)
            if seen is not None and seen[0] is state and (seen[1] is None or now < seen[1]):
                continue  # unchanged since its last tick and nothing due
            new, effects = race.handle(state, race.Tick(), now)
            if new.changed:  # settling moved it on: its snapshot goes out next tick
                idle.pop(race_id, None)
            else:
                idle[race_id] = (new, race.due_at(new))
            if new is state:
                continue
            self._owned[race_id] = new
            if new.seq != state.seq:
                changed.append(race_id)
            for effect in effects:
                if isinstance(effect, race.Broadcast):
                    out = prepare(race_id, effect.type, effect.data)  # local watchers: now
                    if out is not None:
                        pushes.append(out)
                else:
                    later.append((race_id, effect))
        for race_id in changed:
            self._store.mark(race_id)
        self._pushes.publish_soon(pushes)  # and the snapshots queued per watching node
        for race_id, effect in later:
            await self._effects.carry_out(race_id, effect, [])
