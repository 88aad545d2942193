"""The races this node owns: apply events, tick, persist, fail over.

Authority: one node owns a race. It holds the ``RaceState`` in memory, is
the only writer of ``race:{id}:state`` (written after every change) and
the only one calling ``rooms.race.handle`` for it. Ownership is a lease,
``race:{id}:owner`` = node id with a ``race_lease_s`` TTL, renewed every
third of it; the race also sits in ``race:active`` scored by lease expiry.

Forwarding: an event for a race owned elsewhere goes to the owner's inbox
channel (``keys.channel_race_node(owner)``) as a small JSON command with a
request id; the owner applies it and answers on the asker's inbox with the
replies or the error. The asker waits ``race_forward_timeout_s`` at most
(``unavailable`` after that). Commands carry the raw keystroke log; the
owner replays it (``gateway.race_finish``).

Failover: every node scans ``race:active`` each lease period; a race whose
lease has lapsed is adopted by whichever node wins ``set_if_absent`` on the
owner key: it loads ``race:{id}:state`` and keeps ticking. A request for a
race with no owner adopts it on the spot. A node that finds its lease taken
by another drops the race.

Ticking: every ``race_tick_ms`` each owned race gets a ``Tick``; races are
split into ``SLICES`` fixed slices and one slice is handled every
``race_tick_ms / SLICES`` so flushes spread over the tick. Only races that
changed produce a ``race.state``; a slice's pushes go out in one
``publish_many``. ``StartTimer`` effects need nothing: ticks run the clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
import zlib
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any, Final

import orjson

from gateway.race_finish import limits, replayed
from rooms import race
from rooms.race_state import Phase, RaceState, decode, encode
from typogram import keys, topics
from typogram.codes import ErrorCode
from typogram.errors import AppError
from typogram.ports import Cache, Event, EventLog, PubSub
from typogram.protocol import push_payload
from typogram.settings import Settings

log = logging.getLogger(__name__)

SLICES: Final = 5
INBOX_SIZE: Final = 4096
Command = Mapping[str, Any]
Replies = list[tuple[str, Mapping[str, Any]]]
OnFinished = Callable[[RaceState], Any]


class RaceEngine:
    def __init__(
        self,
        settings: Settings,
        *,
        node_id: str,
        cache: Cache,
        pubsub: PubSub,
        events: EventLog,
        clock: Callable[[], float],
        on_finished: Callable[[RaceState], Any] | None = None,
        on_matched: Callable[[Mapping[str, Any]], Any] | None = None,
    ) -> None:
        self._s = settings
        self.node_id = node_id
        self._cache = cache
        self._pubsub = pubsub
        self._events = events
        self._clock = clock
        self._limits = limits(settings)
        self._owned: dict[str, RaceState] = {}
        self._slices: list[set[str]] = [set() for _ in range(SLICES)]
        self._written: dict[str, int] = {}  # race -> seq last persisted
        self._locks: dict[str, asyncio.Lock] = {}
        self._pending: dict[str, asyncio.Future[Any]] = {}
        self._inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue(INBOX_SIZE)
        self._on_finished = on_finished
        self.on_matched = on_matched
        self._subscribed = False
        self.halted = False

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        await self._pubsub.subscribe(keys.channel_race_node(self.node_id), self._on_inbox)
        self._subscribed = True

    async def run(self) -> None:
        """Tick, renew leases, adopt lapsed races and serve the inbox until cancelled."""
        async with asyncio.TaskGroup() as group:
            group.create_task(self._ticker(), name="race-ticker")
            group.create_task(self._leases(), name="race-leases")
            group.create_task(self._serve_inbox(), name="race-inbox")

    async def stop(self, *, release: bool = True) -> None:
        """Stop serving; ``release`` hands the leases back so another node adopts at once."""
        self.halted = True
        if self._subscribed:
            self._subscribed = False
            with contextlib.suppress(Exception):
                await self._pubsub.unsubscribe(keys.channel_race_node(self.node_id), self._on_inbox)
        if release:
            for race_id in list(self._owned):
                with contextlib.suppress(Exception):
                    await self._persist(race_id)
                    await self._cache.delete(keys.race_owner(race_id))
                    await self._cache.zadd(keys.races_active(), {race_id: 0.0})
        self._owned.clear()
        for part in self._slices:
            part.clear()

    def statistics(self) -> dict[str, float]:
        return {"races_owned": len(self._owned), "race_requests_pending": len(self._pending)}

    def owns(self, race_id: str) -> bool:
        return race_id in self._owned

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
        await self._persist(state.race_id)
        for effect in effects:
            await self._carry_out(state.race_id, effect, replies)
        return self._owned.get(state.race_id, state), replies

    async def apply(self, race_id: str, command: Command) -> Replies:
        """Apply a command wherever the race is owned; raises ``AppError``."""
        if self.halted:
            raise AppError(ErrorCode.UNAVAILABLE, "races are not served on this node now")
        for _ in range(3):
            if race_id in self._owned:
                return await self._apply_local(race_id, command)
            owner = await self._cache.get(keys.race_owner(race_id))
            if owner is None or owner.decode() == self.node_id:
                state = await self._adopt(race_id)
                if state is None:
                    raise AppError(ErrorCode.NOT_FOUND, f"no race {race_id}")
                if race_id not in self._owned:  # finished: answer from the stored state
                    return self._read_only(state, command)
                continue
            answer = await self._forward(owner.decode(), race_id, command)
            if answer.get("moved"):
                await asyncio.sleep(0.05)
                continue
            if "error" in answer:
                code, message = answer["error"]
                raise AppError(ErrorCode(code), message)
            return [(str(t), d) for t, d in answer["replies"]]
        raise AppError(ErrorCode.UNAVAILABLE, "the race is changing hands; retry")

    async def load(self, race_id: str) -> RaceState | None:
        if race_id in self._owned:
            return self._owned[race_id]
        raw = await self._cache.get(keys.race_state(race_id))
        return decode(raw) if raw is not None else None

    async def _apply_local(self, race_id: str, command: Command) -> Replies:
        state = self._owned[race_id]
        event = self._event(state, command)  # no await between this read and the write below
        try:
            new, effects = race.handle(state, event, self._now_ms())
        except race.RaceError as exc:
            raise AppError(exc.code, exc.message) from None
        self._owned[race_id] = new
        replies: Replies = []
        if new.seq != state.seq:
            await self._persist(race_id)
        for effect in effects:
            await self._carry_out(race_id, effect, replies)
        return replies

    def _read_only(self, state: RaceState, command: Command) -> Replies:
        try:
            _, effects = race.handle(state, self._event(state, command), self._now_ms())
        except race.RaceError as exc:
            raise AppError(exc.code, exc.message) from None
        return [(e.type, e.data) for e in effects if isinstance(e, race.Reply)]

    def _event(self, state: RaceState, c: Command) -> race.Event:
        kind, user = c.get("k"), str(c.get("user", ""))
        match kind:
            case "join":
                return race.Join(user, str(c["name"]), bool(c.get("guest", False)))
            case "leave":
                return race.Leave(user)
            case "disconnect":
                return race.Disconnect(user)
            case "reconnect":
                return race.Reconnect(user)
            case "start":
                return race.Start(user or None)
            case "progress":
                return race.Progress(user, int(c["pos"]), int(c["errors"]))
            case "finish":
                return race.Finish(user, replayed(state.text, c["keys"], self._limits))
        raise AppError(ErrorCode.BAD_REQUEST, f"unknown race command {kind!r}")

    # -- effects ----------------------------------------------------------------------------

    async def _carry_out(self, race_id: str, effect: race.Effect, replies: Replies) -> None:
        match effect:
            case race.Reply(kind, data):
                replies.append((kind, data))
            case race.Broadcast(kind, data):
                await self._pubsub.publish(keys.channel_race(race_id), push_payload(kind, data))
            case race.RecordResult(_, data):
                event = Event(type="race.result", data=dict(data), key=race_id)
                await self._events.publish(topics.RACE_EVENTS, event)
            case race.RaceFinished():
                await self._finished(race_id, effect)
            case race.StartTimer():
                pass  # the ticker runs the clock

    async def _finished(self, race_id: str, effect: race.RaceFinished) -> None:
        state = self._owned.get(race_id)
        if state is None:
            return
        data = {
            "race": race_id,
            "standings": list(effect.standings),
            "tournament": effect.tournament_id,
            "difficulty": state.difficulty,
            "lang": state.lang,
            "seed": state.seed,
            "started_at": state.start_at_ms,
            "ended_at": state.ended_at_ms,
        }
        # A stable id: a second owner finishing the same race publishes a duplicate consumers drop.
        await self._events.publish(
            topics.RACE_EVENTS, Event(type="race.finished", data=data, key=race_id, id=race_id)
        )
        if effect.tournament_id:
            event = Event(
                type="tournament.race", data=data, key=effect.tournament_id, id=f"t-{race_id}"
            )
            await self._events.publish(topics.TOURNAMENT_SCORES, event)
        await self._persist(race_id, ttl=self._s.race_finished_ttl_s)
        self._disown(race_id)
        await self._cache.zrem(keys.races_active(), race_id)
        await self._cache.delete(keys.race_owner(race_id))
        if self._on_finished is not None:
            await self._on_finished(state)

    # -- ownership ---------------------------------------------------------------------------

    def _own(self, state: RaceState) -> None:
        self._owned[state.race_id] = state
        self._slices[zlib.crc32(state.race_id.encode()) % SLICES].add(state.race_id)

    def _disown(self, race_id: str) -> None:
        self._owned.pop(race_id, None)
        self._written.pop(race_id, None)
        self._locks.pop(race_id, None)
        for part in self._slices:
            part.discard(race_id)

    async def _persist(self, race_id: str, ttl: float | None = None) -> None:
        lock = self._locks.setdefault(race_id, asyncio.Lock())
        async with lock:
            state = self._owned.get(race_id)
            if state is None or (self._written.get(race_id) == state.seq and ttl is None):
                return
            life = ttl or (self._s.race_time_limit_ms / 1000 + self._s.race_finished_ttl_s)
            await self._cache.set(keys.race_state(race_id), encode(state), ttl=life)
            self._written[race_id] = state.seq
            if ttl is None:
                expiry = self._clock() + self._s.race_lease_s
                await self._cache.zadd(keys.races_active(), {race_id: expiry})

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
        self._own(replace(state, changed=True))  # a fresh snapshot for everyone
        await self._cache.zadd(keys.races_active(), {race_id: self._clock() + self._s.race_lease_s})
        log.info("adopted race %s at seq %d", race_id, state.seq)
        return state

    async def _leases(self) -> None:
        period = self._s.race_lease_s / 3
        while True:
            await asyncio.sleep(period)
            try:
                await self._renew()
                await self._scan()
            except Exception:
                log.exception("race lease round failed")

    async def _renew(self) -> None:
        expiry = self._clock() + self._s.race_lease_s
        for race_id in list(self._owned):
            key = keys.race_owner(race_id)
            current = await self._cache.get(key)
            if current is not None and current.decode() != self.node_id:
                log.warning("lost race %s to node %s", race_id, current.decode())
                self._disown(race_id)
                continue
            await self._cache.set(key, self.node_id.encode(), ttl=self._s.race_lease_s)
            await self._cache.zadd(keys.races_active(), {race_id: expiry})

    async def _scan(self) -> None:
        now = self._clock()
        for race_id, expiry in await self._cache.zrevrange(keys.races_active(), 0, -1):
            if expiry >= now or race_id in self._owned:
                continue
            lapsed = await self._cache.get(keys.race_owner(race_id)) is None
            if lapsed and await self._adopt(race_id) is None:
                await self._cache.zrem(keys.races_active(), race_id)

    # -- ticking -----------------------------------------------------------------------------

    async def _ticker(self) -> None:
        step = self._s.race_tick_ms / 1000 / SLICES
        index = 0
        while True:
            await asyncio.sleep(step)
            try:
                await self._tick(self._slices[index % SLICES])
            except Exception:
                log.exception("race tick failed")
            index += 1

    async def _tick(self, part: set[str]) -> None:
        if not part:
            return
        now = self._now_ms()
        pushes: list[tuple[str, bytes]] = []
        later: list[tuple[str, race.Effect]] = []
        changed: list[str] = []
        for race_id in list(part):
            state = self._owned.get(race_id)
            if state is None:
                continue
            new, effects = race.handle(state, race.Tick(), now)
            if new is state:
                continue
            self._owned[race_id] = new
            if new.seq != state.seq:
                changed.append(race_id)
            for effect in effects:
                if isinstance(effect, race.Broadcast):
                    channel = keys.channel_race(race_id)
                    pushes.append((channel, push_payload(effect.type, effect.data)))
                else:
                    later.append((race_id, effect))
        for race_id in changed:
            await self._persist(race_id)
        if pushes:
            await self._pubsub.publish_many(pushes)
        for race_id, effect in later:
            await self._carry_out(race_id, effect, [])

    # -- the inbox (forwarded commands, their answers, matches) --------------------------------

    async def _forward(self, owner: str, race_id: str, command: Command) -> dict[str, Any]:
        request = uuid.uuid4().hex
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[request] = future
        message = {"t": "apply", "req": request, "from": self.node_id, "race": race_id}
        try:
            await self._pubsub.publish(
                keys.channel_race_node(owner), orjson.dumps({**message, "cmd": command})
            )
            async with asyncio.timeout(self._s.race_forward_timeout_s):
                answer: dict[str, Any] = await future
                return answer
        except TimeoutError:
            raise AppError(ErrorCode.UNAVAILABLE, "the race's node did not answer; retry") from None
        finally:
            self._pending.pop(request, None)

    async def send_to_node(self, node: str, message: Mapping[str, Any]) -> None:
        await self._pubsub.publish(keys.channel_race_node(node), orjson.dumps(message))

    def _on_inbox(self, channel: str, payload: bytes) -> None:
        try:
            message = orjson.loads(payload)
            kind = message["t"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            log.warning("dropping malformed race inbox message %r", payload[:200])
            return
        if kind == "answer":
            future = self._pending.get(str(message.get("req")))
            if future is not None and not future.done():
                future.set_result(message)
            return
        try:
            self._inbox.put_nowait(message)
        except asyncio.QueueFull:
            log.warning("race inbox full; dropping a %s", kind)

    async def _serve_inbox(self) -> None:
        while True:
            message = await self._inbox.get()
            try:
                if message["t"] == "apply":
                    await self._answer(message)
                elif message["t"] == "matched" and self.on_matched is not None:
                    await self.on_matched(message)
            except Exception:
                log.exception("race inbox message failed")

    async def _answer(self, message: Mapping[str, Any]) -> None:
        race_id = str(message["race"])
        answer: dict[str, Any] = {"t": "answer", "req": message["req"]}
        if race_id not in self._owned:
            answer["moved"] = True
        else:
            try:
                answer["replies"] = await self._apply_local(race_id, message["cmd"])
            except AppError as exc:
                answer["error"] = [exc.code.value, exc.message]
        await self.send_to_node(str(message["from"]), answer)
