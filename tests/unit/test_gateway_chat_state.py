"""What a node keeps of chat outside its sockets, with the cache port in memory:
``gateway.connection.ratelimit`` (the per-connection bucket and strikes),
``gateway.chat.presence`` (who may see whom online) and
``gateway.chat.roomstate`` (a room's members and moderation shared by nodes) and
``gateway.chat.rooms.RoomStates`` (a node's copy of its rooms, told of moderation)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.chat.control import ModerationNotice
from gateway.chat.presence import OFFLINE, Presence
from gateway.chat.rooms import RoomStates
from gateway.chat.roomstate import SharedRooms
from gateway.connection.ratelimit import Strikes, TokenBucket
from rooms import chat
from typogram import keys
from typogram.adapters.memory_cache import MemoryCache


class Clock:
    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def cache(clock: Clock) -> AsyncIterator[MemoryCache]:
    async with MemoryCache(clock=clock) as opened:
        yield opened


# -- rate limit ------------------------------------------------------------------


def test_a_bucket_allows_its_burst_then_refuses_until_it_refills() -> None:
    bucket = TokenBucket(rate=2.0, burst=3, now=0.0)
    assert [bucket.allow(0.0) for _ in range(4)] == [True, True, True, False]
    assert bucket.allow(0.25) is False  # half a token
    assert bucket.allow(0.5) is True  # one whole token after 0.5 s at 2/s
    assert bucket.allow(0.5) is False


def test_a_long_pause_refills_no_more_than_the_burst() -> None:
    bucket = TokenBucket(rate=10.0, burst=2, now=0.0)
    assert bucket.allow(0.0) and bucket.allow(0.0)
    assert [bucket.allow(3600.0) for _ in range(3)] == [True, True, False]


@given(
    rate=st.floats(min_value=0.1, max_value=1_000),
    burst=st.integers(min_value=1, max_value=50),
    gaps=st.lists(st.floats(min_value=0, max_value=5), min_size=1, max_size=200),
)
def test_a_bucket_never_allows_more_than_burst_plus_rate_times_elapsed(
    rate: float, burst: int, gaps: list[float]
) -> None:
    bucket, now, allowed = TokenBucket(rate, burst, now=0.0), 0.0, 0
    for gap in gaps:
        now += gap
        allowed += bucket.allow(now)
        assert allowed <= burst + rate * now + 1e-6


def test_strikes_hit_only_when_the_limit_falls_within_the_window() -> None:
    strikes = Strikes(limit=3, window=10.0)
    assert [strikes.hit(t) for t in (0.0, 5.0)] == [False, False]
    assert strikes.hit(9.0) is True
    spread = Strikes(limit=3, window=10.0)
    assert [spread.hit(t) for t in (0.0, 6.0, 12.0, 30.0)] == [False, False, False, False]


def test_a_strike_limit_below_one_counts_as_one() -> None:
    assert Strikes(limit=0, window=1.0).hit(0.0) is True


# -- presence --------------------------------------------------------------------


async def test_presence_is_seen_only_by_those_sharing_a_room_and_always_by_oneself(
    cache: MemoryCache,
) -> None:
    presence = Presence(cache, ttl_s=30.0)
    await presence.set("ann", "online")
    await presence.set("bob", "away")
    statuses = await presence.query(["ann", "bob", "cid"], asker="ann", sharing={"bob"})
    assert statuses == {"ann": "online", "bob": "away", "cid": OFFLINE}
    stranger = await presence.query(["ann", "bob"], asker="eve", sharing=())
    assert stranger == {"ann": OFFLINE, "bob": OFFLINE}


async def test_appearing_offline_hides_from_others_but_not_from_oneself(cache: MemoryCache) -> None:
    presence = Presence(cache, ttl_s=30.0)
    await presence.set("ann", "online")
    await cache.set(keys.user_appear_offline("ann"), b"1")
    assert await presence.query(["ann"], asker="bob", sharing={"ann"}) == {"ann": OFFLINE}
    assert await presence.query(["ann"], asker="ann", sharing=()) == {"ann": "online"}


async def test_presence_expires_with_its_ttl_and_clears_on_demand(
    cache: MemoryCache, clock: Clock
) -> None:
    presence = Presence(cache, ttl_s=30.0)
    await presence.set("ann", "online")
    await presence.set("bob", "online")
    clock.now += 31.0
    await presence.set("bob", "online")  # bob's node refreshed; ann's did not
    await presence.clear("bob")
    assert await presence.query(["ann", "bob", "ann"], asker="x", sharing={"ann", "bob"}) == {
        "ann": OFFLINE,
        "bob": OFFLINE,
    }


# -- shared room state -----------------------------------------------------------


def _room(name: str, *members: chat.Member, **fields: object) -> chat.ChatRoomState:
    return chat.ChatRoomState(
        room=name,
        members={m.user.id: m for m in members},
        **fields,  # type: ignore[arg-type]
    )


def _member(uid: str, *, guest: bool = False, source: str = "") -> chat.Member:
    return chat.Member(chat.User(uid, uid.title(), guest), connections=1, source=source)


async def test_members_merge_every_live_node_and_prefer_the_local_state(
    cache: MemoryCache, clock: Clock
) -> None:
    one = SharedRooms(cache, "n1", ttl=15.0, clock=clock)
    two = SharedRooms(cache, "n2", ttl=15.0, clock=clock)
    await one.refresh([_room("r", _member("ann"), _member("bob"))])
    await two.refresh([_room("r", _member("bob"), _member("cid"))])
    local = _room("r", _member("dan"))  # one's own members, not written yet
    seen = {m["id"]: m for m in await one.members("r", local)}
    assert set(seen) == {"dan", "bob", "cid"}  # one's stored copy is replaced by the local one
    assert seen["cid"] == {"id": "cid", "name": "Cid", "guest": False}


async def test_a_node_that_stopped_refreshing_drops_out_and_is_removed(
    cache: MemoryCache, clock: Clock
) -> None:
    one = SharedRooms(cache, "n1", ttl=15.0, clock=clock)
    gone = SharedRooms(cache, "n2", ttl=15.0, clock=clock)
    await gone.refresh([_room("r", _member("bob"))])
    clock.now += 16.0
    assert await one.members("r", None) == []
    assert await cache.zrevrange(keys.room_members("r"), 0, -1) == []


async def test_an_empty_room_removes_the_nodes_entry(cache: MemoryCache, clock: Clock) -> None:
    one = SharedRooms(cache, "n1", ttl=15.0, clock=clock)
    other = SharedRooms(cache, "n2", ttl=15.0, clock=clock)
    await one.write_members(_room("r", _member("ann")))
    assert [m["id"] for m in await other.members("r", None)] == ["ann"]
    await one.write_members(_room("r"))
    assert await other.members("r", None) == []
    assert await cache.get(keys.room_node_members("r", "n1")) is None


async def test_a_guests_address_is_found_on_any_live_node_and_never_for_a_user(
    cache: MemoryCache, clock: Clock
) -> None:
    one = SharedRooms(cache, "n1", ttl=15.0, clock=clock)
    two = SharedRooms(cache, "n2", ttl=15.0, clock=clock)
    await two.refresh([_room("r", _member("g1", guest=True, source="10.0.0.7"), _member("ann"))])
    assert await one.source_of("r", "g1") == "10.0.0.7"
    assert await one.source_of("r", "ann") == ""
    assert await one.source_of("r", "nobody") == ""
    clock.now += 16.0
    assert await one.source_of("r", "g1") == ""


async def test_corrupt_shared_entries_read_as_absent_not_as_a_crash(
    cache: MemoryCache, clock: Clock
) -> None:
    one = SharedRooms(cache, "n1", ttl=15.0, clock=clock)
    await cache.zadd(keys.room_members("r"), {"n2": clock.now + 15.0})
    await cache.set(keys.room_node_members("r", "n2"), b"{not json")
    await cache.set(keys.room_moderation("r"), b"[1, 2]")
    await cache.set(keys.room_sent("r", "ann"), b"yesterday")
    assert await one.members("r", None) == []
    assert await one.moderation("r") is None
    assert await one.last_sent("r", "ann") is None


async def test_moderation_round_trips_through_the_cache(cache: MemoryCache, clock: Clock) -> None:
    rooms = SharedRooms(cache, "n1", ttl=15.0, clock=clock)
    state = _room(
        "u:ann",
        _member("ann"),
        owner="ann",
        appointed=frozenset({"bob", "amy"}),
        muted=frozenset({"g1"}),
        muted_sources={"g1": "10.0.0.7"},
        slow_mode_s=5.0,
    )
    assert await rooms.moderation("u:ann") is None
    await rooms.write_moderation(state)
    shared = await rooms.moderation("u:ann")
    assert shared is not None
    assert (shared.owner, shared.appointed, shared.muted) == ("ann", ["amy", "bob"], ["g1"])
    assert (shared.muted_sources, shared.slow_mode_s) == ({"g1": "10.0.0.7"}, 5.0)


async def test_slow_mode_remembers_a_send_for_one_interval(
    cache: MemoryCache, clock: Clock
) -> None:
    rooms = SharedRooms(cache, "n1", ttl=15.0, clock=clock)
    await rooms.write_sent("r", "source:10.0.0.7", at=1234.5, slow_mode_s=10.0)
    assert await rooms.last_sent("r", "source:10.0.0.7") == pytest.approx(1234.5)
    clock.now += 11.0
    assert await rooms.last_sent("r", "source:10.0.0.7") is None


def test_room_states_apply_a_moderation_notice_to_rooms_held_here_only() -> None:
    states = RoomStates()
    states["u:ann"] = chat.ChatRoomState(
        "u:ann",
        owner="ann",
        muted=frozenset({"guest:1", "guest:2"}),
        muted_sources={"guest:1": "203.0.113.1", "guest:2": "203.0.113.2"},
    )
    notice = ModerationNotice("ann", frozenset({"bob"}), frozenset({"guest:2", "cy"}), 5.0)
    states.moderated("u:ann", notice)
    states.moderated("elsewhere", notice)  # no members here: nothing to keep
    assert list(states) == ["u:ann"]
    room = states["u:ann"]
    assert (room.owner, room.appointed, room.muted, room.slow_mode_s) == (
        "ann",
        frozenset({"bob"}),
        frozenset({"guest:2", "cy"}),
        5.0,
    )
    # Guests' addresses never travel in pushes: the still-muted guest's is kept.
    assert room.muted_sources == {"guest:2": "203.0.113.2"}
