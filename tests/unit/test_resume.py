"""``gateway.sessions.resume``: rebuilding a session another node owned, from its cursor record.

No network: the cache is ``MemoryCache``, the "old node" is a plain ``Session``
whose record ``SessionStore.stop`` writes, and the resuming node's hub is a
stand-in with the few parts ``take_over`` uses (the room logs are read by the
real ``ChatRooms.logged``/``pushes_after``).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, cast

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.chat.rooms import ChatRooms
from gateway.sessions.replay import ReplayBuffer
from gateway.sessions.resume import Plan, _rebuilt_frames, take_over
from gateway.sessions.session import Session, SessionRegistry, Watermark
from gateway.sessions.store import SessionRecord, SessionStore
from typogram import keys
from typogram.adapters.memory import MemoryCache
from typogram.adapters.memory_scripts import MemoryFencedWrites, MemoryPushLog
from typogram.protocol import Push, Resume, numbered_payload, parse_push, push_payload
from typogram.tokens import Claims, TokenType

NOW = 1_000.0
WINDOW_S = 120.0
LOG = 64  # room push log length, unless a test trims it
SESSION = "s-1"


def _claims(user: str = "alice") -> Claims:
    return Claims(user, TokenType.ACCESS, 1, user, "user", "jti", 2_000_000_000)


class _Chat:
    """What ``take_over`` needs of ``hub.chat``: the real log readers, no rejoin effects."""

    def __init__(self, cache: MemoryCache) -> None:
        none = cast(Any, None)
        self._rooms = ChatRooms(
            cache=cache,
            pushes=MemoryPushLog(cache),
            pubsub=none,
            events=none,
            fanout=none,
            clock=lambda: NOW,
            history=50,
            max_text=500,
            slow_mode_s=0.0,
            max_rooms=10,
            push_log=LOG,
            push_ttl=600.0,
            shared=none,
        )
        self.restored: list[str] = []

    async def restore(self, session: Session, room: str) -> None:
        self.restored.append(room)

    async def pushes_after(self, room: str, mark: Watermark) -> list[Push] | None:
        return await self._rooms.pushes_after(room, mark)

    async def logged(self, room: str, numbers: set[int]) -> dict[int, Push] | None:
        return await self._rooms.logged(room, numbers)


class _Fanout:
    def __init__(self) -> None:
        self.watched: list[str] = []

    async def request_takeover(self, user: str, session_id: str) -> None:
        raise AssertionError("the record is stopped: no takeover")

    async def watch_user(self, user: str) -> None:
        self.watched.append(user)


@dataclass
class World:
    """One cache shared by an old node (``a``, holding ``old``) and a resuming one (``b``)."""

    cache: MemoryCache
    log: int = LOG
    old: Session = field(init=False)
    published: dict[str, list[int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.old = Session(SESSION, _claims(), ReplayBuffer(1_000, 1 << 22))

    def join(self, *rooms: str) -> None:
        for room in rooms:
            self.old.add_room(room)
            self.old.marks[room] = Watermark(len(self.published.get(room, [])))

    async def publish(self, room: str, text: str = "", *, deliver: bool = True) -> Push:
        """A room push as ``ChatRooms._broadcast`` makes it; the old node collects it."""
        payload = push_payload("chat.message", {"room": room, "text": text or room})
        number = await MemoryPushLog(self.cache).append_numbered(
            keys.room_push_seq(room), keys.room_pushes(room), payload, self.log, 600.0
        )
        self.published.setdefault(room, []).append(number)
        push = parse_push(numbered_payload(number, payload, NOW))
        if deliver:
            self.old.deliver(push, room)
        return push

    def user_push(self, text: str = "match") -> None:
        """A push that is not a room push (user channel, race): only node ``a`` has it."""
        self.old.deliver(parse_push(push_payload("match.found", {"text": text})))

    async def stop(self) -> SessionRecord:
        """Node ``a`` stops collecting (drain, handover): an exact record."""
        store_a = SessionStore(self.cache, MemoryFencedWrites(self.cache), "a", 600.0, lambda: NOW)
        await store_a.claim(SESSION)
        await store_a.stop([self.old])
        self.old.ended = True
        record = await self.store_b().load(SESSION)
        assert record is not None
        return record

    def store_b(self) -> SessionStore:
        return SessionStore(self.cache, MemoryFencedWrites(self.cache), "b", 600.0, lambda: NOW)

    def hub(self) -> Any:
        return SimpleNamespace(
            chat=_Chat(self.cache),
            fanout=_Fanout(),
            store=self.store_b(),
            sessions=SessionRegistry(
                window_s=WINDOW_S, max_detached=10, replay_frames=1_000, replay_bytes=1 << 22
            ),
            settings=SimpleNamespace(ws_resume_window_s=WINDOW_S),
            clock=lambda: NOW,
        )

    def sent(self, after: int = 0) -> list[tuple[int, bytes, tuple[str, int] | None]]:
        """What the old node sent after ``after``: ``(s, frame, origin)``."""
        frames = self.old.replay.after(after) or []
        origins = self.old.replay.origins(len(frames)) if frames else []
        return [(s, frame, origin) for (s, origin), frame in zip(origins, frames, strict=True)]


@pytest.fixture
async def world() -> Any:
    async with MemoryCache() as cache:
        yield World(cache)


def _replayed(session: Session, after: int) -> list[tuple[int, tuple[str, int] | None]]:
    frames = session.replay.after(after) or []
    return session.replay.origins(len(frames)) if frames else []


# -- rebuilding the frames up to the record -------------------------------------------


async def test_a_full_rebuild_has_the_same_s_values_frames_and_order(world: World) -> None:
    world.join("lobby", "race-1")
    for room in ("lobby", "race-1", "lobby", "lobby", "race-1"):
        await world.publish(room)
    record = await world.stop()
    assert record.seq == 5 and not record.live

    frames = await _rebuilt_frames(world.hub(), record, 0)

    assert frames == world.sent(0)
    assert [s for s, _, _ in frames] == [1, 2, 3, 4, 5]
    assert [origin for _, _, origin in frames] == [
        ("lobby", 1),
        ("race-1", 1),
        ("lobby", 2),
        ("lobby", 3),
        ("race-1", 2),
    ]
    assert all(frame.endswith(b',"s":%d}' % s) for s, frame, _ in frames)


async def test_only_the_frames_after_the_clients_seq_are_rebuilt(world: World) -> None:
    world.join("lobby", "race-1")
    for room in ("lobby", "race-1", "lobby", "race-1"):
        await world.publish(room)
    record = await world.stop()
    hub = world.hub()
    assert await _rebuilt_frames(hub, record, 2) == world.sent(2)
    assert [s for s, _, _ in await _rebuilt_frames(hub, record, 2) or []] == [3, 4]
    assert await _rebuilt_frames(hub, record, 4) == []  # it saw everything


async def test_a_client_that_saw_more_than_the_record_holds_is_not_resumable(
    world: World,
) -> None:
    world.join("lobby")
    for _ in range(3):
        await world.publish("lobby")
    record = await world.stop()
    assert await _rebuilt_frames(world.hub(), record, record.seq + 1) is None

    plan = await take_over(world.hub(), Resume(SESSION, record.seq + 1), _claims())
    assert plan is not None and plan.replay is None
    assert plan.fills == [] and plan.skip == {}


async def test_a_frame_that_was_not_a_room_push_is_not_resumable(world: World) -> None:
    world.join("lobby")
    await world.publish("lobby")
    world.user_push()  # s=2: only node a ever had it
    await world.publish("lobby")
    record = await world.stop()
    assert record.origins()[2] is None
    hub = world.hub()
    assert await _rebuilt_frames(hub, record, 0) is None
    assert await _rebuilt_frames(hub, record, 1) is None
    # Past it, the rest is rebuilt.
    assert await _rebuilt_frames(hub, record, 2) == world.sent(2)


async def test_frames_the_record_does_not_describe_are_not_resumable(world: World) -> None:
    world.join("lobby")
    for _ in range(3):
        await world.publish("lobby")
    record = await world.stop()
    record.tail = record.tail[1:]  # as in a live record with a short tail
    assert await _rebuilt_frames(world.hub(), record, 0) is None
    assert await _rebuilt_frames(world.hub(), record, 1) == world.sent(1)


async def test_a_room_log_that_no_longer_reaches_back_is_not_resumable(world: World) -> None:
    world.log = 2
    world.join("lobby", "race-1")
    await world.publish("race-1")
    for _ in range(3):
        await world.publish("lobby")  # lobby 1 is trimmed from its log
    record = await world.stop()
    hub = world.hub()
    assert await _rebuilt_frames(hub, record, 0) is None
    assert await _rebuilt_frames(hub, record, 1) is None  # s=2 was lobby 1
    assert await _rebuilt_frames(hub, record, 2) == world.sent(2)


async def test_a_room_log_trimmed_after_the_record_gives_no_fills(world: World) -> None:
    world.log = 2
    world.join("lobby")
    await world.publish("lobby")
    record = await world.stop()
    for _ in range(3):
        await world.publish("lobby", deliver=False)  # 2, 3, 4: the log keeps 3, 4
    plan = await take_over(world.hub(), Resume(SESSION, record.seq), _claims())
    assert plan is not None and plan.replay is None
    assert plan.fills == [] and plan.skip == {}


async def test_after_a_gap_because_the_client_is_ahead_s_values_are_not_reused(
    world: World,
) -> None:
    world.join("lobby")
    await world.publish("lobby")
    record = await world.stop()  # as a crashed node's last heartbeat record: s=1
    seen = record.seq + 2  # the client got s=2 and s=3 before the crash
    plan = await take_over(world.hub(), Resume(SESSION, seen), _claims())
    assert plan is not None and plan.replay is None  # resumed: false, snapshots
    plan.finish()
    for _ in range(2):  # two pushes the client never receives (it drops again)
        plan.session.deliver(await world.publish("lobby", deliver=False), "lobby")
    # Its next resume (same node) says seq=3: either both are replayed, or a gap.
    missed = plan.session.replay.after(seen)
    assert missed is None or len(missed) == 2


# -- filling what was published after the record ---------------------------------------


async def test_pushes_after_the_record_are_filled_after_it_in_room_order(world: World) -> None:
    world.join("lobby", "race-1")
    await world.publish("lobby")
    await world.publish("race-1")
    record = await world.stop()
    # Nobody collects for the session now.
    for room in ("race-1", "lobby", "race-1", "lobby"):
        await world.publish(room, deliver=False)
    hub = world.hub()

    plan = await take_over(hub, Resume(SESSION, 1), _claims())

    assert plan is not None and plan.replay == [world.sent(1)[0][1]]
    assert [(room, p.number) for room, p in plan.fills] == [
        ("lobby", 2),
        ("lobby", 3),
        ("race-1", 2),
        ("race-1", 3),
    ]
    assert plan.skip == {"lobby": 3, "race-1": 3}
    session = plan.session
    assert session.id == SESSION and session.seq == record.seq
    assert hub.chat.restored == ["lobby", "race-1"] and hub.fanout.watched == ["alice"]
    plan.finish()
    assert _replayed(session, 1) == [
        (2, ("race-1", 1)),
        (3, ("lobby", 2)),
        (4, ("lobby", 3)),
        (5, ("race-1", 2)),
        (6, ("race-1", 3)),
    ]
    assert session.held is None
    assert session.marks["lobby"].level == 3 and session.marks["race-1"].level == 3


async def test_a_resume_repeats_nothing_the_session_had_or_was_held(world: World) -> None:
    world.join("lobby")
    await world.publish("lobby")  # 1
    early = await world.publish("lobby", deliver=False)  # 2: not delivered yet ...
    third = await world.publish("lobby")  # 3: ... so 3 arrived first (ahead)
    world.old.deliver(early, "lobby")  # then 2
    late = await world.publish("lobby", deliver=False)  # 4: out of order again
    fifth = await world.publish("lobby")  # 5 (ahead: 5, level 3)
    record = await world.stop()
    assert record.marks["lobby"] == (3, [5])
    sixth = await world.publish("lobby", deliver=False)  # after the record

    plan = await take_over(world.hub(), Resume(SESSION, 0), _claims())
    assert plan is not None and plan.replay is not None
    assert [p.number for _, p in plan.fills] == [4, 6]
    # Pub/sub delivers to the held session again what the fills carry, and a new one.
    session = plan.session
    for push in (third, late, fifth, sixth):
        session.deliver(push, "lobby")
    seventh = await world.publish("lobby", deliver=False)
    session.deliver(seventh, "lobby")
    plan.finish()

    replayed = _replayed(session, 0)
    origins = [origin for _, origin in replayed]
    assert [s for s, _ in replayed] == list(range(1, len(replayed) + 1))
    assert len(origins) == len(set(origins))
    assert origins == [("lobby", n) for n in (1, 3, 2, 5, 4, 6, 7)]


async def test_a_resume_within_the_record_adds_nothing(world: World) -> None:
    world.join("lobby")
    await world.publish("lobby")
    record = await world.stop()
    plan = await take_over(world.hub(), Resume(SESSION, record.seq), _claims())
    assert plan is not None and plan.replay == [] and plan.fills == []
    plan.finish()
    assert plan.session.seq == record.seq and _replayed(plan.session, record.seq) == []


async def test_a_gap_releases_the_held_pushes(world: World) -> None:
    session = Session(SESSION, _claims(), ReplayBuffer(10, 1_000))
    session.marks["lobby"] = Watermark(0)
    session.held = []
    push = Push("chat.message", b'{"t":"chat.message","d":{}}', 1)
    session.deliver(push, "lobby")
    plan = Plan(session, None)
    plan.finish()  # a gap: snapshots follow, then what was held
    assert _replayed(session, 0) == [(1, ("lobby", 1))]


# -- properties -------------------------------------------------------------------------

ROOMS = ("a", "b", "c")


async def _resume_after_stop(
    order: list[str], seen: int, later: list[str]
) -> tuple[World, SessionRecord, Plan | None]:
    async with MemoryCache() as cache:
        world = World(cache)
        world.join(*ROOMS)
        for room in order:
            await world.publish(room)
        record = await world.stop()
        for room in later:
            await world.publish(room, deliver=False)
        plan = await take_over(world.hub(), Resume(SESSION, seen), _claims())
        return world, record, plan


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    order=st.lists(st.sampled_from(ROOMS), max_size=20),
    data=st.data(),
)
def test_any_interleaving_of_rooms_rebuilds_to_the_same_sequence(
    order: list[str], data: st.DataObject
) -> None:
    seen = data.draw(st.integers(0, len(order)), label="seen")

    async def run() -> None:
        async with MemoryCache() as cache:
            world = World(cache)
            world.join(*ROOMS)
            for room in order:
                await world.publish(room)
            record = await world.stop()
            assert await _rebuilt_frames(world.hub(), record, seen) == world.sent(seen)

    asyncio.run(run())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    order=st.lists(st.sampled_from(ROOMS), max_size=15),
    later=st.lists(st.sampled_from(ROOMS), max_size=15),
    data=st.data(),
)
def test_a_resume_delivers_every_missed_push_once_numbered_on(
    order: list[str], later: list[str], data: st.DataObject
) -> None:
    seen = data.draw(st.integers(0, len(order)), label="seen")
    world, record, plan = asyncio.run(_resume_after_stop(order, seen, later))
    assert plan is not None and plan.replay is not None
    plan.finish()

    replayed = _replayed(plan.session, seen)
    assert [s for s, _ in replayed] == list(range(seen + 1, len(order) + len(later) + 1))
    origins = [origin for _, origin in replayed]
    assert origins[: record.seq - seen] == [o for _, _, o in world.sent(seen)]
    filled = origins[record.seq - seen :]
    # In room order, each room's pushes in number order, exactly those published later.
    assert filled == sorted(filled)
    everything = {(room, n) for room, numbers in world.published.items() for n in numbers}
    assert len(origins) == len(set(origins))
    seen_before = {o for _, _, o in world.sent(0)[:seen]}
    assert set(origins) == everything - seen_before


# -- a crashed (or only slow) owner ------------------------------------------------------


class _SilentFanout(_Fanout):
    """The owner never answers the takeover: it crashed (its node lease still runs)."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: list[str] = []

    async def request_takeover(self, user: str, session_id: str) -> None:
        self.asked.append(session_id)


def _ticking(step: float = 0.05) -> Any:
    now = [NOW]

    def clock() -> float:
        now[0] += step
        return now[0]

    return clock


async def _crashed_owner(world: World) -> tuple[SessionStore, list[str]]:
    """Node ``a`` owns the session, its lease is valid, its last record is live."""
    fenced: list[str] = []
    store_a = SessionStore(
        world.cache, MemoryFencedWrites(world.cache), "a", 600.0, lambda: NOW, fenced=fenced.append
    )
    await store_a.renew_lease()
    await store_a.claim(SESSION)
    store_a.touch(world.old)
    await store_a.flush()
    return store_a, fenced


async def test_an_owner_that_never_answers_keeps_the_session_and_is_fenced(world: World) -> None:
    world.join("r1")
    await world.publish("r1", "one")
    store_a, fenced = await _crashed_owner(world)
    hub = world.hub()
    hub.fanout = _SilentFanout()
    hub.clock = _ticking()
    hub.settings = SimpleNamespace(ws_resume_window_s=WINDOW_S, ws_takeover_wait_s=0.5)
    hub.store = SessionStore(world.cache, MemoryFencedWrites(world.cache), "b", 600.0, hub.clock)
    plan = await take_over(hub, Resume(SESSION, world.old.seq), _claims())
    assert plan is not None
    assert hub.fanout.asked == [SESSION]
    assert plan.session.id == SESSION and plan.session.rooms == {"r1"}
    assert plan.replay == []  # nothing after the client's seq: resumed
    # The crashed node was only slow: its later writes for the session are refused.
    await world.publish("r1", "late")
    store_a.touch(world.old)
    await store_a.flush()
    assert fenced == [SESSION] and store_a.fences == 1
    record = await hub.store.load(SESSION)
    assert record is not None and record.node == "a" and record.seq == 1  # a's write lost
    await store_a.forget(world.old)  # and it never deletes what it no longer owns
    assert await hub.store.load(SESSION) is not None


async def test_a_client_ahead_of_a_crashed_record_keeps_the_session_with_snapshots(
    world: World,
) -> None:
    world.join("r1")
    await _crashed_owner(world)
    await world.publish("r1", "after the last record")  # delivered, never recorded
    hub = world.hub()
    hub.fanout = _SilentFanout()
    hub.clock = _ticking()
    hub.settings = SimpleNamespace(ws_resume_window_s=WINDOW_S, ws_takeover_wait_s=0.2)
    plan = await take_over(hub, Resume(SESSION, world.old.seq), _claims())
    assert plan is not None and plan.session.id == SESSION
    assert plan.replay is None  # resumed: false, same session, fresh snapshots
    assert plan.session.seq == world.old.seq  # numbering goes on after what it saw


def test_race_snapshots_go_without_s_and_numbered_frames_mark_the_record() -> None:
    marked: list[str] = []
    registry = SessionRegistry(
        window_s=1.0,
        max_detached=1,
        replay_frames=10,
        replay_bytes=1 << 16,
        numbered=lambda session: marked.append(session.id),
    )
    session = registry.create(_claims(), SESSION)
    sent: list[bytes] = []
    session.link = cast(Any, SimpleNamespace(send=lambda frame, kind: sent.append(frame)))
    session.deliver(parse_push(push_payload("race.state", {"race": "r", "seq": 1})))
    assert session.seq == 0 and len(session.replay) == 0 and marked == []
    assert sent == [b'{"t":"race.state","d":{"race":"r","seq":1}}']
    session.deliver(parse_push(push_payload("race.result", {"race": "r"})))
    assert session.seq == 1 and marked == [SESSION]
    session.held = []  # a resume is being prepared: a snapshot is not kept for later
    session.deliver(parse_push(push_payload("race.state", {"race": "r", "seq": 2})))
    assert session.held == [] and len(sent) == 2


# -- marks: what numbered frames changed since the record -------------------------------


async def test_a_crashed_owners_marks_carry_its_record_to_the_last_frame(world: World) -> None:
    world.join("r1")
    store_a, _ = await _crashed_owner(world)
    written = await world.cache.get(keys.session_state(SESSION))
    world.old.numbered = store_a.mark
    for text in ("one", "two", "three"):
        await world.publish("r1", text)
    await store_a.flush()
    assert await world.cache.get(keys.session_state(SESSION)) == written  # marks only
    record = await world.store_b().load(SESSION)
    assert record is not None and record.seq == world.old.seq == 3
    hub = world.hub()
    hub.fanout = _SilentFanout()
    hub.clock = _ticking()
    hub.settings = SimpleNamespace(ws_resume_window_s=WINDOW_S, ws_takeover_wait_s=0.2)
    plan = await take_over(hub, Resume(SESSION, 1), _claims())  # two frames in flight
    assert plan is not None and plan.replay is not None  # resumed: true
    assert plan.replay == [frame for _, frame, _ in world.sent(1)]
    assert plan.session.marks["r1"].level == 3


async def test_a_mark_that_does_not_continue_the_record_is_ignored(world: World) -> None:
    world.join("r1")
    store_a, _ = await _crashed_owner(world)
    world.old.numbered = store_a.mark
    await world.publish("r1", "one")
    await store_a.flush()
    stale = await world.cache.get(keys.session_mark(SESSION))
    assert stale is not None
    # Node b took the session over and wrote its own record: a's mark names another node.
    store_b = SessionStore(
        world.cache, MemoryFencedWrites(world.cache), "b", 600.0, lambda: NOW + 1
    )
    await store_b.claim(SESSION)
    newer = Session(SESSION, _claims(), ReplayBuffer(10, 1 << 16))
    store_b.touch(newer)
    await store_b.flush()
    record = await store_b.load(SESSION)
    assert record is not None and record.node == "b" and record.seq == 0
    # A mark of an older record (another ``at``) of the same node is ignored as well.
    await world.cache.set(keys.session_mark(SESSION), stale.replace(b'"a"', b'"b"'), ttl=600)
    record = await store_b.load(SESSION)
    assert record is not None and record.seq == 0


async def test_a_failed_record_write_stops_the_marks_until_the_next_record() -> None:
    class _Failing(MemoryFencedWrites):
        fail = True

        async def write_held(self, *args: Any, **kwargs: Any) -> list[str]:
            if self.fail:
                raise ConnectionError("Redis went away")
            return await super().write_held(*args, **kwargs)

    async with MemoryCache() as cache:
        fences = _Failing(cache)
        store = SessionStore(cache, fences, "a", 600.0, lambda: NOW)
        await store.claim(SESSION)
        session = Session(SESSION, _claims(), ReplayBuffer(10, 1 << 16))
        session.numbered = store.mark
        store.touch(session)
        await store.flush()
        assert store.failures == 1 and session.recorded_at == 0.0
        session.deliver(parse_push(push_payload("match.found", {})))
        await store.flush()
        assert await cache.get(keys.session_mark(SESSION)) is None
        fences.fail = False
        store.touch(session)
        await store.flush()
        session.deliver(parse_push(push_payload("match.found", {})))
        await store.flush()
        record = await store.load(SESSION)
        assert record is not None and record.seq == 2 and session.recorded_at == NOW
