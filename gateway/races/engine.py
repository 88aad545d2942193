"""The races this node owns: apply events, tick, persist, fail over.

Authority: one node owns a race. It holds the ``RaceState`` in memory, is
the only writer of ``race:{id}:state`` and the only one calling
``rooms.race.handle`` for it. Progress, connection changes and ticks are
written behind, each changed race at most every ``store.WRITE_EVERY_S``
(200 ms), in one fenced script per tick (``gateway.races.store``: a takeover
loses at most that much of them); an acknowledged join, leave, start or
finish is written before its reply.
Ownership is a lease, ``race:{id}:owner`` = node id with a ``race_lease_s``
TTL, all of a node's leases renewed in one round trip every third of it (a
failed round is retried after ``RENEW_RETRY_S``, doubling up to the period);
the race also sits in ``race:active`` scored by lease expiry. Every state
write and renewal is fenced by the lease (``gateway.races.store``): it lands
only while the lease still names this node.

Forwarding: an event for a race owned elsewhere goes to the owner's inbox
(``gateway.races.inbox``): the same typed command (``gateway.races.messages``)
with a request id. A caller that passes ``on_error`` (``race.progress``,
connection changes) does not wait: the owner answers only a failure, which
``on_error`` reports later; such quiet commands travel in one batch per owner node every
few milliseconds. Other commands (``race.join``, ``race.finish``, ...) wait
``race_forward_timeout_s`` at most for the replies; an owner that stays
silent is waited out for up to one race lease more, until its lease on the
race lapses (the request then adopts the race) or passes to another node
(the command goes there): a crashed owner costs the racer time, not an
``unavailable`` (only an owner that is alive and holding on gets that).
The owner applies forwarded commands in memory, with no Redis write of its
own. Owners are remembered for ``OWNER_CACHE_S``: an owner changes
only by adoption, and an adopting node announces itself to every node
(``RaceInbox.announce_owner``), so a remembered owner is replaced at once; a
``moved`` answer or a timeout forgets it; the time limit only bounds the
damage of a lost notice. Commands carry the raw keystroke log; the owner
replays it (``gateway.races.finish``).

Failover: every node scans ``race:active`` each lease period; a race whose
lease has lapsed is adopted by whichever node wins ``set_if_absent`` on the
owner key: it loads ``race:{id}:state``, marks every racer still typing
disconnected (their node may be the one that died: they keep their seat
for the resume window, and their next progress or ``race.join`` brings them
back) and keeps ticking. A request for a race with no owner adopts it on
the spot. A node whose write or renewal finds its lease taken (its loop
stalled and another node adopted) drops the race at once, publishing and
writing nothing more for it; a command it was applying then goes to the new
owner. A lease found *lapsed* with nobody having written since (Redis
restarted, or the loop stalled and nobody adopted yet) is retaken by its
owner instead (``gateway.races.store``, "Retaking"): its state is the newest,
acknowledged finishes included. So that adopters do not beat a live owner to
it, a lapsed race whose last writer (``race:{id}:writer``) is another node is
adopted only once it has stayed lapsed ``retake_grace`` (a renewal period and
two polls): a scan adopts it on a later pass, a request waits for it.

Ticking: every ``race_tick_ms`` each owned race gets a ``Tick``, in slices
spread over the tick (``gateway.races.ticker``). ``StartTimer`` effects need
nothing: ticks run the clock.

Pushes: the owner delivers its races' pushes to this node's watchers itself
and sends them to the other nodes only as far as they watch, the snapshots
of a tick slice in one message per node (``gateway.races.pushes``); it learns
which nodes watch from the commands they forward (``RaceInbox.on_forwarded``)
and the matches it sends (``watched_from``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import replace
from typing import Any, Final, Protocol

from gateway.races.commands import read_only, to_event
from gateway.races.inbox import RaceInbox, Replies
from gateway.races.members import Watchers
from gateway.races.messages import (
    Answer,
    Disconnect,
    InboxMessage,
    Matched,
    Progress,
    RaceCommand,
    Reconnect,
)
from gateway.races.pushes import RacePushes
from gateway.races.store import RaceStore
from gateway.races.ticker import RaceTicker
from rooms import race
from rooms.race_state import Phase, RaceState, decode, score_wire
from typogram import anticheat, keys, race_events, topics
from typogram.codes import ErrorCode
from typogram.errors import AppError
from typogram.fencing import FencedWrites
from typogram.ports import Cache, Event, EventLog, PubSub
from typogram.settings import Settings
from typogram.tasks import Supervisor

log = logging.getLogger(__name__)

OWNER_CACHE_S: Final = 10.0  # how long a race's owner is trusted without asking Redis
OWNER_CACHE_SIZE: Final = 16_384
FAILOVER_POLL_S: Final = 0.1  # how often a silent owner's lease is looked at
RENEW_RETRY_S: Final = 0.1  # first retry of a failed lease renewal (doubling, up to the period)
BEHIND: Final = (Progress, Disconnect, Reconnect)  # written behind
OnFinished = Callable[[RaceState], Any]
OnError = Callable[[AppError], None]


class RaceOutcomes(Protocol):
    """Told what the engine decided for the node's players (``gateway.races.service.Races``)."""

    async def race_finished(self, state: RaceState) -> None:
        """A race this node owned ended: release its players."""

    async def player_matched(self, message: Matched) -> None:
        """A ``matched`` notice from the node that started a player's race."""


class RaceEngine:
    def __init__(
        self,
        settings: Settings,
        *,
        node_id: str,
        cache: Cache,
        fences: FencedWrites,
        pubsub: PubSub,
        events: EventLog,
        clock: Callable[[], float],
        outcomes: RaceOutcomes | None = None,
        local: Watchers | None = None,
        tasks: Supervisor | None = None,
    ) -> None:
        """``local``: this node's watchers, handed the pushes of the races it owns
        directly; without them every push goes through Redis. ``tasks`` runs the
        engine's background work (write-behind, publishing, deferred effects)."""
        self._s = settings
        self.node_id = node_id
        self._cache = cache
        self._pubsub = pubsub
        self._events = events
        self._clock = clock
        self._limits = anticheat.limits_from(settings, whole_text=True)
        self._owned: dict[str, RaceState] = {}
        self._store = RaceStore(
            cache,
            fences=fences,
            node_id=node_id,
            state_ttl_s=settings.race_time_limit_ms / 1000 + settings.race_finished_ttl_s,
            lease_s=settings.race_lease_s,
            clock=clock,
            lost=self,
        )
        self._tasks = tasks if tasks is not None else Supervisor()
        self._pushes = RacePushes(pubsub, node_id=node_id, local=local, tasks=self._tasks)
        self._ticker = RaceTicker(
            tick_ms=settings.race_tick_ms,
            owned=self._owned,
            store=self._store,
            pubsub=pubsub,
            clock=clock,
            effects=self,
            pushes=self._pushes,
            tasks=self._tasks,
        )
        self._owners: dict[str, tuple[str, float]] = {}  # race -> (node, trusted until)
        self._lapsed: dict[str, float] = {}  # race -> when a scan first saw it lapsed
        self._outcomes = outcomes
        self._inbox = RaceInbox(
            pubsub,
            node_id=node_id,
            timeout_s=settings.race_forward_timeout_s,
            handler=self,
        )
        self.halted = False

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        await self._inbox.open()

    async def run(self) -> None:
        """Tick, renew leases, adopt lapsed races and serve the inbox until cancelled."""
        async with asyncio.TaskGroup() as group:
            group.create_task(self._ticker.run(), name="race-ticker")
            group.create_task(self._leases(), name="race-leases")
            group.create_task(self._inbox.run(), name="race-inbox")

    async def stop(self, *, release: bool = True) -> None:
        """Stop serving; ``release`` hands the leases back so another node adopts at once."""
        self.halted = True
        with contextlib.suppress(Exception):
            await self._inbox.close()
        await self._ticker.settle()  # a write-behind under way lands before the release
        if release:
            for race_id, state in list(self._owned.items()):
                with contextlib.suppress(Exception):
                    if await self._store.release(state):
                        await self._cache.zadd(keys.races_active(), {race_id: 0.0})
        for race_id in list(self._owned):
            self._pushes.forget(race_id)
        self._owned.clear()
        self._ticker.clear()
        await self._pushes.aclose()

    def statistics(self) -> dict[str, float]:
        return {
            "races_owned": len(self._owned),
            "race_requests_pending": len(self._inbox),
            "race_quiet_pending": self._inbox.quiet_pending,
            "races_dirty": len(self._store),
            "race_state_flushes": self._store.flushes,
            "races_lost": self._store.lost,
            "races_retaken": self._store.retaken,
            "race_pushes_published": self._pushes.published,
            "race_states_batched": self._pushes.batched,
            "race_states_kept_local": self._pushes.kept,
        }

    def owns(self, race_id: str) -> bool:
        return race_id in self._owned

    def watched_from(self, race_id: str, node: str) -> None:
        """``node`` watches ``race_id`` (call before telling it about the race)."""
        self._pushes.watched_from(race_id, node)

    # -- creating and applying ----------------------------------------------------------

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    async def create(self, state: RaceState, events: list[race.Event]) -> tuple[RaceState, Replies]:
        """Own a new race, apply its first events (joins, a start) and persist it."""
        if not await self._cache.set_if_absent(
            keys.race_owner(state.race_id), self.node_id.encode(), ttl=self._s.race_lease_s
        ):
            raise AppError(ErrorCode.CONFLICT, "race id taken")
        replies: Replies = []
        effects: list[race.Effect] = []
        now = self._now_ms()
        for event in events:
            try:
                state, more = race.handle(state, event, now)
            except race.RaceError as exc:
                raise AppError(exc.code, exc.message) from None
            effects += more
        self._own(state)
        if not await self._store.write_now(state):
            raise AppError(ErrorCode.UNAVAILABLE, "the race is changing hands; retry")
        expiry = self._clock() + self._s.race_lease_s
        await self._cache.zadd(keys.races_active(), {state.race_id: expiry})
        for effect in effects:
            await self.carry_out(state.race_id, effect, replies)
        return self._owned.get(state.race_id, state), replies

    async def apply(
        self, race_id: str, command: RaceCommand, on_error: OnError | None = None
    ) -> Replies:
        """Apply a command wherever the race is owned; raises ``AppError``.

        With ``on_error`` a command for a race owned elsewhere is sent without
        waiting (no replies); a failure there is reported to ``on_error`` later.
        """
        if self.halted:
            raise AppError(ErrorCode.UNAVAILABLE, "races are not served on this node now")
        for _ in range(3):
            if race_id in self._owned:
                replies = await self._apply_local(race_id, command)
                if replies is not None:
                    return replies
                continue  # its lease was taken meanwhile: ask its new owner
            owner = await self._owner(race_id)
            if owner is None or owner == self.node_id:
                self._owners.pop(race_id, None)
                if owner is None and await self._retaken_elsewhere(race_id):
                    continue  # its live owner took it back: ask it
                state = await self._adopt(race_id)
                if state is None:
                    raise AppError(ErrorCode.NOT_FOUND, f"no race {race_id}")
                if state.phase is Phase.FINISHED:  # answer from the stored state
                    return self._read_only(state, command)
                continue  # adopted here, or by another node meanwhile: ask it
            if on_error is not None:
                self._inbox.send_quiet(
                    owner, race_id, command, lambda answer: self._quiet(race_id, answer, on_error)
                )
                return []
            try:
                answer = await self._inbox.forward(owner, race_id, command)
            except AppError:
                self._owners.pop(race_id, None)
                if not await self._failed_over(race_id, owner):
                    raise
                continue  # the silent owner's lease lapsed: adopt the race, or ask its heir
            if answer.moved:
                self._owners.pop(race_id, None)
                await asyncio.sleep(0.05)
                continue
            if answer.error is not None:
                code, message = answer.error
                raise AppError(ErrorCode(code), message)
            return [(str(t), d) for t, d in answer.replies or []]
        raise AppError(ErrorCode.UNAVAILABLE, "the race is changing hands; retry")

    async def progress(
        self, race_id: str, user_id: str, pos: int, errors: int, on_error: OnError
    ) -> None:
        """``apply`` of a progress report (quiet: ``on_error`` hears of a refusal by
        another owner), without building a command when ``progress_now`` can take it."""
        if self.progress_ready(race_id):
            self.progress_now(race_id, user_id, pos, errors, on_error)
            return
        await self.apply(race_id, Progress(user_id, pos, errors), on_error)

    def progress_ready(self, race_id: str) -> bool:
        """Whether ``progress_now`` can take a report for ``race_id`` without waiting: the
        race is owned here and time alone does not move it now (no effects to carry
        out), or its owner elsewhere is remembered (the report joins its batch)."""
        if self.halted:
            return False
        state = self._owned.get(race_id)
        if state is not None:
            due = race.due_at(state)
            return due is None or self._now_ms() < due
        known = self._owners.get(race_id)
        return known is not None and known[1] > self._clock() and known[0] != self.node_id

    def progress_now(
        self, race_id: str, user_id: str, pos: int, errors: int, on_error: OnError
    ) -> None:
        """A progress report after ``progress_ready`` said yes: applied to the owned race
        (``AppError`` when the core refuses it) or queued for its owner's batch."""
        state = self._owned.get(race_id)
        if state is None:
            known = self._owners[race_id]
            command = Progress(user_id, pos, errors)
            self._inbox.send_quiet(
                known[0], race_id, command, lambda answer: self._quiet(race_id, answer, on_error)
            )
            return
        effects = self._progress_here(race_id, state, race.Progress(user_id, pos, errors))
        if effects:  # not expected (nothing was due): carried out behind this report
            self._tasks.start("race-effects", self._carry_out_all(race_id, effects))

    async def _carry_out_all(self, race_id: str, effects: list[race.Effect]) -> None:
        try:
            for effect in effects:
                await self.carry_out(race_id, effect, [])
        except Exception:
            log.exception("race %s: carrying out a report's effects failed", race_id)

    def _progress_here(
        self, race_id: str, state: RaceState, event: race.Progress
    ) -> list[race.Effect]:
        """Apply a progress report to an owned race (written behind); its effects."""
        try:
            new, effects = race.handle(state, event, self._now_ms())
        except race.RaceError as exc:
            raise AppError(exc.code, exc.message) from None
        if new is not state:
            self._owned[race_id] = new
            if new.seq != state.seq:
                self._store.mark(race_id)
        return effects

    async def _failed_over(self, race_id: str, owner: str) -> bool:
        """After ``owner`` did not answer: wait (up to one race lease) for its lease on
        the race to lapse or pass to another node -- a crashed owner's race is adopted
        then, so the command is served instead of answered ``unavailable``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._s.race_lease_s + FAILOVER_POLL_S
        while True:
            raw = await self._cache.get(keys.race_owner(race_id))
            if raw is None or raw.decode() != owner:
                return True
            if loop.time() >= deadline:
                return False
            await asyncio.sleep(FAILOVER_POLL_S)

    @property
    def retake_grace(self) -> float:
        """How long a lapsed race written last by another node is left to it."""
        return self._s.race_lease_s / 3 + 2 * FAILOVER_POLL_S

    async def _written_elsewhere(self, race_id: str) -> bool:
        writer = await self._cache.get(keys.race_writer(race_id))
        return writer is not None and writer != self.node_id.encode()

    async def _retaken_elsewhere(self, race_id: str) -> bool:
        """For a race found with no lease: when another node wrote it last, wait up to
        ``retake_grace`` for that node (alive after a Redis restart or a stall) to take
        it back; ``True`` if a lease came back meanwhile."""
        if not await self._written_elsewhere(race_id):
            return False
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.retake_grace
        while loop.time() < deadline:
            await asyncio.sleep(FAILOVER_POLL_S)
            if await self._cache.get(keys.race_owner(race_id)) is not None:
                return True
        return False

    async def _owner(self, race_id: str) -> str | None:
        now = self._clock()
        known = self._owners.get(race_id)
        if known is not None and known[1] > now:
            return known[0]
        raw = await self._cache.get(keys.race_owner(race_id))
        known = self._owners.get(race_id)
        if known is not None and known[1] > now:  # an owner notice came in meanwhile
            return known[0]
        if raw is None:
            return None
        if len(self._owners) > OWNER_CACHE_SIZE:  # bounded: forget them all, ask again
            self._owners.clear()
        self._owners[race_id] = (raw.decode(), now + OWNER_CACHE_S)
        return raw.decode()

    # -- the inbox's handler (``InboxHandler``) --------------------------------------

    async def matched(self, message: Matched) -> None:
        if self._outcomes is not None:
            await self._outcomes.player_matched(message)

    def forwarded(self, race_id: str, node: str) -> None:
        self._pushes.watched_from(race_id, node)

    def pushes_received(self, race_id: str, kind: str, push: bytes) -> None:
        self._pushes.received(race_id, kind, push)

    def owner_moved(self, race_id: str, node: str) -> None:
        """Another node adopted ``race_id``: forward to it from now on (if we forward at all)."""
        if race_id in self._owners:
            self._owners[race_id] = (node, self._clock() + OWNER_CACHE_S)

    def _quiet(self, race_id: str, answer: Answer, on_error: OnError) -> None:
        """A quiet command failed or found the race moved (dropped: the next one retries)."""
        if answer.moved:
            self._owners.pop(race_id, None)
        elif answer.error is not None:
            code, message = answer.error
            on_error(AppError(ErrorCode(code), message))

    async def load(self, race_id: str) -> RaceState | None:
        if race_id in self._owned:
            return self._owned[race_id]
        raw = await self._cache.get(keys.race_state(race_id))
        return decode(raw) if raw is not None else None

    async def _apply_local(self, race_id: str, command: RaceCommand) -> Replies | None:
        """Apply a command to an owned race; ``None`` when the race turned out to be owned
        elsewhere now (its lease was taken before the change was written): nothing done."""
        state = self._owned[race_id]
        now = self._now_ms()
        event = to_event(state, command, self._limits, now)  # no await before the write below
        try:
            new, effects = race.handle(state, event, now)
        except race.RaceError as exc:
            raise AppError(exc.code, exc.message) from None
        self._owned[race_id] = new
        replies: Replies = []
        if new.seq != state.seq and isinstance(command, BEHIND):
            self._store.mark(race_id)
        # An acknowledged join, leave, start or finish is durable (if the race is still ours).
        elif new.seq != state.seq and not await self._store.write_now(new):
            return None
        for effect in effects:
            await self.carry_out(race_id, effect, replies)
        return replies

    async def serve_forwarded(self, race_id: str, command: RaceCommand) -> Replies | None:
        """A command another node forwarded; ``None`` when the race is not owned here."""
        state = self._owned.get(race_id)
        if state is None:
            return None
        if type(command) is Progress:  # most of them: no event table, no replies
            event = to_event(state, command, self._limits, self._now_ms())
            assert isinstance(event, race.Progress)
            for effect in self._progress_here(race_id, state, event):
                await self.carry_out(race_id, effect, [])
            return []
        return await self._apply_local(race_id, command)

    async def send_to_node(self, node: str, message: InboxMessage) -> None:
        await self._inbox.send_to_node(node, message)

    def _read_only(self, state: RaceState, command: RaceCommand) -> Replies:
        return read_only(state, command, self._limits, self._now_ms())

    # -- effects ----------------------------------------------------------------------------

    async def carry_out(self, race_id: str, effect: race.Effect, replies: Replies) -> None:
        if race_id not in self._owned and not isinstance(effect, race.Reply):
            return  # given up meanwhile (its lease was taken): the new owner speaks for it
        match effect:
            case race.Reply(kind, data):
                replies.append((kind, data))
            case race.Broadcast(kind, data):
                await self._pushes.send(race_id, kind, data)
            case race.RecordResult(_, data):
                await self._events.publish(
                    topics.RACE_EVENTS, race_events.finish_event(race_id, data)
                )
            case race.RaceFinished():
                await self._finished(race_id, effect)
            case race.StartTimer():
                pass  # the ticker runs the clock

    async def _finished(self, race_id: str, effect: race.RaceFinished) -> None:
        state = self._owned.get(race_id)
        if state is None or not await self._store.hold(race_id):
            return  # not ours any more (``hold`` gave it up): its new owner ends it
        data = {
            "race": race_id,
            "standings": list(effect.standings),
            "tournament": effect.tournament_id,
            "custom": effect.custom,  # a custom-text race: every standing unrated
            "difficulty": state.difficulty,
            "lang": state.lang,
            "seed": state.seed,
            "started_at": state.start_at_ms,
            "ended_at": state.ended_at_ms,
            # What the races worker records: the text, each finisher's replayed score.
            "text": state.text,
            "results": {
                user_id: score_wire(r.score) for user_id, r in state.racers.items() if r.score
            },
        }
        # A stable id: a second owner finishing the same race publishes a duplicate consumers drop.
        await self._events.publish(topics.RACE_EVENTS, race_events.standings_event(race_id, data))
        if effect.tournament_id:
            event = Event(
                type=topics.TOURNAMENT_RACE,
                data=data,
                key=effect.tournament_id,
                id=f"t-{race_id}",
            )
            await self._events.publish(topics.TOURNAMENT_SCORES, event)
        final = self._owned.get(race_id, state)
        held = await self._store.release(final, ttl=self._s.race_finished_ttl_s)
        self._disown(race_id)
        if not held:
            return  # taken since ``hold``: the events above carry a stable id, so no harm
        await self._cache.zrem(keys.races_active(), race_id)
        if self._outcomes is not None:
            await self._outcomes.race_finished(state)

    # -- ownership ---------------------------------------------------------------------------

    def _own(self, state: RaceState, *, adopted: bool = False) -> None:
        self._owned[state.race_id] = state
        self._pushes.track(state.race_id, adopted=adopted)
        self._ticker.add(state.race_id)

    def given_up(self, race_id: str) -> None:
        """The store found this race's lease held by no one or by another node: drop it."""
        self._disown(race_id)
        self._owners.pop(race_id, None)

    def _disown(self, race_id: str) -> None:
        self._owned.pop(race_id, None)
        self._store.forget(race_id)
        self._ticker.discard(race_id)
        self._pushes.forget(race_id)

    async def _adopt(self, race_id: str) -> RaceState | None:
        """Take over a race with no live owner; returns its state (owned unless finished)."""
        raw = await self._cache.get(keys.race_state(race_id))
        if raw is None:
            return None
        state = decode(raw)
        if state.phase is Phase.FINISHED:
            await self._cache.zrem(keys.races_active(), race_id)
            return state
        owner = keys.race_owner(race_id)
        if not await self._cache.set_if_absent(owner, self.node_id.encode(), self._s.race_lease_s):
            current = await self._cache.get(owner)
            if current is None or current.decode() != self.node_id:
                return state
        adopted = self._orphaned(replace(state, changed=True))  # a fresh snapshot
        self._own(adopted, adopted=True)
        self._store.mark(race_id)  # flushed later if the write below fails
        if not await self._store.write_now(adopted):  # this node its writer from now on
            return state  # taken meanwhile (the store gave it up)
        await self._cache.zadd(keys.races_active(), {race_id: self._clock() + self._s.race_lease_s})
        log.info("adopted race %s at seq %d", race_id, state.seq)
        try:
            await self._inbox.announce_owner(race_id)
        except Exception:  # the others ask Redis once their remembered owner expires
            log.warning("could not announce the adoption of race %s", race_id, exc_info=True)
        return state

    def _orphaned(self, state: RaceState) -> RaceState:
        """Mark every racer still typing disconnected: its node may be the one that died."""
        now = self._now_ms()
        for user_id, racer in list(state.racers.items()):
            if racer.connected and not racer.done:
                with contextlib.suppress(race.RaceError):
                    state, _ = race.handle(state, race.Disconnect(user_id), now)
        return state

    async def _leases(self) -> None:
        """Renew every third of the lease; a failed renewal is retried after
        ``RENEW_RETRY_S``, doubling up to the period, so one failed round does not cost
        a whole period of the lease (two in a row would let it lapse)."""
        period = self._s.race_lease_s / 3
        delay = period
        while True:
            await asyncio.sleep(delay)
            try:
                await self.renew_leases()
            except Exception as exc:
                delay = min(period, RENEW_RETRY_S if delay == period else delay * 2)
                log.warning("race lease renewal failed (%s); retrying in %.2fs", exc, delay)
                continue
            delay = period
            try:
                await self.scan()
            except Exception:
                log.exception("race lease scan failed")

    async def renew_leases(self) -> None:
        """One renewal of every owned race's lease (those lapsed with this node their last
        writer are retaken; those taken are dropped)."""
        await self._store.renew(list(self._owned))

    async def scan(self) -> None:
        """Adopt the lapsed races: at once when this node wrote them last or nobody did,
        else once seen lapsed for ``retake_grace`` (their writer may take them back)."""
        now = self._clock()
        lapsed_since, self._lapsed = self._lapsed, {}
        for race_id, expiry in await self._cache.zrevrange(keys.races_active(), 0, -1):
            if expiry >= now or race_id in self._owned:
                continue
            if await self._cache.get(keys.race_owner(race_id)) is not None:
                continue
            if await self._written_elsewhere(race_id):
                since = self._lapsed[race_id] = lapsed_since.get(race_id, now)
                if now - since < self.retake_grace:
                    continue
            self._lapsed.pop(race_id, None)
            if await self._adopt(race_id) is None:
                await self._cache.zrem(keys.races_active(), race_id)
