"""``gateway.chat.fanout`` and ``gateway.chat.control``: what reaches a node's sessions
through room and user channels, with the pub/sub port in memory and fakes for the
rest of the node (handovers, moderation, latency, the sockets)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.chat.control import (
    ModerationNotice,
    Revoke,
    Takeover,
    TakeoverRequest,
    decode_control,
    decode_moderation,
    takeover,
)
from gateway.chat.fanout import Fanout
from gateway.sessions.session import Session, SessionRegistry, Watermark
from rooms.chat import ChatRoomState, moderation_view
from typogram import keys
from typogram.adapters.memory_pubsub import MemoryPubSub
from typogram.codes import CloseCode
from typogram.protocol import numbered_payload, push_payload
from typogram.revocation import RevokeNotice, encode_notice
from typogram.tokens import Claims, TokenType


@dataclass
class Link:
    """A session's socket: records what it is sent and how it is closed."""

    sent: list[bytes] = field(default_factory=list)
    closed: list[tuple[int, str]] = field(default_factory=list)

    def send(self, frame: bytes, kind: str) -> None:
        self.sent.append(frame)

    def terminate(self, code: int, reason: str, *, flush: bool = False) -> None:
        self.closed.append((code, reason))


@dataclass
class Node:
    """The rest of the node as the fan-out sees it."""

    handed_over: list[str] = field(default_factory=list)
    moderation: list[tuple[str, ModerationNotice]] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)

    def requested(self, session_id: str) -> None:
        self.handed_over.append(session_id)

    def moderated(self, room: str, moderation: ModerationNotice) -> None:
        self.moderation.append((room, moderation))

    def observe(self, amount: float) -> None:
        self.latencies.append(amount)


@dataclass
class World:
    pubsub: MemoryPubSub
    sessions: SessionRegistry
    fanout: Fanout
    node: Node

    def session(self, user: str, *, version: int = 1, sid: str = "") -> tuple[Session, Link]:
        claims = Claims(user, TokenType.ACCESS, version, user, "user", "jti", 2_000_000_000, sid)
        session = self.sessions.create(claims)
        link = Link()
        session.link = link
        return session, link


@pytest.fixture
async def world() -> AsyncIterator[World]:
    async with MemoryPubSub() as pubsub:
        sessions = SessionRegistry(
            window_s=30, max_detached=10, replay_frames=100, replay_bytes=1 << 20
        )
        node = Node()
        fanout = Fanout(pubsub, sessions, handovers=node, latency=node, moderation=node)
        yield World(pubsub, sessions, fanout, node)


async def test_a_user_push_reaches_every_local_session_of_that_user_only(world: World) -> None:
    ada, ada_link = world.session("ada")
    ada2, ada2_link = world.session("ada")
    _, bob_link = world.session("bob")
    for session in (ada, ada2):
        await world.fanout.watch_user(session.user.id)
    await world.pubsub.publish(
        keys.channel_user("ada"), push_payload("match.found", {"race": "r1"})
    )
    expected = [b'{"t":"match.found","d":{"race":"r1"},"s":1}']
    assert (ada_link.sent, ada2_link.sent, bob_link.sent) == (expected, expected, [])


async def test_a_takeover_hands_over_a_local_session_and_reaches_no_client(
    world: World,
) -> None:
    ada, link = world.session("ada")
    await world.fanout.watch_user("ada")
    await world.fanout.request_takeover("ada", ada.id)
    await world.fanout.request_takeover("ada", "not-here")  # held by no session here
    assert world.node.handed_over == [ada.id]
    assert link.sent == [] and link.closed == []


async def test_a_revoke_closes_the_sessions_it_covers_and_reaches_no_client(
    world: World,
) -> None:
    _, old_link = world.session("ada", version=1)
    _, new_link = world.session("ada", version=2)
    _, other_link = world.session("ada", version=2, sid="phone")
    await world.fanout.watch_user("ada")
    notice = encode_notice(RevokeNotice(version=2, reason="password changed"))
    await world.pubsub.publish(keys.channel_user("ada"), notice)
    await world.pubsub.publish(keys.channel_user("ada"), encode_notice(RevokeNotice(sid="phone")))
    assert old_link.closed == [(CloseCode.UNAUTHORIZED, "token revoked: password changed")]
    assert new_link.closed == []
    assert other_link.closed == [(CloseCode.UNAUTHORIZED, "token revoked")]
    assert old_link.sent == new_link.sent == other_link.sent == []


@pytest.mark.parametrize(
    "payload",
    [
        b'{"t":"takeover","d":{}}',
        b'{"t":"takeover","d":{"session":7}}',
        b'{"t":"revoke","d":{"version":"two"}}',
        b'{"t":"revoke","d":[]}',
        b'{"t":"takeover"}',
        b"not json",
        b'["t","takeover"]',
    ],
)
async def test_a_malformed_control_message_is_dropped(world: World, payload: bytes) -> None:
    ada, link = world.session("ada")
    await world.fanout.watch_user("ada")
    await world.pubsub.publish(keys.channel_user("ada"), payload)
    assert world.node.handed_over == [] and link.sent == [] and link.closed == []
    assert not ada.ended


async def test_room_pushes_reach_members_and_tell_moderation_and_latency(
    world: World,
) -> None:
    ada, ada_link = world.session("ada")
    _, bob_link = world.session("bob")
    ada.marks["lobby"] = Watermark(0)
    await world.fanout.join_room("lobby", ada)
    data = {"muted": ["bob"], "moderators": [], "owner": None, "slow_mode_s": 0}
    moderation = numbered_payload(1, push_payload("room.moderation", data), time.time())
    await world.pubsub.publish(keys.channel_room("lobby"), moderation)
    told = ModerationNotice(
        owner=None, moderators=frozenset(), muted=frozenset({"bob"}), slow_mode_s=0
    )
    assert world.node.moderation == [("lobby", told)]
    assert len(world.node.latencies) == 1 and 0 <= world.node.latencies[0] < 60
    assert [orjson.loads(frame)["t"] for frame in ada_link.sent] == ["room.moderation"]
    assert bob_link.sent == []
    await world.fanout.leave_room("lobby", ada)
    await world.pubsub.publish(keys.channel_room("lobby"), moderation)
    assert len(ada_link.sent) == 1 and world.fanout.rooms == 0


@given(session=st.text(max_size=40))
def test_takeover_round_trips_and_keeps_its_wire_format(session: str) -> None:
    payload = takeover(session)
    assert orjson.loads(payload) == {"t": "takeover", "d": {"session": session}}
    assert decode_control(payload) == Takeover(TakeoverRequest(session))


@given(
    version=st.none() | st.integers(0, 2**31),
    sid=st.none() | st.text(max_size=20),
    reason=st.text(max_size=30),
)
def test_a_revoke_notice_decodes_as_the_kernel_wrote_it(
    version: int | None, sid: str | None, reason: str
) -> None:
    notice = RevokeNotice(version=version, sid=sid, reason=reason)
    assert decode_control(encode_notice(notice)) == Revoke(notice)


async def test_a_malformed_room_moderation_reaches_members_but_is_not_applied(
    world: World,
) -> None:
    ada, ada_link = world.session("ada")
    ada.marks["lobby"] = Watermark(0)
    await world.fanout.join_room("lobby", ada)
    bad = push_payload("room.moderation", {"muted": "bob", "moderators": [], "owner": None})
    await world.pubsub.publish(keys.channel_room("lobby"), numbered_payload(1, bad))
    assert world.node.moderation == []
    assert [orjson.loads(frame)["t"] for frame in ada_link.sent] == ["room.moderation"]


@given(
    owner=st.none() | st.sampled_from(["ann", "bob"]),
    appointed=st.frozensets(st.sampled_from(["bob", "cy", "dee"])),
    muted=st.frozensets(st.sampled_from(["eve", "guest:1", "fay"])),
    slow=st.sampled_from([0.0, 2.5, 10]),
    number=st.integers(0, 2**31),
)
def test_room_moderation_decodes_as_the_rules_wrote_it(
    owner: str | None, appointed: frozenset[str], muted: frozenset[str], slow: float, number: int
) -> None:
    state = ChatRoomState("u:ann", owner=owner, appointed=appointed, muted=muted, slow_mode_s=slow)
    payload = push_payload("room.moderation", moderation_view(state))
    expected = ModerationNotice(owner, appointed, muted, float(slow))
    assert decode_moderation(payload) == expected
    assert decode_moderation(numbered_payload(number, payload, time.time())) == expected


VIEW: dict[str, object] = {"owner": None, "moderators": [], "muted": [], "slow_mode_s": 0}


@pytest.mark.parametrize(
    "payload",
    [
        push_payload("chat.message", {"room": "lobby", "text": "hi"}),
        push_payload(
            "room.moderation", {"owner": 1, "moderators": [], "muted": [], "slow_mode_s": 0}
        ),
        push_payload("room.moderation", {k: v for k, v in VIEW.items() if k != "slow_mode_s"}),
        b'{"t":"room.moderation","d":',
        b"[" * 10_000,
    ],
)
def test_anything_but_a_room_moderation_push_is_refused(payload: bytes) -> None:
    with pytest.raises(ValueError):
        decode_moderation(payload)
